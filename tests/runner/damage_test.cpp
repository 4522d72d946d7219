// The real fno_runner and tradestate tool against every way a session's
// files get damaged, on every file backend: after a kill -9 and the damage,
// the runner resumes at the last acknowledged (logged) iteration — or, only
// where the bytes are gone, stops (exit 5) naming what was lost; `tradestate
// verify` exits non-zero; none of them starts a fresh session.
#include <tradestate_test/support.hpp>

#include <tradestate/detail/atomic_file.hpp>
#include <tradestate/detail/endian.hpp>
#include <tradestate/detail/json.hpp>
#include <tradestate/journal_format.hpp>
#include <tradestate/session_state.hpp>

#include <gtest/gtest.h>

#include <csignal>
#include <filesystem>
#include <fstream>
#include <functional>
#include <string>

namespace fs = std::filesystem;
using namespace tradestate::testing;
namespace d = tradestate::detail;

namespace {

/// What a case does to the state directory after the kill.
enum class Damage {
    none,              ///< nothing: export and the resume agree
    newest_copy,       ///< the newest snapshot's checksum fails
    every_copy,        ///< no snapshot loads (json: main and backups gone; mmap: both descriptors zeroed; archive: cut to its header)
    journal_deleted,
    journal_to_header,
    journal_at_record, ///< cut at a record boundary
    journal_in_record, ///< cut inside a record
};

struct Case {
    std::string backend;
    Damage damage;
    const char* name;
};

void PrintTo(const Case& c, std::ostream* os) { *os << c.backend << " " << c.name; }

std::string case_name(const ::testing::TestParamInfo<Case>& i) {
    std::string s = i.param.backend + "_" + i.param.name;
    for (auto& c : s)
        if (c == '-') c = '_';
    return s;
}

std::vector<Case> all_cases() {
    const std::pair<Damage, const char*> kinds[] = {
        {Damage::none, "no_damage"},
        {Damage::newest_copy, "newest_copy_damaged"},
        {Damage::every_copy, "every_copy_unloadable"},
        {Damage::journal_deleted, "journal_deleted"},
        {Damage::journal_to_header, "journal_cut_to_its_header"},
        {Damage::journal_at_record, "journal_cut_at_a_record_boundary"},
        {Damage::journal_in_record, "journal_cut_inside_a_record"},
    };
    std::vector<Case> out;
    for (const auto& b : file_backends())
        for (const auto& [k, n] : kinds) out.push_back({b, k, n});
    return out;
}

/// A runner session in a temp dir: config, runs, the tool.
class RunnerFixture {
public:
    RunnerFixture(const std::string& backend, int auto_save_every) {
        std::ofstream f(cfg());
        f << tradestate::testing::runner_app_sections << "[persistence]\nbackend = \"" << backend << "\"\nstate_dir = \"" << state().string() << "\"\nplugin_dir = \""
          << plugin_dir().string() << "\"\nauto_save_every = " << auto_save_every
          << "\nfsync = false\njournal_fsync = \"never\"\n\n[dashboard]\nenabled = false\n\n[runner]\nsim_clock = true\n";
    }
    [[nodiscard]] fs::path cfg() const { return dir_ / "config.toml"; }
    [[nodiscard]] fs::path state() const { return dir_ / "state"; }

    /// Run until iteration `at` is logged, then SIGKILL; returns the last logged iteration.
    /// With `meanwhile`: call it once `at` is logged, let ten more iterations be logged, then kill.
    long long run_and_kill(long long at, const std::function<void()>& meanwhile = {}) {
        ProcessOptions o;
        o.output_file = dir_ / ("run" + std::to_string(++runs_) + ".out");
        Process p({runner_bin(), "--config", cfg().string(), "--no-dashboard", "--interval-ms", meanwhile ? "5" : "0",
                   "--fresh"},
                  o);
        auto logged = [](long long n) {
            return [n](const std::string& t) { return t.find("🔁 Iteration " + std::to_string(n) + " |") != std::string::npos; };
        };
        auto last_logged = [&] {
            long long last = 0;
            for (const auto& [pos, n] : numbers_after(p.output(), "🔁 Iteration ")) last = std::max(last, n);
            return last;
        };
        EXPECT_TRUE(p.wait_for_output(logged(at))) << p.output();
        if (meanwhile) {
            meanwhile();
            EXPECT_TRUE(p.wait_for_output(logged(last_logged() + 10))) << p.output();
        }
        p.signal(SIGKILL);
        p.wait();
        return last_logged();
    }
    Captured tool(std::vector<std::string> args) {
        args.insert(args.begin(), {tool_bin(), "--config", cfg().string()});
        return capture(args);
    }
    Captured resume() {
        return capture({runner_bin(), "--config", cfg().string(), "--no-dashboard", "--interval-ms", "0", "--resume",
                        "--iterations", "1"});
    }

private:
    TempDir dir_{"tradestate-damage"};
    int runs_ = 0;
};

/// "🔢 Iteration: N" of a resume.
long long resumed_iteration(const std::string& out) {
    for (const auto& [pos, n] : numbers_after(out, "🔢 Iteration: ")) return n;
    return -1;
}

void damage_newest(const std::string& backend, const fs::path& state) {
    if (backend == "json-files") {
        const auto f = state / "fno_system_state.json";
        put_byte(f, fs::file_size(f) / 2, '#');
    } else if (backend == "mmap-binary") {
        const auto f = state / "default.tsmm";
        const std::string b = slurp(f);
        const std::size_t desc = d::get_u64(b.data() + 1024 + 8) > d::get_u64(b.data() + 512 + 8) ? 1024 : 512;
        const auto at = d::get_u64(b.data() + desc + 16) + d::get_u64(b.data() + desc + 32) / 2;
        put_byte(f, at, static_cast<char>(b[at] ^ 0x5a));
    } else {
        const auto f = state / "default.tsarc";
        const std::string b = slurp(f);
        put_byte(f, b.size() - 9, static_cast<char>(b[b.size() - 9] ^ 0x5a));
    }
}

void make_every_copy_unloadable(const std::string& backend, const fs::path& state) {
    if (backend == "json-files") {
        fs::remove(state / "fno_system_state.json");
        fs::remove_all(state / "backups");
    } else if (backend == "mmap-binary") {
        std::string b = slurp(state / "default.tsmm");
        std::fill(b.begin() + 512, b.begin() + 1536, '\0');
        spit(state / "default.tsmm", b);
    } else {
        truncate_to(state / "default.tsarc", 16);
        fs::remove(state / "default.tsarc.idx");
    }
}

} // namespace

class Damaged : public ::testing::TestWithParam<Case> {};

TEST_P(Damaged, RunnerResumesAtTheLastAcknowledgedIterationOrStopsNamingTheLossAndVerifyFails) {
    const Case c = GetParam();
    const bool journal_case = c.damage >= Damage::journal_deleted;
    // Journal cases: one snapshot at the start, everything after it in the journal (so its loss is real).
    RunnerFixture r(c.backend, journal_case ? 100000 : 10);
    const long long last = r.run_and_kill(47);
    ASSERT_GE(last, 47);
    const auto journal = r.state() / "default.journal";
    const std::string jbytes = slurp(journal);
    switch (c.damage) {
    case Damage::none: break;
    case Damage::newest_copy: damage_newest(c.backend, r.state()); break;
    case Damage::every_copy: make_every_copy_unloadable(c.backend, r.state()); break;
    case Damage::journal_deleted: fs::remove(journal); break;
    case Damage::journal_to_header: spit(journal, jbytes.substr(0, d::journal_header_size)); break;
    case Damage::journal_at_record:
    case Damage::journal_in_record: {
        const auto jc = tradestate::decode_journal(jbytes, journal.string());
        ASSERT_GT(jc.records.size(), 10u);
        const auto cut = jc.records[jc.records.size() / 2].offset + (c.damage == Damage::journal_in_record ? 30 : 0);
        spit(journal, jbytes.substr(0, cut));
        break;
    }
    }
    const bool bytes_gone = journal_case || c.damage == Damage::every_copy;

    const auto verify = r.tool({"verify"});
    if (c.damage == Damage::none) {
        EXPECT_EQ(verify.code, 0) << verify.all();
        // What the tool shows is what the runner resumes at.
        const auto exported = r.tool({"export", "default"});
        ASSERT_EQ(exported.code, 0) << exported.all();
        const auto st = boost::json::value_to<tradestate::SessionState>(d::parse(exported.out, "export"));
        EXPECT_GE(st.iteration, last);
        const auto resumed = r.resume();
        ASSERT_EQ(resumed.code, 0) << resumed.all();
        EXPECT_EQ(resumed_iteration(resumed.out), st.iteration) << resumed.all();
        return;
    }
    EXPECT_NE(verify.code, 0) << "verify passed a damaged session:\n" << verify.all();

    const auto resumed = r.resume();
    EXPECT_EQ(resumed.all().find("New paper-trading session"), std::string::npos)
        << "a damaged session turned into a fresh start:\n" << resumed.all();
    if (bytes_gone) {
        EXPECT_EQ(resumed.code, 5) << resumed.all();
        EXPECT_NE(resumed.all().find("acknowledged but"), std::string::npos) << resumed.all();
        EXPECT_NE(resumed.all().find("--accept-loss"), std::string::npos) << resumed.all();
        EXPECT_NE(verify.out.find("acknowledged but"), std::string::npos) << verify.all();
    } else {
        ASSERT_EQ(resumed.code, 0) << resumed.all();
        EXPECT_GE(resumed_iteration(resumed.out), last) << resumed.all();
    }
}

INSTANTIATE_TEST_SUITE_P(FileBackends, Damaged, ::testing::ValuesIn(all_cases()), case_name);

// ----------------------------------------------------- every file backend

class Writer : public ::testing::TestWithParam<std::string> {};

TEST_P(Writer, StateDirDeletedUnderARunningRunnerIsWrittenAgainBeforeTheNextIterationIsLogged) {
    RunnerFixture r(GetParam(), 100000);
    // rm -rf of the state dir, in one step (a writer running beside a recursive delete could race it).
    const long long last = r.run_and_kill(20, [&] {
        fs::rename(r.state(), r.state().string() + ".deleted");
        fs::remove_all(r.state().string() + ".deleted");
    });
    ASSERT_GE(last, 30);
    const auto resumed = r.resume();
    ASSERT_EQ(resumed.code, 0) << resumed.all();
    EXPECT_GE(resumed_iteration(resumed.out), last) << resumed.all();
}

TEST_P(Writer, FreshStartKeepsThePreviousSessionAndItsBackupsApart) {
    RunnerFixture r(GetParam(), 10);
    const long long first = r.run_and_kill(35);
    std::string out;
    ASSERT_EQ(run({runner_bin(), "--config", r.cfg().string(), "--no-dashboard", "--interval-ms", "0", "--fresh",
                   "--iterations", "3"},
                  &out),
              0)
        << out;
    EXPECT_NE(out.find("the previous one is kept as session 'default-backup-"), std::string::npos) << out;
    // The old session, whole, under its new name.
    const auto list = r.tool({"show-sessions", "--json"});
    ASSERT_EQ(list.code, 0) << list.all();
    std::string backup;
    const auto sessions = d::parse(list.out, "list");
    for (const auto& s : sessions.as_array())
        if (std::string(s.at("session").as_string()).rfind("default-backup-", 0) == 0)
            backup = std::string(s.at("session").as_string());
    ASSERT_FALSE(backup.empty()) << list.out;
    const auto exported = r.tool({"export", backup});
    ASSERT_EQ(exported.code, 0) << exported.all();
    EXPECT_GE(boost::json::value_to<tradestate::SessionState>(d::parse(exported.out, "e")).iteration, first);
    // The new session's copies are its own: with its newest damaged, nothing of the old one comes back.
    damage_newest(GetParam(), r.state());
    const auto resumed = r.resume();
    ASSERT_EQ(resumed.code, 0) << resumed.all();
    EXPECT_LE(resumed_iteration(resumed.out), 3) << resumed.all();
}

INSTANTIATE_TEST_SUITE_P(FileBackends, Writer, ::testing::ValuesIn(file_backends()), [](const auto& i) {
    std::string s = i.param;
    for (auto& ch : s)
        if (ch == '-') ch = '_';
    return s;
});

// ---------------------------------------------------------- json-files

TEST(DamagedJsonFiles, AnOlderBackupCopiedOverTheMainFileIsNamedAndRolledForward) {
    RunnerFixture r("json-files", 5);
    const long long last = r.run_and_kill(47);
    const auto backups = files_containing(r.state() / "backups", "fno_system_state.");
    ASSERT_GE(backups.size(), 3u);
    fs::copy_file(backups.front(), r.state() / "fno_system_state.json", fs::copy_options::overwrite_existing);
    const auto verify = r.tool({"verify"});
    EXPECT_NE(verify.code, 0) << verify.all();
    EXPECT_NE(verify.out.find("rolled back"), std::string::npos) << verify.all();
    const auto resumed = r.resume();
    ASSERT_EQ(resumed.code, 0) << resumed.all();
    EXPECT_GE(resumed_iteration(resumed.out), last) << resumed.all();
}

TEST(DamagedJsonFiles, AnOlderBackupOverTheMainFileWithTheJournalGoneIsANamedLoss) {
    RunnerFixture r("json-files", 5);
    (void)r.run_and_kill(47);
    const auto state = r.state();
    const auto backups = files_containing(state / "backups", "fno_system_state.");
    ASSERT_GE(backups.size(), 3u);
    fs::copy_file(backups.front(), state / "fno_system_state.json", fs::copy_options::overwrite_existing);
    fs::remove_all(state / "backups");
    fs::remove(state / "default.journal");
    const auto verify = r.tool({"verify"});
    EXPECT_NE(verify.code, 0) << verify.all();
    const auto resumed = r.resume();
    EXPECT_EQ(resumed.code, 5) << resumed.all();
    EXPECT_NE(resumed.all().find("were acknowledged but are gone"), std::string::npos) << resumed.all();
}

TEST(DamagedJsonFiles, AMainFileStrippedOfItsChecksumWithMoreCashIsNotBelieved) {
    RunnerFixture r("json-files", 10);
    const long long last = r.run_and_kill(47);
    const auto main = r.state() / "fno_system_state.json";
    auto doc = d::parse(slurp(main), "main");
    doc.as_object().erase("_tradestate");
    const double cash = doc.at("portfolio").at("cash").as_double();
    doc.as_object()["portfolio"].as_object()["cash"] = cash + 1000.0;
    spit(main, d::print(doc) + "\n");
    const auto verify = r.tool({"verify"});
    EXPECT_NE(verify.code, 0) << verify.all();
    const auto resumed = r.resume();
    ASSERT_EQ(resumed.code, 0) << resumed.all();
    EXPECT_GE(resumed_iteration(resumed.out), last) << resumed.all();
    const auto exported = r.tool({"export", "default"});
    const auto st = boost::json::value_to<tradestate::SessionState>(d::parse(exported.out, "e"));
    EXPECT_EQ(st.portfolio.reconcile(), tradestate::Money{}) << "the ₹1,000 came back";
}

TEST(DamagedJsonFiles, AStopRightAfterAnAutoSaveWritesNothingTwice) {
    RunnerFixture r("json-files", 10);
    std::string out;
    ASSERT_EQ(run({runner_bin(), "--config", r.cfg().string(), "--no-dashboard", "--interval-ms", "0", "--fresh",
                   "--iterations", "10"},
                  &out),
              0)
        << out;
    EXPECT_NE(d::read_file(r.state() / "logs" / "fno_runner.log").find("nothing changed since the last save"),
              std::string::npos)
        << out;
    // Saves: the first snapshot and the auto-save at 10 — not a third of the same state.
    const auto main = d::parse(slurp(r.state() / "fno_system_state.json"), "main");
    EXPECT_EQ(main.at("_tradestate").at("sequence").as_int64(), 2);
}

TEST(DamagedCompressedArchive, TheIncompleteRecordOfAnInterruptedSaveIsNoAlarm) {
    // A crash in the middle of an append leaves the start of a record at
    // the end of the live file: that save never returned, so nothing that
    // was acknowledged is missing, and verify says so with exit 0.
    auto run31 = [](RunnerFixture& r) {
        std::string out;
        EXPECT_EQ(run({runner_bin(), "--config", r.cfg().string(), "--no-dashboard", "--interval-ms", "0", "--fresh",
                       "--iterations", "31"},
                      &out),
                  0)
            << out;
    };
    RunnerFixture r("compressed-archive", 5);
    run31(r);
    const auto live = r.state() / "default.tsarc";
    const std::string bytes = slurp(live);
    ASSERT_GT(bytes.size(), 16u + 40u);
    {
        std::ofstream f(live, std::ios::binary | std::ios::app);
        f << bytes.substr(16, 40); // the first 40 bytes of a record header, magic included
    }
    const auto verify = r.tool({"verify"});
    EXPECT_EQ(verify.code, 0) << verify.all();
    EXPECT_NE(verify.out.find("an interrupted save leaves this"), std::string::npos) << verify.all();
    EXPECT_NE(verify.out.find("interrupted before it was acknowledged"), std::string::npos) << verify.all();
    const auto resumed = r.resume();
    ASSERT_EQ(resumed.code, 0) << resumed.all();
    EXPECT_EQ(resumed_iteration(resumed.out), 31) << resumed.all();
    // Cut into the last whole record instead: an acknowledged snapshot is damaged, and verify fails.
    RunnerFixture cut("compressed-archive", 5);
    run31(cut);
    const auto cut_live = cut.state() / "default.tsarc";
    truncate_to(cut_live, fs::file_size(cut_live) - 10);
    const auto verify_cut = cut.tool({"verify"});
    EXPECT_NE(verify_cut.code, 0) << verify_cut.all();
    EXPECT_NE(verify_cut.out.find("the newest copy of the session is unusable"), std::string::npos) << verify_cut.all();
}
