// Session<State> over the real plugins: every rule of docs/session.md that a
// library user relies on — acknowledged means durable, recovery rolls
// forward from any copy a fallback can use, every loss is named, nothing of
// a session on disk turns into a fresh start, backups belong to one lineage,
// files deleted under a running writer are written again at once.
//
// "A crash" here is dropping the Session without close(): what close()
// would add (the final snapshot) is missing, exactly as after kill -9 (the
// kill -9 proof itself is session_kill_test.cpp and examples/durable_session).
#include <tradestate_test/support.hpp>

#include "../postgres/pg_conformance.hpp"

#include <tradestate/detail/endian.hpp>
#include <tradestate/journal_format.hpp>
#include <tradestate/persister.hpp>
#include <tradestate/session.hpp>
#include <tradestate/session_state.hpp>

#include <gtest/gtest.h>

#include <filesystem>
#include <string>

using namespace tradestate;
using namespace tradestate::testing;
namespace fs = std::filesystem;
using TradingSession = tradestate::Session<SessionState>;
using Persister = StatePersister<SessionState>;

namespace {

std::vector<std::string> backends_to_test() {
    auto v = file_backends();
    for (const auto& n : available_backends())
        if (n == "postgres") v.push_back(n);
    return v;
}

class SessionTest : public ::testing::TestWithParam<std::string> {
protected:
    void SetUp() override {
        if (GetParam() == "postgres" && pg_url().empty())
            GTEST_SKIP() << "TRADESTATE_TEST_PG_URL is not set: the postgres instances run through ctest, which starts "
                            "a private PostgreSQL server";
    }
    [[nodiscard]] bool files() const { return GetParam() != "postgres"; }

    std::shared_ptr<Persister> persister() {
        auto o = options_in(dir_.path(), false);
        if (GetParam() == "postgres") (void)postgres_options(o);
        return std::make_shared<Persister>(open_backend(GetParam(), o), quiet_logger());
    }
    SessionOptions sopts(const std::string& name = "default") {
        SessionOptions o;
        o.name = name;
        o.state_dir = dir_.path();
        o.fsync = false;
        o.journal_fsync = JournalFsync::never; // a process crash keeps the page cache; these cases are about logic
        return o;
    }
    std::unique_ptr<TradingSession> open(const std::string& name = "default") {
        return std::make_unique<TradingSession>(persister(), sopts(name));
    }

    /// Start a session and record operations 1..n, a synchronous snapshot
    /// after each of `snapshots_at`; the session is left open. `ref` gets the
    /// same stream applied in memory.
    std::unique_ptr<TradingSession> run(std::uint64_t n, const std::vector<std::uint64_t>& snapshots_at, SessionState& ref) {
        auto s = open();
        s->start_fresh(fresh_state());
        ref = fresh_state();
        for (std::uint64_t k = 1; k <= n; ++k) {
            auto op = op_number(k, s->state());
            EXPECT_EQ(s->record(op), k);
            tradestate_apply(ref, op, "ref");
            if (std::find(snapshots_at.begin(), snapshots_at.end(), k) != snapshots_at.end()) s->snapshot();
        }
        EXPECT_EQ(s->state(), ref);
        return s;
    }

    [[nodiscard]] fs::path journal() const { return dir_.path() / "default.journal"; }

    /// Damage the newest saved copy of "default" so that its checksum fails.
    void damage_newest_copy() {
        const auto& b = GetParam();
        if (b == "json-files") {
            const auto f = dir_.path() / "fno_system_state.json";
            put_byte(f, fs::file_size(f) / 2, '#');
        } else if (b == "mmap-binary") {
            const auto f = dir_.path() / "default.tsmm";
            const std::string bytes = slurp(f);
            std::size_t newest = 512;
            if (detail::get_u64(bytes.data() + 1024 + 8) > detail::get_u64(bytes.data() + 512 + 8)) newest = 1024;
            const auto off = detail::get_u64(bytes.data() + newest + 16), len = detail::get_u64(bytes.data() + newest + 32);
            put_byte(f, off + len / 2, static_cast<char>(bytes[off + len / 2] ^ 0x5a));
        } else if (b == "compressed-archive") {
            const auto f = dir_.path() / "default.tsarc";
            const std::string bytes = slurp(f);
            put_byte(f, bytes.size() - 9, static_cast<char>(bytes[bytes.size() - 9] ^ 0x5a));
        } else {
            FAIL() << "no damage recipe for " << b;
        }
    }

    static bool host_file(const fs::path& p) {
        const auto f = p.filename().string();
        return f.find(".journal") != std::string::npos || f.ends_with(".mark") || f.ends_with(".lock");
    }
    /// The store's own files (not the host's journal and mark).
    std::map<fs::path, std::string> store_files() {
        std::map<fs::path, std::string> out;
        for (auto& [p, bytes] : snapshot_files(dir_.path()))
            if (!host_file(p)) out.emplace(p, std::move(bytes));
        return out;
    }
    /// Put the store's files back as they were (the journal and mark stay).
    void restore_store(const std::map<fs::path, std::string>& files) {
        for (const auto& [p, bytes] : snapshot_files(dir_.path()))
            if (!host_file(p) && !files.count(p)) fs::remove(p);
        for (const auto& [p, bytes] : files) {
            fs::create_directories(p.parent_path());
            spit(p, bytes);
        }
    }

    TempDir dir_{"tradestate-session"};
};

std::string name_of(const ::testing::TestParamInfo<std::string>& i) {
    std::string s;
    for (char c : i.param) s.push_back(c == '-' ? '_' : c);
    return s;
}

} // namespace

TEST_P(SessionTest, AcknowledgedOperationsSurviveACrashAndResumeRollsForward) {
    SessionState ref;
    { auto s = run(25, {10}, ref); } // crash: no close()
    auto s = open();
    EXPECT_TRUE(s->exists());
    const auto rep = s->resume();
    EXPECT_TRUE(rep.resumed);
    EXPECT_FALSE(rep.loss);
    EXPECT_FALSE(rep.recovered);
    EXPECT_EQ(rep.snapshot_op, 10u);
    EXPECT_EQ(rep.replayed, 15u);
    EXPECT_EQ(rep.last_op, 25u);
    EXPECT_EQ(s->state(), ref);
    EXPECT_EQ(s->state().portfolio.reconcile(), Money{});
    // And it goes on numbering from there.
    auto op = op_number(26, s->state());
    EXPECT_EQ(s->record(op), 26u);
    tradestate_apply(ref, op, "ref");
    EXPECT_TRUE(s->close());
    auto again = open();
    EXPECT_EQ(again->resume().replayed, 0u);
    EXPECT_EQ(again->state(), ref);
}

TEST_P(SessionTest, ASecondWriterIsRefusedNamingTheHolder) {
    auto s = open();
    s->start_fresh(fresh_state());
    try {
        auto t = open();
        FAIL() << "a second writer was let in";
    } catch (const Error& e) {
        EXPECT_EQ(e.code(), Errc::locked);
        EXPECT_NE(std::string(e.what()).find("already being written by"), std::string::npos) << e.what();
    }
}

TEST_P(SessionTest, InspectShowsWhatAResumeGivesWithoutTouchingAnything) {
    SessionState ref;
    { auto s = run(18, {6}, ref); }
    const auto before = files() ? snapshot_files(dir_.path()) : std::map<fs::path, std::string>{};
    auto p = persister();
    auto ins = TradingSession::inspect(*p, sopts());
    ASSERT_TRUE(ins.state);
    EXPECT_EQ(*ins.state, ref);
    EXPECT_EQ(ins.report.last_op, 18u);
    if (files()) {
        EXPECT_EQ(snapshot_files(dir_.path()), before);
    }
    auto s = open();
    s->resume();
    EXPECT_EQ(s->state(), *ins.state);
}

TEST_P(SessionTest, CloseRightAfterASnapshotWritesNoSecondOne) {
    SessionState ref;
    auto s = run(9, {9}, ref);
    const auto seq = s->status().durable_sequence;
    EXPECT_FALSE(s->close()) << "nothing changed since the snapshot";
    auto p = persister();
    EXPECT_EQ(p->load("default")->sequence, seq);
}

TEST_P(SessionTest, BackgroundCheckpointsCompactTheJournalOnlyBehindTheOldestFallbackCopy) {
    auto s = open();
    s->start_fresh(fresh_state());
    SessionState ref = fresh_state();
    const std::size_t depth = s->persister().backend().fallback_depth();
    std::uint64_t k = 0;
    for (std::size_t c = 0; c < depth + 4; ++c) {
        for (int i = 0; i < 5; ++i) {
            ++k;
            auto op = op_number(k, s->state());
            s->record(op);
            tradestate_apply(ref, op, "ref");
        }
        ASSERT_TRUE(s->checkpoint());
        s->snapshot(); // waits for the checkpoint, then one more (same state: the same operations)
    }
    const auto st = s->status();
    EXPECT_EQ(st.durable_op, k);
    if (files()) {
        const auto j = read_journal(journal());
        // Compacted: not everything since the start, but at least the last depth copies' worth.
        EXPECT_GT(j.base_seq, 0u);
        EXPECT_LE(j.base_seq, k - 5 * (depth - 1)) << "depth " << depth;
    }
    EXPECT_FALSE(s->close());
}

TEST_P(SessionTest, DamagedNewestCopyRollsForwardToTheLastAcknowledgedOperation) {
    if (!files()) GTEST_SKIP() << "damages files in state_dir";
    SessionState ref;
    { auto s = run(35, {10, 20, 30}, ref); }
    damage_newest_copy();
    auto s = open();
    const auto rep = s->resume();
    EXPECT_TRUE(rep.recovered);
    EXPECT_FALSE(rep.loss) << rep.loss_message("default");
    EXPECT_FALSE(rep.damage.empty());
    EXPECT_EQ(rep.snapshot_op, 20u) << rep.source;
    EXPECT_EQ(rep.last_op, 35u);
    EXPECT_EQ(s->state(), ref);
    // The session is whole again: a good newest copy was written at once.
    s.reset();
    auto t = open();
    const auto again = t->resume();
    EXPECT_FALSE(again.recovered);
    EXPECT_TRUE(again.damage.empty()) << again.damage.front();
    EXPECT_EQ(t->state(), ref);
}

TEST_P(SessionTest, AnOlderCopyPutBackOverTheNewestIsDetectedAndRolledForward) {
    if (!files()) GTEST_SKIP() << "replaces files in state_dir";
    auto s = open();
    s->start_fresh(fresh_state());
    SessionState ref = fresh_state();
    std::map<fs::path, std::string> at20;
    for (std::uint64_t k = 1; k <= 34; ++k) {
        auto op = op_number(k, s->state());
        s->record(op);
        tradestate_apply(ref, op, "ref");
        if (k == 20 || k == 30) s->snapshot();
        if (k == 20) at20 = store_files();
    }
    s.reset(); // crash
    restore_store(at20); // the store as it was at 20 (journal and mark untouched)
    auto t = open();
    const auto rep = t->resume();
    EXPECT_TRUE(rep.recovered);
    EXPECT_FALSE(rep.loss) << rep.loss_message("default");
    ASSERT_FALSE(rep.damage.empty());
    EXPECT_EQ(rep.snapshot_op, 20u);
    EXPECT_EQ(rep.last_op, 34u);
    EXPECT_EQ(t->state(), ref);
}

TEST_P(SessionTest, RolledBackCopyWithTheJournalGoneIsANamedLoss) {
    if (!files()) GTEST_SKIP() << "replaces files in state_dir";
    auto s = open();
    s->start_fresh(fresh_state());
    std::map<fs::path, std::string> at20;
    for (std::uint64_t k = 1; k <= 40; ++k) {
        s->record(op_number(k, s->state()));
        if (k % 10 == 0) s->snapshot();
        if (k == 20) at20 = store_files();
    }
    s.reset();
    restore_store(at20); // json-files: the backups of 30 and 40 go too
    fs::remove(journal());
    auto t = open();
    try {
        t->resume();
        FAIL() << "resumed 20 operations back without a word";
    } catch (const Error& e) {
        EXPECT_EQ(e.code(), Errc::data_loss);
        EXPECT_NE(std::string(e.what()).find("operations 21..40"), std::string::npos) << e.what();
    }
}

TEST_P(SessionTest, EveryWayOfLosingTheJournalIsNamedWithTheOperationsItHeld) {
    if (!files()) GTEST_SKIP() << "damages files in state_dir";
    SessionState ref;
    { auto s = run(30, {10}, ref); }
    const std::string full = slurp(journal());
    const auto c = read_journal(journal());
    ASSERT_EQ(c.last_seq(), 30u);
    const auto& r25 = *std::find_if(c.records.begin(), c.records.end(), [](const JournalRecord& r) { return r.seq == 25; });
    struct Case {
        const char* what;
        std::function<void()> damage;
        const char* range;
        const char* says;
    };
    const std::vector<Case> cases = {
        {"deleted", [&] { fs::remove(journal()); }, "operations 11..30", "is missing"},
        {"cut to its header", [&] { spit(journal(), full.substr(0, detail::journal_header_size)); }, "operations 11..30",
         "cut short"},
        {"cut at a record boundary", [&] { spit(journal(), full.substr(0, r25.offset)); }, "operations 25..30", "ends at operation 24"},
        {"cut inside an acknowledged record", [&] { spit(journal(), full.substr(0, r25.offset + 30)); }, "operations 25..30",
         "cut inside the record of operation 25"},
    };
    for (const auto& cs : cases) {
        SCOPED_TRACE(cs.what);
        spit(journal(), full);
        cs.damage();
        auto p = persister();
        const auto ins = TradingSession::inspect(*p, sopts());
        ASSERT_TRUE(ins.report.loss);
        EXPECT_NE(ins.report.loss_message("default").find(cs.range), std::string::npos) << ins.report.loss_message("default");
        EXPECT_NE(ins.report.loss_message("default").find(cs.says), std::string::npos) << ins.report.loss_message("default");
        auto s = open();
        try {
            s->resume();
            FAIL() << "resumed without naming the loss";
        } catch (const Error& e) {
            EXPECT_EQ(e.code(), Errc::data_loss);
            EXPECT_NE(std::string(e.what()).find(cs.range), std::string::npos) << e.what();
        }
        EXPECT_FALSE(s->started()) << "nothing was changed";
    }
    // Accepting the loss continues from the best copy, numbering after the lost operations.
    spit(journal(), full.substr(0, r25.offset));
    {
        auto s = open();
        const auto rep = s->resume({.accept_loss = true});
        ASSERT_TRUE(rep.loss);
        EXPECT_EQ(rep.loss->first_op, 25u);
        EXPECT_EQ(rep.loss->last_op, 30u);
        EXPECT_EQ(rep.last_op, 24u);
        EXPECT_EQ(s->record(session_op::cash(Money::from_paise(100), "after the loss")), 31u);
        s->close();
    }
    auto s = open();
    const auto rep = s->resume();
    EXPECT_FALSE(rep.loss) << "an accepted loss is not reported again";
    EXPECT_EQ(rep.last_op, 31u);
    EXPECT_EQ(files_containing(dir_.path(), "default.journal.replaced-").size(), 1u) << "the damaged journal is kept";
}

TEST_P(SessionTest, NothingOfTheSessionOnDiskEverTurnsIntoAFreshStart) {
    if (!files()) GTEST_SKIP() << "damages files in state_dir";
    SessionState ref;
    { auto s = run(12, {5, 10}, ref); }
    // Make every copy unloadable, each backend its own way.
    const auto& b = GetParam();
    if (b == "json-files") {
        fs::remove(dir_.path() / "fno_system_state.json");
        fs::remove_all(dir_.path() / "backups");
    } else if (b == "mmap-binary") {
        std::string bytes = slurp(dir_.path() / "default.tsmm"); // both slot descriptors zeroed
        std::fill(bytes.begin() + 512, bytes.begin() + 1536, '\0');
        spit(dir_.path() / "default.tsmm", bytes);
    } else {
        truncate_to(dir_.path() / "default.tsarc", 16);
        fs::remove(dir_.path() / "default.tsarc.idx");
    }
    auto s = open();
    EXPECT_TRUE(s->exists());
    try {
        s->resume();
        FAIL() << "a lost session resumed as if new";
    } catch (const Error& e) {
        EXPECT_EQ(e.code(), Errc::data_loss);
        EXPECT_NE(std::string(e.what()).find("operations 1..12"), std::string::npos) << e.what();
    }
    // A fresh start keeps all of it under a backup name.
    const auto backup = s->start_fresh(fresh_state());
    EXPECT_FALSE(backup.empty());
    EXPECT_TRUE(fs::exists(dir_.path() / (backup + ".journal")));
}

TEST_P(SessionTest, AFreshStartKeepsThePreviousSessionWithItsBackupsAndNoFallbackCrossesOver) {
    SessionState ref;
    { auto s = run(16, {4, 8, 12}, ref); s->close(); }
    auto s = open();
    const auto backup = s->start_fresh(fresh_state(Money::from_rupees(5)));
    ASSERT_FALSE(backup.empty());
    s->record(session_op::cash(Money::from_paise(7), "new"));
    s->snapshot();
    s->close();
    // The old session, whole, under its backup name.
    {
        auto b = open(backup);
        const auto rep = b->resume();
        EXPECT_FALSE(rep.loss);
        EXPECT_EQ(b->state(), ref);
        EXPECT_EQ(rep.last_op, 16u);
    }
    // The new one has only its own copies: damaging its newest cannot load the old session.
    if (files()) {
        damage_newest_copy();
        auto t = open();
        const auto rep = t->resume();
        EXPECT_EQ(t->state().portfolio.initial_cash(), Money::from_rupees(5) + Money::from_paise(7));
        EXPECT_EQ(rep.last_op, 1u);
    }
}

TEST_P(SessionTest, FilesDeletedUnderARunningWriterAreWrittenAgainBeforeTheNextAcknowledgement) {
    if (!files()) GTEST_SKIP() << "deletes files in state_dir";
    auto s = open();
    s->start_fresh(fresh_state());
    SessionState ref = fresh_state();
    std::uint64_t k = 0;
    auto step = [&] {
        ++k;
        auto op = op_number(k, s->state());
        EXPECT_EQ(s->record(op), k);
        tradestate_apply(ref, op, "ref");
    };
    for (int i = 0; i < 8; ++i) step();
    // rm -rf of the whole state directory.
    fs::remove_all(dir_.path());
    step(); // noticed and repaired before it returns
    EXPECT_TRUE(fs::exists(journal()));
    for (int i = 0; i < 3; ++i) step();
    // Only the journal.
    fs::remove(journal());
    step();
    EXPECT_TRUE(fs::exists(journal()));
    step();
    s.reset(); // crash
    auto t = open();
    const auto rep = t->resume();
    EXPECT_FALSE(rep.loss) << rep.loss_message("default");
    EXPECT_EQ(rep.last_op, k);
    EXPECT_EQ(t->state(), ref);
}

TEST_P(SessionTest, WithTheJournalOffCheckpointsMakeOperationsDurable) {
    auto p = persister();
    auto o = sopts();
    o.journal = false;
    {
        TradingSession s(p, o);
        s.start_fresh(fresh_state());
        s.record(session_op::cash(Money::from_paise(50), "a"));
        s.checkpoint();
        s.close();
    }
    if (files()) {
        EXPECT_FALSE(fs::exists(journal()));
    }
    TradingSession s(persister(), o);
    s.resume();
    EXPECT_EQ(s.state().portfolio.cash(), Money::from_rupees(1'000'000) + Money::from_paise(50));
}

INSTANTIATE_TEST_SUITE_P(Backends, SessionTest, ::testing::ValuesIn(backends_to_test()), name_of);

// ---------------------------------------------------------- json-files only

class JsonFilesSession : public SessionTest {};

TEST_P(JsonFilesSession, AMainFileStrippedOfItsEnvelopeAndEditedIsNotTakenForASeedFile) {
    SessionState ref;
    { auto s = run(12, {4, 8}, ref); s->close(); }
    const auto main = dir_.path() / "fno_system_state.json";
    auto doc = detail::parse(slurp(main), "main");
    doc.as_object().erase("_tradestate");
    const auto cash = doc.at("portfolio").at("cash").as_double();
    doc.as_object()["portfolio"].as_object()["cash"] = cash + 1000.0;
    spit(main, detail::print(doc) + "\n");
    auto s = open();
    const auto rep = s->resume();
    EXPECT_TRUE(rep.recovered);
    ASSERT_FALSE(rep.damage.empty());
    EXPECT_EQ(s->state(), ref) << "the edited cash must not come back";
    EXPECT_EQ(s->state().portfolio.reconcile(), Money{});
}

INSTANTIATE_TEST_SUITE_P(Backends, JsonFilesSession, ::testing::Values("json-files"), name_of);
