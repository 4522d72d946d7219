// End-to-end tests of the real fno_runner binary, against every backend
// plugin present in the build: the seed's messages, Ctrl+C/SIGTERM, the
// resume prompt under a pseudo-terminal, resume without a terminal, kill and
// resume == uninterrupted, 10,000 iterations with exact money,
// max_positions, --show-sessions, a second writer refused, a failed save.
#include <fno_runner/market.hpp>
#include <fno_runner/settings.hpp>

#include <tradestate_test/support.hpp>

#include <tradestate/detail/atomic_file.hpp>
#include <tradestate/detail/json.hpp>
#include <tradestate/open.hpp>
#include <tradestate/persister.hpp>
#include <tradestate/session_state.hpp>
#include <tradestate/version.hpp>

#include <boost/json/parse.hpp>
#include <gtest/gtest.h>

#include <algorithm>
#include <cctype>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <optional>
#include <sstream>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include <fcntl.h>
#include <poll.h>
#include <pty.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

namespace fs = std::filesystem;
using tradestate::Money;
using tradestate::SessionState;

namespace {

using tradestate::testing::numbers_after;
using tradestate::testing::Process;
using tradestate::testing::slurp;

/// The real fno_runner with `args`, stdout+stderr into `out`, stdin from /dev/null.
std::unique_ptr<Process> spawn(std::vector<std::string> args, const fs::path& out) {
    args.insert(args.begin(), tradestate::testing::runner_bin());
    tradestate::testing::ProcessOptions o;
    o.output_file = out;
    return std::make_unique<Process>(std::move(args), std::move(o));
}

int run(std::vector<std::string> args, const fs::path& out, std::string* text = nullptr) {
    auto p = spawn(std::move(args), out);
    const int rc = p->wait();
    if (text) *text = p->output();
    return rc;
}

/// Run with every regular-file write limited to `fsize_limit` bytes (RLIMIT_FSIZE, which root
/// is subject to too); the output goes through a pipe, which the limit does not affect.
int run_limited(std::vector<std::string> args, std::uint64_t fsize_limit, std::string& text) {
    args.insert(args.begin(), tradestate::testing::runner_bin());
    tradestate::testing::ProcessOptions o;
    o.fsize_limit = fsize_limit;
    Process p(std::move(args), std::move(o));
    while (p.read_line()) {
    }
    const int rc = p.wait();
    text = p.output();
    return rc;
}

/// Run under a pseudo-terminal; when `prompt` appears, type `answer`.
int run_pty(std::vector<std::string> args, const std::string& prompt, const std::string& answer, std::string& text) {
    args.insert(args.begin(), tradestate::testing::runner_bin());
    return tradestate::testing::run_pty(std::move(args), prompt, answer, text);
}

/// The file backends of this build, asked (never named); postgres has an instance of its own below.
std::vector<std::string> backends_present() { return tradestate::testing::file_backends(); }

/// Lines in order: each must appear after the previous one.
::testing::AssertionResult in_order(const std::string& text, const std::vector<std::string>& lines) {
    const auto missing = tradestate::testing::missing_in_order(text, lines);
    if (missing.empty()) return ::testing::AssertionSuccess();
    return ::testing::AssertionFailure() << missing;
}

/// The private PostgreSQL server ctest starts for the Postgres/ instances.
std::string pg_url() {
    const char* u = std::getenv("TRADESTATE_TEST_PG_URL");
    return u ? u : "";
}

class RunnerE2E : public ::testing::TestWithParam<std::string> {
protected:
    static std::string pg_schema(const std::string& name) {
        std::string t = ::testing::UnitTest::GetInstance()->current_test_info()->name();
        std::string clean;
        for (char c : t)
            if (std::isalnum(static_cast<unsigned char>(c))) clean.push_back(static_cast<char>(std::tolower(c)));
        return "e2e_" + clean.substr(0, 24) + "_" + name + "_" + std::to_string(::getpid());
    }
    void SetUp() override {
        if (GetParam() == "postgres" && pg_url().empty())
            GTEST_SKIP() << "TRADESTATE_TEST_PG_URL is not set: the Postgres/ instances run through ctest, which starts "
                            "a private PostgreSQL server";
        char tmpl[] = "/tmp/fno_runner_e2e.XXXXXX";
        ASSERT_NE(::mkdtemp(tmpl), nullptr);
        dir_ = tmpl;
    }
    void TearDown() override {
        std::error_code ec;
        fs::remove_all(dir_, ec);
    }

    /// A config for this backend; `extra` appended verbatim.
    fs::path config(const std::string& name, const std::string& extra = "", std::int64_t auto_save = 10) {
        const fs::path p = dir_ / (name + ".toml");
        std::ofstream f(p);
        f << tradestate::testing::runner_app_sections << "[persistence]\nbackend = \"" << GetParam() << "\"\nstate_dir = \"" << (dir_ / name).string()
          << "\"\nplugin_dir = \"" << tradestate::testing::plugin_dir().string() << "\"\nauto_save_every = " << auto_save
          << "\nfsync = false\n";
        if (GetParam() == "postgres") // one schema per test and config: the store is shared
            f << "\n[persistence.postgres]\nurl = \"" << pg_url() << "\"\nschema = \"" << pg_schema(name)
              << "\"\n";
        f << "\n[dashboard]\nenabled = false\n\n[runner]\nsim_clock = true\nseed = 4242\n" << extra;
        return p;
    }
    std::vector<std::string> base(const fs::path& cfg) {
        return {"--config", cfg.string(), "--no-dashboard", "--interval-ms", "0"};
    }
    template <class... A> std::vector<std::string> args(const fs::path& cfg, A... more) {
        auto v = base(cfg);
        (v.push_back(more), ...);
        return v;
    }
    fs::path out(const std::string& name) { return dir_ / (name + "-" + std::to_string(++n_) + ".out"); }

    std::shared_ptr<tradestate::StatePersister<SessionState>> persister(const fs::path& cfg) {
        auto c = tradestate::Config::load(cfg, fno::runner_config_schema());
        return tradestate::open_persister<SessionState>(c, tradestate::testing::quiet_logger());
    }
    SessionState load(const fs::path& cfg, const std::string& session = "default") {
        auto p = persister(cfg);
        auto l = p->load(session);
        if (!l) throw std::runtime_error("session " + session + " not saved");
        return std::move(l->state);
    }
    static std::string text_of(const SessionState& s) { return tradestate::detail::print(boost::json::value_from(s)); }

    fs::path dir_;
    int n_ = 0;
};

TEST_P(RunnerE2E, IterationLimitSavesWithTheSeedsSequence) {
    const auto cfg = config("s");
    std::string text;
    ASSERT_EQ(run(args(cfg, "--iterations", "25"), out("run"), &text), 0) << text;
    // Auto-saves are written in the background (a pending one may be superseded by a newer
    // one): at least one is logged, each at a multiple of auto_save_every, before the final save completes.
    {
        int count = 0;
        for (const auto& [at, n] : numbers_after(text, "💾 Auto-saved (iteration ")) {
            EXPECT_EQ(n % 10, 0) << "auto-saved at iteration " << n;
            EXPECT_LT(at, text.find("✅ Trading session saved successfully!"));
            ++count;
        }
        EXPECT_GE(count, 1);
    }
    EXPECT_TRUE(in_order(text, {"🆕 New paper-trading session 'default'", "🔁 Iteration 1 |", "🔁 Iteration 25 |",
                                "🏁 Reached the iteration limit (iteration 25)", "💾 Saving trading session state...",
                                "✅ Trading session saved successfully!",
                                "🔄 Use the same system to resume from this point later", "📊 Final Portfolio Summary:",
                                "   Total Value: ₹", "   Total P&L: ₹", "   Active Positions: ", "   Cash Remaining: ₹"}));
    const auto st = load(cfg);
    EXPECT_EQ(st.iteration, 25);
    EXPECT_EQ(st.portfolio.reconcile(), Money{});
    EXPECT_NE(text.find("   Cash Remaining: " + st.portfolio.cash().format()), std::string::npos);
    EXPECT_TRUE(fs::exists(dir_ / "s" / "logs" / "fno_runner.log"));
    EXPECT_NE(slurp(dir_ / "s" / "logs" / "fno_runner.log").find("💾 Auto-saved (iteration 20)"), std::string::npos);
}

TEST_P(RunnerE2E, SigintStopsSavesAndResumeRestoresEverything) {
    const auto cfg = config("s");
    auto v = base(cfg);
    v[4] = "3"; // --interval-ms 3: slow enough to interrupt mid-run
    auto p = spawn(v, out("run"));
    ASSERT_TRUE(p->wait_for_output([](const std::string& t) { return t.find("🔁 Iteration 60 |") != std::string::npos; }))
        << p->output();
    ASSERT_EQ(::kill(p->pid(), SIGINT), 0);
    ASSERT_EQ(p->wait(), 0) << p->output();
    const std::string text = p->output();
    EXPECT_TRUE(in_order(text, {"🛑 Continuous monitoring stopped by user", "💾 Saving trading session state...",
                                "✅ Trading session saved successfully!",
                                "🔄 Use the same system to resume from this point later", "📊 Final Portfolio Summary:",
                                "   Total Value: ₹", "   Total P&L: ₹", "%)", "   Active Positions: ",
                                "   Cash Remaining: ₹"}));
    const SessionState saved = load(cfg);
    EXPECT_GE(saved.iteration, 60);
    for (const auto& [sym, pos] : saved.portfolio.positions())
        EXPECT_NE(text.find("   • " + sym + ": " + pos.strategy + " | " + std::to_string(pos.shares) + " @ " +
                            pos.entry_price.format()),
                  std::string::npos)
            << sym;
    if (!saved.portfolio.positions().empty()) {
        EXPECT_NE(text.find("📋 Open Positions:"), std::string::npos);
    }

    // Restart without a terminal: resumes by default; --until-iteration = current runs no step, only loads and saves.
    std::string again;
    ASSERT_EQ(run(args(cfg, "--until-iteration", std::to_string(saved.iteration)), out("resume"), &again), 0) << again;
    EXPECT_TRUE(in_order(again, {"📂 Found previous trading session: ", "   Last modified: ",
                                 "(no terminal to ask: resuming", "✅ Will resume from previous session",
                                 "📥 Loading previous trading session...", "✅ Previous session loaded successfully!",
                                 "   📊 Positions: " + std::to_string(saved.portfolio.positions().size()),
                                 "   💰 Cash: " + saved.portfolio.cash().format(),
                                 "   🔢 Iteration: " + std::to_string(saved.iteration)}));
    const SessionState after = load(cfg);
    EXPECT_EQ(after.iteration, saved.iteration);
    EXPECT_EQ(after.portfolio, saved.portfolio); // positions, stop-losses, take-profits, entry times, cash, history
    EXPECT_EQ(text_of(after), text_of(saved));
}

TEST_P(RunnerE2E, SigtermSighupAndSigquitStopAndSaveLikeCtrlC) {
    for (const int sig : {SIGTERM, SIGHUP, SIGQUIT}) {
        SCOPED_TRACE(::strsignal(sig));
        const auto cfg = config("s" + std::to_string(sig));
        auto v = base(cfg);
        v[4] = "3";
        auto p = spawn(v, out("run"));
        ASSERT_TRUE(
            p->wait_for_output([](const std::string& t) { return t.find("🔁 Iteration 5 |") != std::string::npos; }));
        ::kill(p->pid(), sig);
        ASSERT_EQ(p->wait(), 0) << p->output();
        EXPECT_TRUE(
            in_order(p->output(), {"🛑 Continuous monitoring stopped by user", "✅ Trading session saved successfully!"}));
        EXPECT_GE(load(cfg).iteration, 5);
    }
}

TEST_P(RunnerE2E, AClosedConsolePipeDoesNotStopTrading) {
    // `fno_runner | head -1`: the reader goes after one line.
    const auto cfg = config("s");
    auto v = base(cfg);
    v[4] = "3";
    v.insert(v.begin(), tradestate::testing::runner_bin());
    tradestate::testing::Process p(v);
    ASSERT_TRUE(p.until("🔁 Iteration 2 |"));
    p.close_output();
    const fs::path log = dir_ / "s" / "logs" / "fno_runner.log";
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
    while (slurp(log).find("🔁 Iteration 40 |") == std::string::npos && p.running() &&
           std::chrono::steady_clock::now() < deadline)
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
    ASSERT_TRUE(p.running()) << "the runner died once its console pipe closed: status " << p.wait();
    p.signal(SIGINT);
    EXPECT_EQ(p.wait(), 0);
    EXPECT_GE(load(cfg).iteration, 40);
    EXPECT_NE(slurp(log).find("session 'default' saved and closed at iteration "), std::string::npos) << slurp(log);
}

TEST_P(RunnerE2E, Sigusr1SavesASnapshotAndTradingGoesOn) {
    const auto cfg = config("s", "", 0); // auto_save_every = 0: no auto-save of its own
    auto v = base(cfg);
    v[4] = "3";
    auto p = spawn(v, out("run"));
    ASSERT_TRUE(p->wait_for_output([](const std::string& t) { return t.find("🔁 Iteration 7 |") != std::string::npos; }));
    ::kill(p->pid(), SIGUSR1);
    ASSERT_TRUE(p->wait_for_output([](const std::string& t) { return t.find("💾 Auto-saved (iteration ") != std::string::npos; }))
        << p->output();
    const auto saved = numbers_after(p->output(), "💾 Auto-saved (iteration ");
    ASSERT_FALSE(saved.empty());
    EXPECT_GE(saved.front().second, 7);
    ASSERT_TRUE(p->running()) << p->output();
    // the snapshot itself, with the journal out of the picture: what the backend holds
    p->signal(SIGKILL);
    p->wait();
    EXPECT_GE(persister(cfg)->load("default")->state.iteration, saved.front().second);
}

TEST_P(RunnerE2E, RepeatedCtrlCDuringTheRunAndSaveIsHarmless) {
    const auto cfg = config("s");
    auto v = base(cfg);
    v[4] = "1";
    auto p = spawn(v, out("run"));
    ASSERT_TRUE(p->wait_for_output([](const std::string& t) { return t.find("🔁 Iteration 20 |") != std::string::npos; }));
    for (int i = 0; i < 20 && p->running(); ++i) ::kill(p->pid(), SIGINT); // a burst: the later ones land in the save
    ASSERT_EQ(p->wait(), 0) << p->output();
    const auto st = load(cfg);
    EXPECT_EQ(st.portfolio.reconcile(), Money{});
    EXPECT_NE(p->output().find("✅ Trading session saved successfully!"), std::string::npos);
}

TEST_P(RunnerE2E, PromptUnderTerminalAnswersYesNoAndEnter) {
    const auto cfg = config("s");
    ASSERT_EQ(run(args(cfg, "--iterations", "12"), out("first")), 0);
    const auto saved = load(cfg);
    const std::string prompt = "🔄 Resume from previous session? (y/n) [y]: ";

    std::string yes;
    ASSERT_EQ(run_pty(args(cfg, "--until-iteration", "12"), prompt, "y\r", yes), 0) << yes;
    EXPECT_TRUE(in_order(yes, {"📂 Found previous trading session:", "Last modified:", prompt,
                               "✅ Will resume from previous session", "🔢 Iteration: 12"}));
    EXPECT_EQ(text_of(load(cfg)), text_of(saved));

    std::string upper;
    ASSERT_EQ(run_pty(args(cfg, "--until-iteration", "12"), prompt, "YES\r", upper), 0) << upper;
    EXPECT_TRUE(in_order(upper, {prompt, "✅ Will resume from previous session", "🔢 Iteration: 12"}));

    std::string enter;
    ASSERT_EQ(run_pty(args(cfg, "--until-iteration", "12"), prompt, "\r", enter), 0) << enter;
    EXPECT_TRUE(in_order(enter, {prompt, "✅ Will resume from previous session", "🔢 Iteration: 12"}));

    std::string no;
    ASSERT_EQ(run_pty(args(cfg, "--iterations", "3"), prompt, "n\r", no), 0) << no;
    EXPECT_TRUE(in_order(no, {prompt, "🆕 Starting a fresh session (the previous one is kept as session 'default-backup-",
                              "🔁 Iteration 1 |"}));
    EXPECT_EQ(load(cfg).iteration, 3);
    // the old session is kept, not destroyed
    auto p = persister(cfg);
    bool backup = false;
    for (const auto& s : p->list())
        if (s.session.rfind("default-backup-", 0) == 0) {
            backup = true;
            EXPECT_EQ(s.meta.iteration, 12);
        }
    EXPECT_TRUE(backup);
}

TEST(RunnerConfig, TheTestsAppSectionsAreTheRunnersSections) {
    std::string expected = "app_sections = [";
    for (const auto& sec : fno::runner_config_schema().sections)
        expected += (expected.back() == '[' ? "\"" : ", \"") + sec + "\"";
    EXPECT_EQ(std::string(tradestate::testing::runner_app_sections), expected + "]\n");
    // and the repository's config.toml says the same
    const auto repo = tradestate::Config::load(tradestate::testing::source_dir() / "config.toml");
    EXPECT_EQ(repo.app_sections(), fno::runner_config_schema().sections);
}

TEST_P(RunnerE2E, IterationsZeroRunsNoIteration) {
    const auto cfg = config("s");
    ASSERT_EQ(run(args(cfg, "--iterations", "5"), out("a")), 0);
    std::string t;
    ASSERT_EQ(run(args(cfg, "--resume", "--iterations", "0"), out("b"), &t), 0) << t;
    EXPECT_EQ(t.find("🔁 Iteration 6 |"), std::string::npos) << t;
    EXPECT_EQ(load(cfg).iteration, 5);
    ASSERT_EQ(run(args(cfg, "--fresh", "--iterations", "0"), out("c"), &t), 0) << t;
    EXPECT_EQ(t.find("🔁 Iteration 1 |"), std::string::npos) << t;
    EXPECT_EQ(load(cfg).iteration, 0);
}

// A FIFO in place of each file the state dir holds (main file, views,
// backups, slots, archive, index, journal, mark, the runner's log), in turn:
// `tradestate verify`, `tradestate export` and a resuming fno_runner each
// finish; verify names the FIFO (the log aside), and the other two either
// succeed or name it.
TEST_P(RunnerE2E, AFifoInPlaceOfAnyFileOfTheSessionHangsNoProgram) {
    if (GetParam() == "postgres") GTEST_SKIP() << "postgres keeps the session in its database";
    const auto cfg = config("s");
    ASSERT_EQ(run(args(cfg, "--iterations", "12"), out("a")), 0);
    const fs::path state = dir_ / "s", kept = dir_ / "s-kept";
    fs::copy(state, kept, fs::copy_options::recursive);
    std::vector<fs::path> files;
    for (const auto& e : fs::recursive_directory_iterator(state))
        if (e.is_regular_file() && e.path().extension() != ".lock") files.push_back(fs::relative(e.path(), state));
    ASSERT_GE(files.size(), 3u);
    const auto finish = [&](std::vector<std::string> argv, const std::string& what) {
        tradestate::testing::ProcessOptions o;
        o.output_file = out("fifo");
        Process p(std::move(argv), std::move(o));
        const auto rc = p.wait_for(std::chrono::seconds(30));
        EXPECT_TRUE(rc.has_value()) << what << " still runs after 30 s";
        return std::make_pair(rc.value_or(-1), p.output());
    };
    for (const auto& rel : files) {
        SCOPED_TRACE(rel.string());
        const fs::path f = state / rel;
        fs::remove(f);
        ASSERT_EQ(::mkfifo(f.c_str(), 0644), 0);
        const std::string name = rel.filename().string();
        const std::vector<std::string> tool{tradestate::testing::tool_bin(), "--config", cfg.string()};
        auto v = tool;
        v.insert(v.end(), {"verify", "default"});
        const auto vout = finish(v, "tradestate verify").second;
        const bool session_file = rel.begin()->string() != "logs"; // the runner's log is no session data
        if (session_file) {
            EXPECT_NE(vout.find(name), std::string::npos) << "verify does not name the FIFO:\n" << vout;
        }
        auto e = tool;
        e.insert(e.end(), {"export", "default"});
        const auto [erc, eout] = finish(e, "tradestate export");
        EXPECT_TRUE(erc == 0 || eout.find(name) != std::string::npos) << "exit " << erc << ":\n" << eout;
        auto r = args(cfg, "--resume", "--iterations", "0");
        r.insert(r.begin(), tradestate::testing::runner_bin());
        const auto [rrc, rout] = finish(r, "fno_runner --resume");
        EXPECT_TRUE(rrc == 0 || rout.find(name) != std::string::npos) << "exit " << rrc << ":\n" << rout;
        fs::remove_all(state);
        fs::copy(kept, state, fs::copy_options::recursive);
    }
}

// The seed's custom file name: `--session my_session.json` is the file
// state/my_session.json with json-files, and the same session elsewhere.
TEST_P(RunnerE2E, TheSeedsCustomFileNameIsASession) {
    const auto cfg = config("s");
    std::string t;
    ASSERT_EQ(run(args(cfg, "--session", "my_session.json", "--iterations", "4"), out("a"), &t), 0) << t;
    ASSERT_EQ(run(args(cfg, "--session", "my_session.json", "--resume", "--iterations", "3"), out("b"), &t), 0) << t;
    EXPECT_EQ(load(cfg, "my_session.json").iteration, 7);
    if (GetParam() == "json-files") {
        EXPECT_TRUE(fs::is_regular_file(dir_ / "s" / "my_session.json"));
        EXPECT_FALSE(fs::exists(dir_ / "s" / "sessions" / "my_session.json"));
        EXPECT_FALSE(fs::exists(dir_ / "s" / "fno_system_state.json")) << "the default session was written";
    }
    ASSERT_EQ(run(args(cfg, "--show-sessions"), out("c"), &t), 0) << t;
    EXPECT_NE(t.find("my_session.json"), std::string::npos) << t;
    // --fresh keeps the old one aside and starts a new one under the same name
    ASSERT_EQ(run(args(cfg, "--session", "my_session.json", "--fresh", "--iterations", "2"), out("d"), &t), 0) << t;
    EXPECT_EQ(load(cfg, "my_session.json").iteration, 2);
}

// Each warning is shown once: a load used to be logged by the persister, the
// session and the runner, three or four times over.
TEST_P(RunnerE2E, EachWarningIsShownOnce) {
    if (GetParam() != "json-files") GTEST_SKIP() << "the seed's file and its backups are json-files'";
    const auto count = [](const std::string& text, const std::string& what) {
        std::size_t n = 0;
        for (auto at = text.find(what); at != std::string::npos; at = text.find(what, at + 1)) ++n;
        return n;
    };
    const auto cfg = config("s");
    fs::create_directories(dir_ / "s");
    fs::copy_file(tradestate::testing::seed_file(), dir_ / "s" / "fno_system_state.json");
    std::string t;
    ASSERT_EQ(run(args(cfg, "--resume", "--iterations", "12"), out("a"), &t), 0) << t;
    EXPECT_EQ(count(t, "no checksum (written by another program)"), 1u) << t;
    // the newest copy damaged: the fallback is named once, as damage
    tradestate::detail::write_file_atomic(dir_ / "s" / "fno_system_state.json", "garbage", false);
    ASSERT_EQ(run(args(cfg, "--resume", "--accept-loss", "--iterations", "0"), out("b"), &t), 0) << t;
    EXPECT_EQ(count(t, "the newest copy of the session is unusable"), 1u) << t;
    EXPECT_EQ(count(t, "loaded the newest valid backup"), 1u) << t;
    tradestate::detail::write_file_atomic(dir_ / "s" / "fno_system_state.json", "garbage", false);
    const auto v = tradestate::testing::capture({tradestate::testing::tool_bin(), "--config", cfg.string(), "verify"});
    EXPECT_EQ(v.code, 1) << v.all();
    EXPECT_EQ(count(v.all(), "invalid JSON"), 1u) << v.all();
}

TEST_P(RunnerE2E, TheTradingDayOfTheViewsIsTheMarketsDayNotTheWallClocks) {
    // Stamped with the wall clock (sim_clock off), as by default: the market
    // still trades its own days, and current_state's trading_day is theirs.
    const auto cfg = config("td");
    {
        std::ifstream in(cfg);
        std::string text((std::istreambuf_iterator<char>(in)), {});
        text.replace(text.find("sim_clock = true"), 16, "sim_clock = false");
        std::ofstream(cfg, std::ios::trunc) << text;
    }
    std::string text;
    ASSERT_EQ(run(args(cfg, "--iterations", "30"), out("run"), &text), 0) << text;
    const auto s = load(cfg);
    const auto market = fno::MarketState::from_json(s.runner.at("market").as_object());
    const int market_day = tradestate::Timestamp::from_micros(market.clock).ist_date();
    ASSERT_NE(market_day, s.timestamp.ist_date()) << "the market's clock happens to be on today's date";
    int traded = 0; // and the trades in the file are on the market's days
    for (const auto& t : s.portfolio.trade_history()) traded = std::max(traded, t.exit_time.ist_date());
    EXPECT_LE(traded, market_day);
    char want[16];
    std::snprintf(want, sizeof want, "%04d-%02d-%02d", market_day / 10000, market_day / 100 % 100, market_day % 100);
    const auto views = tradestate_views(s);
    EXPECT_EQ(views.at("current_state").at("trading_day").as_string(), want);
}

TEST_P(RunnerE2E, TimesAreIstWithTheirZoneAndMoneyIsGroupedAsConfigured) {
    // Every program below runs on a host ten hours behind UTC (a POSIX TZ,
    // no zone files needed): every time a person reads is still IST with its
    // zone, every amount grouped as [display] says.
    struct FarAway {
        std::optional<std::string> was;
        FarAway() {
            if (const char* tz = std::getenv("TZ")) was = tz;
            ::setenv("TZ", "HST10", 1);
        }
        ~FarAway() {
            if (was) ::setenv("TZ", was->c_str(), 1);
            else ::unsetenv("TZ");
        }
    } far_away;
    const auto cfg = config("ist", "\n[display]\nmoney_grouping = \"indian\"\n");
    const auto now_us = [] { return tradestate::Timestamp::now().micros(); };
    // "YYYY-MM-DD HH:MM:SS" (IST) is now, give or take two minutes
    auto is_now = [&](const std::string& ist) {
        const auto d = now_us() - tradestate::Timestamp::from_iso(ist).micros(); // no offset: IST
        return d > -120'000'000 && d < 120'000'000;
    };
    // "HH:MM:SS" is the IST time of day now, give or take two minutes
    auto is_now_of_day = [&](const std::string& hms) {
        const auto secs = [](const std::string& t) { return std::stoi(t.substr(0, 2)) * 3600 + std::stoi(t.substr(3, 2)) * 60 + std::stoi(t.substr(6, 2)); };
        const std::string ist_now = tradestate::Timestamp::now().to_display().substr(11, 8);
        const int d = ((secs(hms) - secs(ist_now)) % 86400 + 86400 + 43200) % 86400 - 43200;
        return d > -120 && d < 120;
    };
    // `text` has the shape of `pattern`: '9' is any digit, anything else itself
    auto shaped = [](std::string_view text, std::string_view pattern) {
        if (text.size() != pattern.size()) return false;
        for (std::size_t i = 0; i < text.size(); ++i)
            if (pattern[i] == '9' ? !std::isdigit(static_cast<unsigned char>(text[i])) : text[i] != pattern[i]) return false;
        return true;
    };
    auto lines_of = [](const std::string& text) {
        std::vector<std::string> v;
        std::istringstream in(text);
        for (std::string l; std::getline(in, l);) v.push_back(l);
        return v;
    };
    std::string first, again;
    ASSERT_EQ(run(args(cfg, "--iterations", "30"), out("ist"), &first), 0) << first;
    ASSERT_EQ(run(args(cfg, "--resume", "--iterations", "1"), out("ist"), &again), 0) << again;

    bool prompt_seen = false;
    for (const auto& l : lines_of(again))
        if (l.starts_with("   Last modified: ")) {
            prompt_seen = true;
            const auto shown = l.substr(18);
            ASSERT_TRUE(shaped(shown, "9999-99-99 99:99:99 IST")) << l;
            EXPECT_TRUE(is_now(shown.substr(0, 19))) << l;
        }
    EXPECT_TRUE(prompt_seen) << again;
    // console log lines: "HH:MM:SS IST info ..."; none without the zone
    int log_lines = 0;
    for (const auto& l : lines_of(first)) {
        if (l.size() < 9 || !shaped(std::string_view(l).substr(0, 9), "99:99:99 ")) continue;
        ++log_lines;
        EXPECT_TRUE(std::string_view(l).substr(8).starts_with(" IST info ")) << "a console log line without its zone: " << l;
        EXPECT_TRUE(is_now_of_day(l.substr(0, 8))) << l;
    }
    EXPECT_GT(log_lines, 0) << first;
    // the log file: "[YYYY-MM-DD HH:MM:SS.mmm IST] [info] ..."
    std::ifstream logf(dir_ / "ist" / "logs" / "fno_runner.log");
    std::string line;
    ASSERT_TRUE(std::getline(logf, line));
    ASSERT_GE(line.size(), 31u) << line;
    EXPECT_TRUE(shaped(std::string_view(line).substr(0, 31), "[9999-99-99 99:99:99.999 IST] [")) << line;
    EXPECT_TRUE(is_now(line.substr(1, 19))) << line;

    // money: the summary and the listing group the Indian way
    const auto s = load(cfg);
    const auto cash = s.portfolio.cash().format(tradestate::MoneyGrouping::indian);
    ASSERT_NE(cash, s.portfolio.cash().format(tradestate::MoneyGrouping::western)) << "cash below ₹1,00,000";
    EXPECT_NE(again.find("   Cash Remaining: " + cash), std::string::npos) << again;
    std::string listing;
    ASSERT_EQ(run({"--config", cfg.string(), "--show-sessions"}, out("ist"), &listing), 0) << listing;
    EXPECT_NE(listing.find("   • Cash: " + cash + "\n"), std::string::npos) << listing;
    for (const auto& l : lines_of(listing)) {
        const auto at = l.find("Last updated ");
        if (at == std::string::npos) continue;
        const auto shown = l.substr(at + 13);
        EXPECT_TRUE(shaped(shown, "9999-99-99 99:99:99 IST")) << l;
        EXPECT_TRUE(is_now(shown.substr(0, 19))) << l;
    }
    // --json: times with their offset (+05:30), never the host's
    const auto js = tradestate::testing::capture({tradestate::testing::tool_bin(), "--config", cfg.string(), "show-sessions", "--json"});
    ASSERT_EQ(js.code, 0) << js.all();
    EXPECT_EQ(js.out.find("-10:00"), std::string::npos) << js.out;
    const auto arr = boost::json::parse(js.out).as_array();
    ASSERT_FALSE(arr.empty());
    for (const auto& x : arr) {
        EXPECT_TRUE(x.at("saved_at").as_string().ends_with("+05:30")) << x;
        for (const auto& [name, when] : x.at("companions").as_object())
            EXPECT_TRUE(when.as_string().ends_with("+05:30")) << name << ": " << when;
    }
}

TEST_P(RunnerE2E, ResumeAndFreshFlagsDecideWithoutAsking) {
    const auto cfg = config("s");
    ASSERT_EQ(run(args(cfg, "--iterations", "4"), out("a")), 0);
    std::string t;
    ASSERT_EQ(run(args(cfg, "--resume", "--iterations", "4"), out("b"), &t), 0);
    EXPECT_EQ(t.find("Resume from previous session?"), std::string::npos);
    EXPECT_EQ(load(cfg).iteration, 8);
    ASSERT_EQ(run(args(cfg, "--fresh", "--iterations", "2"), out("c"), &t), 0);
    EXPECT_NE(t.find("🆕 Starting a fresh session"), std::string::npos);
    EXPECT_EQ(load(cfg).iteration, 2);
}

TEST_P(RunnerE2E, KilledAndResumedRunsEndInTheUninterruptedState) {
    const int target = 150;
    const auto ref_cfg = config("ref");
    ASSERT_EQ(run(args(ref_cfg, "--until-iteration", std::to_string(target)), out("ref")), 0);

    const auto cfg = config("int");
    struct Stop {
        int at;
        int sig;
    };
    for (Stop s : {Stop{17, SIGKILL}, Stop{43, SIGINT}, Stop{88, SIGKILL}, Stop{121, SIGTERM}}) {
        auto v = args(cfg, "--until-iteration", std::to_string(target));
        v[4] = "2";
        auto p = spawn(v, out("part"));
        const std::string mark = "🔁 Iteration " + std::to_string(s.at) + " |";
        ASSERT_TRUE(p->wait_for_output([&](const std::string& t) { return t.find(mark) != std::string::npos; }))
            << p->output();
        ::kill(p->pid(), s.sig);
        const int rc = p->wait();
        if (s.sig == SIGKILL) EXPECT_EQ(rc, 128 + SIGKILL);
        else EXPECT_EQ(rc, 0) << p->output();
    }
    std::string last;
    ASSERT_EQ(run(args(cfg, "--until-iteration", std::to_string(target)), out("final"), &last), 0) << last;
    EXPECT_NE(last.find("✅ Previous session loaded successfully!"), std::string::npos);
    // Everything, the journal's id and position included, is identical.
    EXPECT_EQ(text_of(load(cfg)), text_of(load(ref_cfg)));
}

TEST_P(RunnerE2E, TenThousandIterationsKeepMoneyExact) {
    const auto cfg = config("long", "", 1000);
    std::string text;
    ASSERT_EQ(run(args(cfg, "--until-iteration", "10000"), out("long"), &text), 0) << text.substr(text.size() - 3000);
    const auto st = load(cfg);
    EXPECT_EQ(st.iteration, 10000);
    EXPECT_EQ(st.portfolio.reconcile(), Money{});
    EXPECT_EQ(st.portfolio.expected_cash(), st.portfolio.cash());
    Money pnl;
    for (const auto& t : st.portfolio.trade_history()) pnl += t.pnl;
    EXPECT_EQ(pnl, st.portfolio.total_pnl());
    EXPECT_GT(st.portfolio.trade_history().size(), 100u);
    // the trades crossed the January 2026 lot-size change
    bool lot75 = false, lot65 = false;
    for (const auto& t : st.portfolio.trade_history())
        if (t.symbol.rfind("NIFTY", 0) == 0 && t.symbol.rfind("NIFTYB", 0) != 0) {
            lot75 = lot75 || t.shares % 75 == 0;
            lot65 = lot65 || (t.shares % 65 == 0 && t.shares % 75 != 0);
        }
    EXPECT_TRUE(lot75);
    EXPECT_TRUE(lot65);
}

TEST_P(RunnerE2E, MaxPositionsIsNeverExceeded) {
    for (int maxp : {2, 4}) {
        const auto cfg = config("mp" + std::to_string(maxp), "", 1);
        // max_positions via [trading]
        {
            std::ofstream f(cfg, std::ios::app);
            f << "\n[trading]\nmax_positions = " << maxp << "\n";
        }
        std::string text;
        ASSERT_EQ(run(args(cfg, "--iterations", "400"), out("mp"), &text), 0) << text.substr(0, 3000);
        int lines = 0, peak = 0;
        for (const auto& [at, n64] : numbers_after(text, "| positions ")) {
            const int n = static_cast<int>(n64);
            EXPECT_LE(n, maxp);
            peak = std::max(peak, n);
            ++lines;
        }
        EXPECT_EQ(lines, 400);
        EXPECT_GE(peak, 1);
        EXPECT_LE(static_cast<int>(load(cfg).portfolio.positions().size()), maxp);
    }
}

TEST_P(RunnerE2E, ShowSessionsListsCustomNamedSessions) {
    const auto cfg = config("s");
    ASSERT_EQ(run(args(cfg, "--session", "alpha", "--iterations", "3"), out("a")), 0);
    ASSERT_EQ(run(args(cfg, "--session", "beta", "--iterations", "5"), out("b")), 0);
    std::string t;
    ASSERT_EQ(run({"--config", cfg.string(), "--show-sessions"}, out("list"), &t), 0) << t;
    const auto alpha = load(cfg, "alpha");
    EXPECT_TRUE(in_order(t, {"📂 SAVED TRADING SESSIONS", "==================================================",
                             "📊 Session 'alpha':", "   • Saved: " + alpha.timestamp.to_iso(), "   • Iteration: 3",
                             "   • Cash: " + alpha.portfolio.cash().format(), "📊 Session 'beta':", "   • Iteration: 5"}));
}

TEST_P(RunnerE2E, SecondRunnerOnTheSameSessionIsRefused) {
    const auto cfg = config("s");
    auto v = base(cfg);
    v[4] = "20";
    auto first = spawn(v, out("first"));
    ASSERT_TRUE(first->wait_for_output([](const std::string& t) { return t.find("🔁 Iteration 1 |") != std::string::npos; }));
    std::string t;
    EXPECT_EQ(run(args(cfg, "--iterations", "1"), out("second"), &t), 2) << t;
    EXPECT_NE(t.find(std::to_string(first->pid())), std::string::npos) << t;
    ::kill(first->pid(), SIGINT);
    EXPECT_EQ(first->wait(), 0);
}

TEST_P(RunnerE2E, FailedSaveIsLoudNonZeroAndKeepsTheLastGoodState) {
    if (GetParam() == "mmap-binary")
        GTEST_SKIP() << "mmap-binary writes into already allocated file space, which RLIMIT_FSIZE does not limit: "
                        "this way of making a save fail does not apply";
    if (GetParam() == "postgres")
        GTEST_SKIP() << "the PostgreSQL server writes the data, not the runner: RLIMIT_FSIZE does not apply (connection "
                        "loss and lost leases are tested in tests/postgres)";
    const auto cfg = config("s", "", 0); // no auto-save: only the final save
    ASSERT_EQ(run(args(cfg, "--iterations", "30"), out("good")), 0);
    const std::string good = text_of(load(cfg));
    std::string t;
    // every file write beyond 2 KiB fails (EFBIG): the final save cannot complete
    const int rc = run_limited(args(cfg, "--resume", "--iterations", "30"), 2048, t);
    EXPECT_EQ(rc, 3) << t;
    EXPECT_NE(t.find("SAVING THE TRADING SESSION FAILED"), std::string::npos) << t;
    // What is stored is a complete state: the last good one, or (a backend that writes
    // in place into already allocated space, like mmap-binary, may not hit the limit) the
    // complete final one — never a damaged one.
    const auto after = load(cfg);
    EXPECT_EQ(after.portfolio.reconcile(), Money{});
    if (after.iteration == 30) {
        EXPECT_EQ(text_of(after), good);
    } else {
        EXPECT_EQ(after.iteration, 60);
    }
}

TEST_P(RunnerE2E, JournalKeepsEveryLoggedIterationAcrossKill9) {
    // One snapshot at the start, then only the journal: whatever the runner
    // logged as done before SIGKILL is back after the restart.
    const auto cfg = config("j", "", 100000);
    auto v = base(cfg);
    v[4] = "1";
    auto p = spawn(v, out("killed"));
    ASSERT_TRUE(p->wait_for_output([](const std::string& t) { return t.find("🔁 Iteration 40 |") != std::string::npos; }))
        << p->output();
    ::kill(p->pid(), SIGKILL);
    EXPECT_EQ(p->wait(), 128 + SIGKILL);
    const auto logged = numbers_after(p->output(), "🔁 Iteration ");
    ASSERT_FALSE(logged.empty());
    const long long last_logged = logged.back().second;
    std::string t;
    ASSERT_EQ(run(args(cfg, "--resume", "--iterations", "1"), out("resumed"), &t), 0) << t;
    EXPECT_NE(t.find("📜 Replayed "), std::string::npos) << t;
    const auto resumed = numbers_after(t, "🔢 Iteration: ");
    ASSERT_FALSE(resumed.empty()) << t;
    EXPECT_GE(resumed.front().second, last_logged) << t;
    // The final save holds one more iteration, and the money invariant holds.
    const auto st = load(cfg);
    EXPECT_EQ(st.iteration, resumed.front().second + 1);
    EXPECT_EQ(st.portfolio.reconcile(), tradestate::Money{});
}

INSTANTIATE_TEST_SUITE_P(Backends, RunnerE2E, ::testing::ValuesIn(backends_present()),
                         [](const ::testing::TestParamInfo<std::string>& p) {
                             std::string n = p.param;
                             for (auto& c : n)
                                 if (c == '-') c = '_';
                             return n;
                         });
// Against a real PostgreSQL server (registered with its ctest fixture in CMakeLists.txt).
INSTANTIATE_TEST_SUITE_P(Postgres, RunnerE2E, ::testing::Values(std::string("postgres")),
                         [](const ::testing::TestParamInfo<std::string>&) { return std::string("postgres"); });

TEST(RunnerCli, HelpDocumentsEveryOption) {
    char tmpl[] = "/tmp/fno_runner_help.XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    const fs::path o = fs::path(tmpl) / "help.out";
    std::string t;
    EXPECT_EQ(run({"--help"}, o, &t), 0);
    for (const char* opt : {"--config", "--state-dir", "--session", "--resume", "--fresh", "--accept-loss",
                            "--show-sessions", "--iterations", "--until-iteration", "--interval-ms", "--seed",
                            "--no-dashboard", "--sim-clock", "--version"})
        EXPECT_NE(t.find(opt), std::string::npos) << opt;
    fs::remove_all(tmpl);
}

TEST(Cli, EveryProgramPrintsItsVersionAndThePluginAbi) {
    const std::string want = std::string(" ") + tradestate::version_string + " (plugin ABI " +
                             std::to_string(tradestate::plugin_abi_version) + ")";
    for (const auto& [bin, name] : {std::pair{tradestate::testing::runner_bin(), "fno_runner"},
                                    std::pair{tradestate::testing::dashboard_bin(), "fno_dashboard"},
                                    std::pair{tradestate::testing::tool_bin(), "tradestate"}}) {
        std::string t;
        EXPECT_EQ(tradestate::testing::run({bin, "--version"}, &t), 0) << name << ": " << t;
        EXPECT_EQ(t, name + want + "\n") << name;
    }
}

} // namespace
