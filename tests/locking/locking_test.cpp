// One writer per state dir, proved with the real fno_runner and tradestate
// binaries: a second runner on the same session refuses and names the
// holder; a SIGKILLed runner's lock never blocks; readers never take the
// lock and never see a half-written file. Also: the runner's journal under
// SIGKILL gives exactly the uninterrupted run.
#include <tradestate_test/support.hpp>

#include <tradestate/detail/atomic_file.hpp>
#include <tradestate/detail/json.hpp>
#include <tradestate/session_state.hpp>

#include <gtest/gtest.h>

#include <chrono>
#include <csignal>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include <fcntl.h>
#include <sys/wait.h>
#include <unistd.h>

namespace fs = std::filesystem;

namespace {

using tradestate::testing::eventually;
using tradestate::testing::TempDir;
using Proc = tradestate::testing::Process;

/// Run to the end; `text` gets what it printed.
int run(std::vector<std::string> args, const fs::path& /*unused*/, std::string* text = nullptr) {
    return tradestate::testing::run(std::move(args), text);
}

Proc spawn(std::vector<std::string> args, const fs::path& out) {
    tradestate::testing::ProcessOptions o;
    o.output_file = out;
    return Proc(std::move(args), std::move(o));
}

void write_config(const fs::path& file, const fs::path& state_dir, int auto_save_every, const std::string& backend) {
    std::ofstream f(file);
    f << "[persistence]\nbackend = \"" << backend << "\"\nstate_dir = \"" << state_dir.string()
      << "\"\nplugin_dir = \"" << tradestate::testing::plugin_dir().string() << "\"\nauto_save_every = " << auto_save_every
      << "\n[dashboard]\nenabled = false\n";
}

std::vector<std::string> runner(const fs::path& cfg, std::vector<std::string> more) {
    std::vector<std::string> a{tradestate::testing::runner_bin(), "--config", cfg.string(), "--no-dashboard", "--sim-clock"};
    a.insert(a.end(), more.begin(), more.end());
    return a;
}

} // namespace

class Locking : public ::testing::TestWithParam<std::string> {};

TEST_P(Locking, SecondRunnerRefusesAndNamesTheHolderStaleLockNeverBlocks) {
    TempDir d;
    const auto cfg = d.path() / "config.toml";
    write_config(cfg, d.path() / "state", 5, GetParam());
    Proc first = spawn(runner(cfg, {"--fresh", "--interval-ms", "20", "--iterations", "100000"}), d.path() / "first.txt");
    ASSERT_TRUE(eventually([&] { return first.output().find("Continuous F&O monitoring") != std::string::npos; }))
        << first.output();

    std::string text;
    const int rc = run(runner(cfg, {"--resume", "--iterations", "1"}), d.path() / "second.txt", &text);
    EXPECT_EQ(rc, 2) << text;
    EXPECT_NE(text.find("already being written by process " + std::to_string(first.pid())), std::string::npos) << text;
    EXPECT_NE(text.find("fno_runner"), std::string::npos) << text;
    // The refused runner changed nothing: the first one is still running.
    EXPECT_TRUE(first.running());

    // Another session in the same dir is another lock.
    EXPECT_EQ(run(runner(cfg, {"--session", "other", "--fresh", "--iterations", "2", "--interval-ms", "0"}),
                  d.path() / "other.txt", &text),
              0)
        << text;

    // SIGKILL leaves the lock file behind; it never blocks the next runner.
    ::kill(first.pid(), SIGKILL);
    EXPECT_EQ(first.wait(), 128 + SIGKILL);
    EXPECT_EQ(run(runner(cfg, {"--resume", "--iterations", "3", "--interval-ms", "0"}), d.path() / "third.txt", &text), 0)
        << text;
    EXPECT_NE(text.find("Previous session loaded successfully"), std::string::npos) << text;
}

TEST_P(Locking, ReadersTakeNoLockAndNeverSeeAHalfWrittenFile) {
    TempDir d;
    const auto cfg = d.path() / "config.toml";
    write_config(cfg, d.path() / "state", 1, GetParam()); // a save after every iteration
    std::string text;
    ASSERT_EQ(run(runner(cfg, {"--fresh", "--iterations", "1", "--interval-ms", "0"}), d.path() / "init.txt", &text), 0)
        << text;
    Proc writer = spawn(runner(cfg, {"--resume", "--interval-ms", "0", "--iterations", "100000"}), d.path() / "writer.txt");
    ASSERT_TRUE(eventually([&] { return writer.output().find("Continuous F&O monitoring") != std::string::npos; }));
    int exports = 0, verifies = 0, lists = 0;
    std::int64_t first_iteration = -1, last_iteration = -1;
    const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(8);
    while (std::chrono::steady_clock::now() < until || exports < 20) {
        const auto out = d.path() / "export.json";
        ASSERT_EQ(run({tradestate::testing::tool_bin(), "--config", cfg.string(), "export", "default"}, out, &text), 0) << text;
        // Every export is a whole, valid session (never a torn or mixed file).
        tradestate::SessionState s;
        ASSERT_NO_THROW(s = boost::json::value_to<tradestate::SessionState>(tradestate::detail::parse(text, "export")))
            << text.substr(0, 400);
        ASSERT_EQ(s.portfolio.reconcile(), tradestate::Money{});
        ASSERT_GE(s.iteration, last_iteration) << "a reader went back in time";
        if (first_iteration < 0) first_iteration = s.iteration;
        last_iteration = s.iteration;
        ++exports;
        if (exports % 4 == 0) {
            ASSERT_EQ(run({tradestate::testing::tool_bin(), "--config", cfg.string(), "verify"}, d.path() / "verify.txt", &text), 0) << text;
            ++verifies;
            ASSERT_EQ(run({tradestate::testing::tool_bin(), "--config", cfg.string(), "show-sessions"}, d.path() / "list.txt", &text), 0)
                << text;
            ++lists;
        }
        ASSERT_TRUE(writer.running()) << "the writer stopped: " << writer.output();
    }
    EXPECT_GT(last_iteration, first_iteration) << "the writer was saving while the readers read";
    std::cout << "[ measure  ] " << GetParam() << ": " << exports << " exports, " << verifies << " verifies, " << lists
              << " listings during saves (iterations " << first_iteration << ".." << last_iteration
              << "), all whole\n";
    ::kill(writer.pid(), SIGTERM); // a clean stop, with the final save
    EXPECT_EQ(writer.wait(), 0) << writer.output();
}

INSTANTIATE_TEST_SUITE_P(FileBackends, Locking, ::testing::Values("json-files", "mmap-binary", "compressed-archive"),
                         [](const ::testing::TestParamInfo<std::string>& p) {
                             std::string n = p.param;
                             for (auto& c : n)
                                 if (c == '-') c = '_';
                             return n;
                         });

TEST(RunnerJournal, SigkillThenResumeEqualsTheUninterruptedRun) {
    TempDir d;
    const int target = 120;
    const auto ref_cfg = d.path() / "ref.toml";
    const auto cfg = d.path() / "config.toml";
    write_config(ref_cfg, d.path() / "ref", 0, "json-files"); // no auto-save: everything after the start is in the journal
    write_config(cfg, d.path() / "state", 0, "json-files");
    std::string text;
    ASSERT_EQ(run(runner(ref_cfg, {"--fresh", "--seed", "11", "--interval-ms", "0", "--until-iteration",
                                   std::to_string(target)}),
                  d.path() / "ref.txt", &text),
              0)
        << text;
    const int kills = std::getenv("TRADESTATE_RUNNER_KILLS") ? std::atoi(std::getenv("TRADESTATE_RUNNER_KILLS")) : 5;
    std::mt19937 rng(99);
    const auto journal = d.path() / "state" / "default.journal";
    int killed = 0, replays = 0;
    for (int k = 0; k < kills; ++k) {
        Proc p = spawn(runner(cfg, {k == 0 ? "--fresh" : "--resume", "--seed", "11", "--interval-ms", "0",
                                    "--until-iteration", std::to_string(target)}),
                       d.path() / ("run" + std::to_string(k) + ".txt"));
        const auto grow = 2000 + rng() % 40000; // bytes of journal before the kill
        const auto start = fs::exists(journal) ? fs::file_size(journal) : 0;
        eventually([&] {
            std::error_code ec;
            const auto sz = fs::file_size(journal, ec);
            return (!ec && sz > start + grow) || !p.running();
        });
        ::kill(p.pid(), SIGKILL);
        if (p.wait() == 128 + SIGKILL) ++killed;
        if (p.output().find("journaled operations after the snapshot") != std::string::npos) ++replays;
    }
    ASSERT_EQ(run(runner(cfg, {"--resume", "--interval-ms", "0", "--until-iteration", std::to_string(target)}),
                  d.path() / "last.txt", &text),
              0)
        << text;
    if (text.find("journaled operations after the snapshot") != std::string::npos) ++replays;
    std::cout << "[ measure  ] runner: " << killed << " SIGKILLs mid-run, " << replays
              << " resumes replayed the journal, final state equals the uninterrupted run\n";
    EXPECT_GT(killed, 0);
    EXPECT_GT(replays, 0);
    auto load = [](const fs::path& f) {
        auto v = tradestate::detail::parse(tradestate::detail::read_file(f), f.string());
        v.get_object().erase("_tradestate");
        v.get_object()["runner"].get_object().erase("journal");
        return v;
    };
    const auto a = load(d.path() / "ref" / "fno_system_state.json");
    const auto b = load(d.path() / "state" / "fno_system_state.json");
    EXPECT_EQ(a.at("iteration"), b.at("iteration"));
    EXPECT_EQ(a.at("portfolio"), b.at("portfolio"));
    EXPECT_EQ(a.at("runner"), b.at("runner"));
    EXPECT_EQ(a, b);
}
