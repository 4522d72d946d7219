// Faults from the system, injected with an LD_PRELOAD shim (fault_shim.c)
// into real child processes: ENOSPC mid-write, EIO from fsync, EACCES and
// EROFS on the state dir, rename failure. For every file backend and fault:
// the save fails with a clear error (or, where the fault only hits a cache,
// succeeds completely), the previous state stays intact, no temp file is
// left, a failed fsync is never retried on the same file descriptor, the
// next save without the fault succeeds; and fno_runner keeps trading under
// the fault and saves again once it is gone.
#include "../conformance/support.hpp"

#include <gtest/gtest.h>

#include <chrono>
#include <csignal>
#include <fstream>
#include <iostream>
#include <sstream>

using namespace tradestate;
using namespace tradestate::testing;

namespace {

struct Case {
    const char* backend;
    const char* fault;
    const char* errno_text; ///< what the error message must contain when the save fails
};
void PrintTo(const Case& c, std::ostream* os) { *os << c.backend << " " << c.fault; }

const char* const backends[] = {"json-files", "mmap-binary", "compressed-archive"};
const Case faults[] = {
    {"", "enospc_after_bytes:1024", "No space left on device"},
    {"", "eio_fsync", "Input/output error"},
    {"", "eacces_open", "Permission denied"},
    {"", "erofs_open", "Read-only file system"},
    {"", "rename_fail", "Input/output error"},
};
std::vector<Case> all_cases() {
    std::vector<Case> out;
    for (const char* b : backends)
        for (Case c : faults) {
            c.backend = b;
            out.push_back(c);
        }
    return out;
}

std::string read_all(const fs::path& p) { return slurp(p); }

long count_lines(const std::string& text, const std::string& prefix) {
    long n = 0;
    std::istringstream in(text);
    std::string line;
    while (std::getline(in, line))
        if (line.rfind(prefix, 0) == 0) ++n;
    return n;
}

/// A child process with extra environment variables, stdout+stderr on a pipe.
class Proc : public Process {
public:
    Proc(std::vector<std::string> argv, std::vector<std::string> env) : Process(std::move(argv), options(std::move(env))) {}
    std::optional<std::string> line() { return read_line(); }
    /// Everything it printed, up to its end.
    std::string rest() {
        while (read_line()) {
        }
        return output();
    }

private:
    static ProcessOptions options(std::vector<std::string> env) {
        ProcessOptions o;
        o.env = std::move(env);
        return o;
    }
};

std::vector<std::string> shim_env(const Case& c, const fs::path& state, const fs::path& log, const fs::path& arm) {
    std::vector<std::string> env = {std::string("LD_PRELOAD=") + TRADESTATE_FAULT_SHIM,
                                    std::string("TS_FAULT=") + c.fault, "TS_FAULT_DIR=" + state.string(),
                                    "TS_FAULT_LOG=" + log.string(),
                                    // the shim cannot come before an ASan runtime in the library list
                                    "ASAN_OPTIONS=verify_asan_link_order=0:detect_leaks=0"};
    if (!arm.empty()) env.push_back("TS_FAULT_ARM=" + arm.string());
    return env;
}

/// Temp files a writer leaves if it does not clean up: ".<name>.tmp.<pid>.<n>".
std::vector<fs::path> temp_files(const fs::path& dir) {
    std::vector<fs::path> out;
    for (auto& e : fs::recursive_directory_iterator(dir))
        if (e.path().filename().string().find(".tmp.") != std::string::npos) out.push_back(e.path());
    return out;
}

BackendOptions opts_in(const fs::path& dir) { return options_in(dir, true); }

class Faults : public ::testing::TestWithParam<Case> {
protected:
    void SetUp() override {
        if (!fs::exists(plugin_dir() / plugin_file_name(GetParam().backend)))
            GTEST_SKIP() << "plugin " << GetParam().backend << " is not built";
    }
};

TEST_P(Faults, SaveFailsCleanlyKeepsThePreviousStateAndTheNextSaveWorks) {
    const Case c = GetParam();
    TempDir tmp;
    const fs::path state = tmp.path() / "state", log = tmp.path() / "shim.log";
    fs::create_directories(state);
    // the previous good state, saved without faults (twice: archives and
    // slots then hold more than one copy)
    {
        auto b = open_backend(c.backend, opts_in(state));
        save_doc(*b, "s", make_doc(30, 20, 1, 1));
    }
    {
        Proc p({TRADESTATE_FAULT_SAVER, c.backend, state.string(), "s", "2", "1"}, {});
        ASSERT_TRUE(p.until("OK 2")) << p.rest();
        ASSERT_EQ(p.wait(), 0);
    }
    // the faulty save
    Proc p({TRADESTATE_FAULT_SAVER, c.backend, state.string(), "s", "3", "1"}, shim_env(c, state, log, {}));
    const auto l = p.line();
    ASSERT_TRUE(l) << p.rest();
    ASSERT_EQ(p.wait(), 0) << p.rest();
    const std::string events = fs::exists(log) ? read_all(log) : std::string();
    const long injected = count_lines(events, "FAULT ");
    EXPECT_EQ(count_lines(events, "RETRY "), 0) << "a sync was retried on a descriptor whose sync had failed:\n"
                                                << events;

    auto b = open_backend(c.backend, opts_in(state));
    auto r = b->load("s");
    ASSERT_TRUE(r.has_value());
    std::string outcome;
    if (l->rfind("FAIL 3 ", 0) == 0) {
        EXPECT_GT(injected, 0) << "the save failed without an injected fault: " << *l;
        EXPECT_NE(l->find(c.errno_text), std::string::npos) << "the error does not say what happened: " << *l;
        EXPECT_NE(l->find(state.string()), std::string::npos) << "the error does not name the file: " << *l;
        EXPECT_TRUE(same_doc(r->doc, make_doc(30, 20, 2, 2)))
            << "after the failed save the previous state does not load (got iteration "
            << r->doc.as_object().at("iteration") << ")";
        outcome = "save failed: " + l->substr(7);
    } else {
        ASSERT_EQ(*l, "OK 3");
        // the fault hit nothing the save depends on (e.g. no rename in this
        // backend's save path): then the save is complete
        EXPECT_TRUE(same_doc(r->doc, make_doc(30, 20, 3, 3)));
        outcome = injected ? "save succeeded (the fault hit only a cache file)" : "not applicable (no such call)";
    }
    EXPECT_FALSE(r->recovered) << "the newest copy was damaged by the failed save";
    EXPECT_TRUE(temp_files(state).empty()) << "temp files left behind: " << temp_files(state).front();
    const auto rep = b->verify("s");
    EXPECT_TRUE(rep.ok()) << "verify fails after the faulty save";

    // the next save, without the fault, succeeds and loads
    {
        Proc q({TRADESTATE_FAULT_SAVER, c.backend, state.string(), "s", "4", "1"}, {});
        ASSERT_TRUE(q.until("OK 4")) << q.rest();
        ASSERT_EQ(q.wait(), 0);
    }
    auto r4 = b->load("s");
    ASSERT_TRUE(r4 && same_doc(r4->doc, make_doc(30, 20, 4, 4)) && !r4->recovered);
    std::cout << "[ figures ] " << c.backend << " " << c.fault << ": " << injected << " faults injected, "
              << count_lines(events, "SYNC ") << " syncs let through, 0 retried; " << outcome << std::endl;
}

/// fno_runner under the fault: keeps trading, logs the failed auto-save,
/// keeps the previous state, and saves again once the fault is gone.
TEST_P(Faults, RunnerKeepsTradingAndSavesAgainAfterTheFault) {
    const Case c = GetParam();
    TempDir tmp;
    const fs::path state = tmp.path() / "state", log = tmp.path() / "shim.log", arm = tmp.path() / "armed";
    fs::create_directories(state);
    const fs::path cfg = tmp.path() / "config.toml";
    {
        std::ofstream f(cfg);
        f << "[persistence]\nbackend = \"" << c.backend << "\"\nstate_dir = \"" << state.string()
          << "\"\nplugin_dir = \"" << plugin_dir().string() << "\"\nauto_save_every = 1\nfsync = true\n"
          // the snapshot path alone: the journal's own fault handling is tested in tests/journal
          << "journal = false\n"
          << "[dashboard]\nenabled = false\n";
    }
    Proc p({runner_bin(), "--config", cfg.string(), "--fresh", "--no-dashboard", "--iterations", "100000",
            "--interval-ms", "20"},
           shim_env(c, state, log, arm));
    auto first = p.until("Auto-saved (iteration");
    ASSERT_TRUE(first) << "the runner did not save before the fault was armed:\n" << p.rest();
    { std::ofstream(arm.string()) << "1"; } // arm the fault
    // every save now either fails (the runner says so and continues) or,
    // when the fault cannot hit this backend's save, succeeds
    std::int64_t last_saved = -1;
    std::optional<std::string> failed;
    for (int i = 0; i < 40 && !failed; ++i) {
        auto l = p.line();
        ASSERT_TRUE(l) << "the runner stopped under the fault:\n" << p.rest();
        if (l->find("AUTO-SAVE FAILED") != std::string::npos) failed = l;
        else if (auto at = l->find("Auto-saved (iteration "); at != std::string::npos)
            last_saved = std::stoll(l->substr(at + 22));
    }
    std::string outcome = "no save failed (the fault does not reach this backend's save path)";
    if (failed) {
        // trading continues: more iterations go by while the fault holds
        auto again = p.until("AUTO-SAVE FAILED");
        ASSERT_TRUE(again) << "the runner did not keep going under the fault:\n" << p.rest();
        EXPECT_NE(failed->find(c.errno_text), std::string::npos) << *failed;
        // the previous state is intact while the fault holds
        if (last_saved >= 0) {
            auto b = open_backend(c.backend, opts_in(state));
            auto r = b->load("default");
            ASSERT_TRUE(r.has_value());
            EXPECT_FALSE(r->recovered);
            EXPECT_EQ(r->meta.iteration, last_saved) << "the saved state changed while every save failed";
        }
        outcome = "auto-save failed and trading went on: " + failed->substr(failed->find("AUTO-SAVE"));
    }
    fs::remove(arm); // the fault is gone: the next auto-save must work
    auto ok = p.until("Auto-saved (iteration");
    ASSERT_TRUE(ok) << "the runner did not save again after the fault was removed:\n" << p.rest();
    p.signal(SIGTERM);
    const std::string out = p.rest();
    EXPECT_EQ(p.wait(), 0) << out;
    const std::string events = fs::exists(log) ? read_all(log) : std::string();
    EXPECT_EQ(count_lines(events, "RETRY "), 0) << events;
    EXPECT_TRUE(temp_files(state).empty()) << "temp files left behind: " << temp_files(state).front();
    auto b = open_backend(c.backend, opts_in(state));
    auto r = b->load("default");
    ASSERT_TRUE(r.has_value());
    EXPECT_FALSE(r->recovered);
    EXPECT_GT(r->meta.iteration, last_saved);
    std::cout << "[ figures ] runner " << c.backend << " " << c.fault << ": " << count_lines(events, "FAULT ")
              << " faults injected; " << outcome << std::endl;
}

/// fno_runner with the journal on under the fault: an iteration is logged as
/// done only once durable; the ones that could not be made durable are
/// logged as NOT saved; after the fault is gone and a kill -9, the resume
/// holds every iteration that was logged as done.
TEST_P(Faults, RunnerWithTheJournalLogsOnlyDurableIterationsThroughTheFault) {
    const Case c = GetParam();
    TempDir tmp;
    const fs::path state = tmp.path() / "state", log = tmp.path() / "shim.log", arm = tmp.path() / "armed";
    fs::create_directories(state);
    const fs::path cfg = tmp.path() / "config.toml";
    {
        std::ofstream f(cfg);
        f << "[persistence]\nbackend = \"" << c.backend << "\"\nstate_dir = \"" << state.string()
          << "\"\nplugin_dir = \"" << plugin_dir().string() << "\"\nauto_save_every = 5\nfsync = true\n"
          << "journal = true\njournal_fsync = \"always\"\n[dashboard]\nenabled = false\n";
    }
    Proc p({runner_bin(), "--config", cfg.string(), "--fresh", "--no-dashboard", "--iterations", "100000",
            "--interval-ms", "10"},
           shim_env(c, state, log, arm));
    ASSERT_TRUE(p.until("Iteration 3 |")) << p.rest();
    { std::ofstream(arm.string()) << "1"; } // arm the fault
    long not_saved = 0, logged_under_fault = 0;
    for (int i = 0; i < 60; ++i) {
        auto l = p.line();
        ASSERT_TRUE(l) << "the runner stopped under the fault:\n" << p.rest();
        if (l->find("is NOT saved") != std::string::npos) ++not_saved;
        else if (l->find("🔁 Iteration ") != std::string::npos) ++logged_under_fault;
    }
    fs::remove(arm); // the fault is gone
    ASSERT_TRUE(p.until("Auto-saved (iteration")) << "no save after the fault was removed:\n" << p.rest();
    ASSERT_TRUE(p.until("🔁 Iteration ")) << p.rest();
    p.signal(SIGKILL);
    const std::string out = p.rest();
    p.wait();
    long long last = 0;
    for (const auto& [pos, n] : numbers_after(out, "🔁 Iteration ")) last = std::max(last, n);
    std::string resumed;
    ASSERT_EQ(run({runner_bin(), "--config", cfg.string(), "--resume", "--no-dashboard", "--iterations", "1",
                   "--interval-ms", "0"},
                  &resumed),
              0)
        << resumed;
    const auto at = numbers_after(resumed, "🔢 Iteration: ");
    ASSERT_FALSE(at.empty()) << resumed;
    EXPECT_GE(at.front().second, last) << "iterations logged as done were lost:\n" << resumed;
    const std::string events = fs::exists(log) ? read_all(log) : std::string();
    EXPECT_EQ(count_lines(events, "RETRY "), 0) << events;
    std::cout << "[ figures ] runner+journal " << c.backend << " " << c.fault << ": " << count_lines(events, "FAULT ")
              << " faults injected; " << logged_under_fault << " iterations logged as done and " << not_saved
              << " as NOT saved under the fault; resumed at " << at.front().second << " >= last logged " << last
              << std::endl;
}

std::string param_name(const ::testing::TestParamInfo<Case>& info) {
    std::string n = std::string(info.param.backend) + "_" + info.param.fault;
    for (auto& ch : n)
        if (!std::isalnum(static_cast<unsigned char>(ch))) ch = '_';
    return n;
}

INSTANTIATE_TEST_SUITE_P(FileBackends, Faults, ::testing::ValuesIn(all_cases()), param_name);

} // namespace
