// The journal on its own: record format, replay exactness, torn tails,
// corruption, compaction, the config keys, and append latency per fsync
// policy. The rules that tie journal and snapshots together (marks, loss,
// retention) are Session's: tests/session.
#include <tradestate_test/support.hpp>

#include <tradestate/config.hpp>
#include <tradestate/file_journal.hpp>
#include <tradestate/journal_format.hpp>
#include <tradestate/replay.hpp>
#include <tradestate/session_state.hpp>

#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <iostream>
#include <thread>

using namespace tradestate;
using namespace tradestate::testing;

namespace {

/// Apply ops 1..n of the stream to `live` while journaling them; returns the journal.
std::unique_ptr<FileJournal> run_stream(const std::filesystem::path& file, SessionState& live, std::uint64_t n,
                                        JournalFsync policy = JournalFsync::never) {
    auto j = FileJournal::create(file, policy);
    for (std::uint64_t k = 1; k <= n; ++k) {
        auto op = op_number(k, live);
        EXPECT_EQ(j->append(op), k);
        tradestate_apply(live, op, "live");
    }
    return j;
}

} // namespace

TEST(Journal, RoundTripRecordsAndHeader) {
    TempDir d;
    const auto file = d / "default.journal";
    SessionState live = fresh_state();
    auto j = run_stream(file, live, 40);
    const auto c = read_journal(file);
    EXPECT_EQ(c.id, j->id());
    EXPECT_EQ(c.base_seq, 0u);
    ASSERT_EQ(c.records.size(), 40u);
    EXPECT_TRUE(c.torn_tail.empty());
    EXPECT_TRUE(c.intact());
    EXPECT_EQ(c.valid_bytes, std::filesystem::file_size(file));
    SessionState rebuilt = fresh_state();
    for (std::size_t i = 0; i < c.records.size(); ++i) {
        EXPECT_EQ(c.records[i].seq, i + 1);
        EXPECT_EQ(c.records[i].op, op_number(i + 1, rebuilt)) << "record " << i + 1;
        tradestate_apply(rebuilt, c.records[i].op, "rebuilt");
    }
    EXPECT_EQ(rebuilt, live);
    // Batch append: one write, consecutive sequence numbers.
    std::vector<boost::json::object> batch{session_op::cash(Money::from_paise(5), "a"),
                                           session_op::cash(Money::from_paise(-5), "b")};
    EXPECT_EQ(j->append(batch), 42u);
    EXPECT_EQ(read_journal(file).records.size(), 42u);
    EXPECT_EQ(j->stats().appends, 42u);
    // A journal continues the session's numbering after its base.
    auto k = FileJournal::create(d / "later.journal", JournalFsync::never, 500);
    EXPECT_EQ(k->append(session_op::cash(Money::from_paise(1), "x")), 501u);
    EXPECT_EQ(read_journal(d / "later.journal").base_seq, 500u);
}

TEST(Journal, ReplayOverSnapshotIsExactToThePaisa) {
    TempDir d;
    const auto file = d / "s.journal";
    SessionState live = fresh_state();
    auto j = FileJournal::create(file, JournalFsync::never);
    SessionState snapshot;
    for (std::uint64_t k = 1; k <= 300; ++k) {
        auto op = op_number(k, live);
        j->append(op);
        tradestate_apply(live, op, "live");
        if (k == 137) // a snapshot through its JSON text, as a backend stores it
            snapshot = boost::json::value_to<SessionState>(
                detail::parse(detail::print(boost::json::value_from(live)), "snapshot"));
    }
    j->compact(137);
    const auto c = read_journal(file);
    ASSERT_EQ(c.base_seq, 137u);
    ASSERT_EQ(c.records.size(), 163u);
    auto r = replay_journal(snapshot, c, 137, file.string());
    EXPECT_EQ(r.applied, 163u);
    EXPECT_EQ(r.skipped, 0u);
    EXPECT_EQ(r.last_seq, 300u);
    EXPECT_EQ(snapshot.portfolio.cash().paise(), live.portfolio.cash().paise());
    EXPECT_EQ(snapshot.portfolio.reconcile(), Money{});
    EXPECT_EQ(snapshot, live);
}

TEST(Journal, RecordsTheSnapshotHoldsAreNeverAppliedTwice) {
    TempDir d;
    const auto file = d / "s.journal";
    SessionState live = fresh_state();
    auto j = run_stream(file, live, 60);
    SessionState snap = live; // a snapshot holding 1..60 while the journal still has them
    auto op = op_number(61, live);
    j->append(op);
    tradestate_apply(live, op, "live");
    const auto c = read_journal(file);
    auto r = replay_journal(snap, c, 60, "j");
    EXPECT_EQ(r.skipped, 60u);
    EXPECT_EQ(r.applied, 1u);
    EXPECT_EQ(snap, live);
    auto again = snap;
    r = replay_journal(again, c, 61, "j");
    EXPECT_EQ(r.applied, 0u);
    EXPECT_EQ(again, snap);
}

TEST(Journal, TornTailAtEveryByteIsReportedAndIgnored) {
    TempDir d;
    const auto file = d / "t.journal";
    SessionState live = fresh_state();
    run_stream(file, live, 12).reset();
    const std::string full = slurp(file);
    const auto c = read_journal(file);
    const std::uint64_t last_off = c.records.back().offset;
    SessionState before_last = fresh_state();
    for (std::size_t i = 0; i + 1 < c.records.size(); ++i) tradestate_apply(before_last, c.records[i].op, "x");
    for (std::size_t cut = last_off; cut < full.size(); ++cut) {
        spit(file, full.substr(0, cut));
        const auto t = read_journal(file);
        ASSERT_EQ(t.records.size(), 11u) << "cut at " << cut;
        EXPECT_TRUE(t.intact());
        EXPECT_EQ(t.valid_bytes, last_off);
        if (cut > last_off) {
            EXPECT_EQ(t.torn_offset, last_off);
            EXPECT_NE(t.torn_tail.find("offset " + std::to_string(last_off)), std::string::npos) << t.torn_tail;
        }
        SessionState s = fresh_state();
        auto r = replay_journal(s, t, 0, "t");
        EXPECT_EQ(r.applied, 11u);
        EXPECT_EQ(s, before_last);
    }
    // A corrupt (not short) last record, and zeros after the end (ext4 after power loss), are a torn tail too.
    std::string flipped = full;
    flipped[flipped.size() - 3] ^= 0x20;
    spit(file, flipped);
    EXPECT_EQ(read_journal(file).records.size(), 11u);
    spit(file, full + std::string(4096, '\0'));
    EXPECT_EQ(read_journal(file).records.size(), 12u);
    EXPECT_FALSE(read_journal(file).torn_tail.empty());
    // Reopening for append cuts the torn tail and continues with the next sequence number.
    spit(file, full.substr(0, full.size() - 5));
    auto j = FileJournal::open(file, JournalFsync::always);
    EXPECT_EQ(j->last_seq(), 11u);
    EXPECT_EQ(j->append(session_op::cash(Money::from_paise(1), "after tear")), 12u);
    const auto after = read_journal(file);
    EXPECT_TRUE(after.torn_tail.empty());
    EXPECT_EQ(after.records.size(), 12u);
    EXPECT_EQ(after.records.back().op.at("reason").as_string(), "after tear");
}

TEST(Journal, CorruptionInTheMiddleStopsDecodingAtItsOffsetKeepingTheRecordsBefore) {
    TempDir d;
    const auto file = d / "m.journal";
    SessionState live = fresh_state();
    run_stream(file, live, 10).reset();
    const std::string full = slurp(file);
    const auto c = read_journal(file);
    // Every single-byte change inside records 1..9 (not the last) is detected and located.
    std::size_t detected = 0, total = 0;
    for (std::size_t i = detail::journal_header_size; i < c.records.back().offset; ++i) {
        std::string bad = full;
        bad[i] = static_cast<char>(bad[i] ^ 0x01);
        spit(file, bad);
        ++total;
        const auto t = read_journal(file);
        if (t.intact()) continue;
        // Decoding stopped at the damaged record: everything before it is there.
        std::size_t rec = 0;
        while (rec + 1 < c.records.size() && c.records[rec + 1].offset <= i) ++rec;
        EXPECT_EQ(t.records.size(), rec) << "byte " << i;
        EXPECT_NE(t.corruption.find(file.string()), std::string::npos);
        EXPECT_NE(t.corruption.find("offset " + std::to_string(c.records[rec].offset)), std::string::npos) << t.corruption;
        ++detected;
    }
    EXPECT_EQ(detected, total);
    std::cout << "[ measure  ] single-bit flips in non-last records detected: " << detected << "/" << total << '\n';
    // The header: nothing in the file can be trusted.
    for (std::size_t i = 0; i < detail::journal_header_size; ++i) {
        std::string bad = full;
        bad[i] = static_cast<char>(bad[i] ^ 0x40);
        spit(file, bad);
        EXPECT_THROW((void)read_journal(file), Error) << "header byte " << i;
    }
    // A damaged journal cannot be continued or compacted.
    std::string bad = full;
    bad[c.records[3].offset + 30] ^= 0x02;
    spit(file, bad);
    EXPECT_THROW((void)FileJournal::open(file, JournalFsync::never), Error);
}

TEST(Journal, HostileOperationsAreErrorsNamingTheRecordAndLeaveTheStateAlone) {
    TempDir d;
    const auto file = d / "g.journal";
    const std::vector<boost::json::object> bad = {
        {{"op", "launch"}},
        {{"op", "open"}, {"symbol", "X"}, {"charges_paise", 0}, {"position", {{"shares", -75}, {"entry_price", 1.0}}}},
        {{"op", "open"}, {"symbol", "X"}, {"charges_paise", 1.5}, {"position", {{"shares", 75}, {"entry_price", 1.0}}}},
        {{"op", "close"}, {"symbol", "NOPE"}, {"exit_price_paise", 1}, {"exit_time", "2025-10-01T10:00:00"},
         {"reason", "x"}, {"charges_paise", 0}},
        {{"op", "cash"}, {"amount_paise", -1'000'000'000'000}, {"reason", "too much"}},
        {{"op", "step"}, {"iteration", -1}, {"timestamp", "2025-10-01T10:00:00"}, {"runner", boost::json::object{}}},
        {{"op", "configure"}, {"configuration", {{"min_confidence", 7.0}}}, {"trading_mode", "paper"}},
    };
    for (const auto& op : bad) {
        auto j = FileJournal::create(file, JournalFsync::never);
        j->append(session_op::cash(Money::from_paise(100), "fine"));
        j->append(op);
        SessionState s = fresh_state();
        const auto keep = s;
        try {
            (void)replay_journal(s, read_journal(file), 0, file.string());
            ADD_FAILURE() << "accepted " << detail::print(op, {.indent = -1});
        } catch (const Error& e) {
            EXPECT_EQ(e.code(), Errc::corrupt);
            EXPECT_NE(std::string(e.what()).find("record 2 at offset"), std::string::npos) << e.what();
        }
        EXPECT_EQ(s, keep) << "a failed replay changes nothing";
    }
}

TEST(Journal, AStepCarriesOnlyWhatChangedInTheRunnerAndReplaysToTheSameObject) {
    namespace json = boost::json;
    const json::object before = {{"engine", "fno_runner"},
                                 {"rng", json::array{"1", "2"}},
                                 {"market", {{"clock", 1}, {"u", {{"NIFTY", 1.5}, {"BANKNIFTY", 2.5}}}}},
                                 {"last_prices", {{"A", 1.0}, {"B", 2.0}}},
                                 {"equity", {{"0", json::array{1, 2}}, {"1", json::array{3, 4}}}}};
    json::object after = before;
    after["rng"] = json::array{"3", "4"};
    after["market"].as_object()["u"].as_object()["NIFTY"] = 1.75;
    after["last_prices"] = json::object{{"B", 2.0}, {"C", 3.0}};
    after["equity"].as_object().erase("1");
    after["equity"].as_object()["2"] = json::array{5, 6};
    after["note"] = "new";

    const auto patch = session_op::runner_patch(before, after);
    // Only the changes travel: not the engine, not BANKNIFTY, not B.
    EXPECT_FALSE(patch.contains("engine"));
    EXPECT_FALSE(patch.at("market").at("u").as_object().contains("BANKNIFTY"));
    EXPECT_TRUE(patch.at("last_prices").at("A").is_null());
    EXPECT_FALSE(patch.at("last_prices").as_object().contains("B"));
    EXPECT_TRUE(patch.at("equity").at("1").is_null());
    EXPECT_TRUE(session_op::runner_patch(after, after).empty());

    // Replayed through the journal, the patch gives exactly `after`; so does
    // a complete object over a runner it does not shrink (the records written
    // before patches: their runners only ever gained members).
    const std::vector<std::pair<json::object, json::object>> cases = {{before, patch}, {json::object{}, after}};
    for (const auto& [start, runner] : cases) {
        TempDir d;
        const auto file = d / "p.journal";
        SessionState s = fresh_state();
        s.runner = start;
        auto j = FileJournal::create(file, JournalFsync::never);
        j->append(session_op::step(7, Timestamp::from_iso("2025-10-01T10:00:00"), runner, nullptr));
        (void)replay_journal(s, read_journal(file), 0, file.string());
        EXPECT_EQ(s.runner, after) << detail::print(json::value(s.runner), {.indent = -1});
        EXPECT_EQ(s.iteration, 7);
    }
}

TEST(Journal, ConfigKeys) {
    auto c = Config::parse("[persistence]\njournal = false\njournal_fsync = \"every_second\"\n", "/cfg/config.toml");
    EXPECT_FALSE(c.persistence.journal);
    EXPECT_EQ(parse_journal_fsync(c.persistence.journal_fsync), JournalFsync::every_second);
    const auto d = Config::defaults();
    EXPECT_TRUE(d.persistence.journal);
    EXPECT_EQ(d.persistence.journal_fsync, "always");
    try {
        (void)Config::parse("[persistence]\njournal_fsync = \"sometimes\"\n", "/cfg/config.toml");
        ADD_FAILURE() << "accepted a bad policy";
    } catch (const Error& e) {
        EXPECT_EQ(e.code(), Errc::config);
        EXPECT_NE(std::string(e.what()).find("/cfg/config.toml:2:17: persistence.journal_fsync"), std::string::npos)
            << e.what();
    }
    EXPECT_THROW((void)Config::parse("[persistence]\njournal = \"yes\"\n"), Error);
    EXPECT_THROW((void)parse_journal_fsync("Always"), Error);
    // The repository's config.toml states the defaults.
    const auto repo = Config::load(source_dir() / "config.toml",
                                   ConfigSchema{{"instruments", "runner", "risk", "charges", "strategies"}, {}});
    EXPECT_TRUE(repo.persistence.journal);
    EXPECT_EQ(repo.persistence.journal_fsync, "always");
}

TEST(Journal, EverySecondFlushesInTheBackground) {
    TempDir d;
    const auto file = d / "e.journal";
    auto j = FileJournal::create(file, JournalFsync::every_second);
    j->append(session_op::cash(Money::from_paise(1), "x"));
    EXPECT_EQ(j->stats().fsyncs, 0u);
    EXPECT_TRUE(eventually([&] { return j->stats().fsyncs > 0; }, std::chrono::seconds(10)));
    EXPECT_EQ(j->stats().fsyncs, 1u);
    EXPECT_EQ(read_journal(file).records.size(), 1u);
}

TEST(Journal, AppendLatencyPerPolicy) {
    TempDir d;
    const int n = 400;
    for (auto policy : {JournalFsync::always, JournalFsync::every_second, JournalFsync::never}) {
        const auto file = d / (std::string(to_string(policy)) + ".journal");
        auto j = FileJournal::create(file, policy);
        SessionState s = fresh_state();
        std::vector<double> us;
        for (int k = 1; k <= n; ++k) {
            auto op = op_number(static_cast<std::uint64_t>(k), s);
            const auto t0 = std::chrono::steady_clock::now();
            j->append(op);
            us.push_back(std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - t0).count());
            tradestate_apply(s, op, "s");
        }
        std::sort(us.begin(), us.end());
        std::cout << "[ measure  ] journal append, journal_fsync=" << to_string(policy) << ": median "
                  << us[us.size() / 2] << " us, p99 " << us[us.size() * 99 / 100] << " us (" << n << " appends)\n";
        EXPECT_EQ(read_journal(file).records.size(), static_cast<std::size_t>(n));
        if (policy == JournalFsync::always) {
            EXPECT_EQ(j->stats().fsyncs, static_cast<std::uint64_t>(n));
        } else if (policy == JournalFsync::never) {
            EXPECT_EQ(j->stats().fsyncs, 0u);
        }
    }
}

TEST(Journal, CompactKeepsRecordsNewerThanTheSnapshot) {
    TempDir d;
    const auto file = d / "c.journal";
    SessionState live = fresh_state();
    auto j = run_stream(file, live, 30);
    SessionState snap = live;                  // a background snapshot taken at record 30 ...
    for (std::uint64_t k = 31; k <= 45; ++k) { // ... while trading went on
        auto op = op_number(k, live);
        j->append(op);
        tradestate_apply(live, op, "live");
    }
    j->compact(30);
    const auto c = read_journal(file);
    EXPECT_EQ(c.base_seq, 30u);
    ASSERT_EQ(c.records.size(), 15u);
    EXPECT_EQ(c.records.front().seq, 31u);
    EXPECT_EQ(j->append(session_op::cash(Money::from_paise(3), "after compact")), 46u);
    tradestate_apply(live, read_journal(file).records.back().op, "live");
    auto r = replay_journal(snap, read_journal(file), 30, "c");
    EXPECT_EQ(r.applied, 16u);
    EXPECT_EQ(snap, live);
    EXPECT_THROW(j->compact(47), Error);
    j->compact(10); // older than the base: nothing to do
    EXPECT_EQ(read_journal(file).records.size(), 16u);
}

TEST(Journal, DeletedOrReplacedFileIsNoticed) {
    TempDir d;
    const auto file = d / "r.journal";
    SessionState live = fresh_state();
    auto j = run_stream(file, live, 3);
    EXPECT_TRUE(j->in_place());
    std::filesystem::remove(file);
    EXPECT_FALSE(j->in_place());
    spit(file, detail::journal_header(j->id(), 0)); // same name, another file
    EXPECT_FALSE(j->in_place());
}
