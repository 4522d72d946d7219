// compressed-archive: history, time travel, tail recovery, archiving, compaction.
#include "common.hpp"

#include <tradestate/error.hpp>

#include <chrono>
#include <csignal>
#include <thread>

#include <sys/wait.h>

namespace {

using namespace tstest;
using tradestate::Errc;
using tradestate::Error;

std::string day_stamp(int day, int minute) {
    char buf[64];
    std::snprintf(buf, sizeof buf, "2025-09-%02dT%02d:%02d:00+05:30", day, 9 + minute / 60, minute % 60);
    return buf;
}

class CompressedArchive : public ::testing::Test {
protected:
    TempDir dir;
    std::shared_ptr<tradestate::Backend> b = open_backend("compressed-archive", dir.path());
    fs::path file(const std::string& s = "s1") const { return dir.path() / (s + ".tsarc"); }
    std::vector<fs::path> named(const std::string& prefix, const fs::path& where) const {
        std::vector<fs::path> out;
        std::error_code ec;
        for (auto it = fs::directory_iterator(where, ec); !ec && it != fs::directory_iterator(); it.increment(ec))
            if (it->path().filename().string().rfind(prefix, 0) == 0) out.push_back(it->path());
        std::sort(out.begin(), out.end());
        return out;
    }
    void save_n(int from, int to, int day = 5) {
        for (int i = from; i <= to; ++i) b->save("s1", doc_of(sample_doc(i, i)), meta_for(i, day_stamp(day, i)));
    }
};

TEST_F(CompressedArchive, HistoryAndTimeTravel) {
    ASSERT_TRUE(b->has_history());
    EXPECT_FALSE(b->load("s1").has_value());
    save_n(1, 6);
    auto h = b->history("s1");
    ASSERT_EQ(h.size(), 6u);
    for (std::size_t i = 0; i < h.size(); ++i) {
        EXPECT_EQ(h[i].sequence, i + 1);
        EXPECT_EQ(h[i].meta.iteration, static_cast<std::int64_t>(i + 1));
        EXPECT_EQ(h[i].meta.saved_at, day_stamp(5, static_cast<int>(i + 1)));
        EXPECT_GT(h[i].stored_bytes, 72u);
    }
    for (std::uint64_t s = 1; s <= 6; ++s) {
        auto r = b->load_at("s1", s);
        ASSERT_TRUE(r);
        EXPECT_EQ(r->doc, sample_doc(static_cast<int>(s), static_cast<std::int64_t>(s)));
        EXPECT_EQ(r->sequence, s);
    }
    EXPECT_FALSE(b->load_at("s1", 99).has_value());
    auto r = b->load("s1");
    ASSERT_TRUE(r);
    EXPECT_EQ(r->doc, sample_doc(6, 6));
    EXPECT_EQ(r->sequence, 6u);
    EXPECT_FALSE(r->recovered);
    auto l = b->list();
    ASSERT_EQ(l.size(), 1u);
    EXPECT_EQ(l[0].sequence, 6u);
    EXPECT_EQ(l[0].meta.cash_paise, meta_for(6).cash_paise);
    EXPECT_TRUE(b->verify("s1").ok());
}

TEST_F(CompressedArchive, TruncatedTailIsSkippedThenMovedAside) {
    save_n(1, 3);
    const auto bytes = slurp(file());
    spit(file(), bytes.substr(0, bytes.size() - 5));
    auto r = b->load("s1");
    ASSERT_TRUE(r);
    EXPECT_EQ(r->doc, sample_doc(2, 2));
    EXPECT_TRUE(r->recovered);
    ASSERT_FALSE(r->warnings.empty());
    EXPECT_NE(r->warnings[0].find("offset"), std::string::npos) << r->warnings[0];
    EXPECT_NE(r->warnings[0].find(file().string()), std::string::npos);
    // A record the file ends inside is what a crash in the middle of an
    // append leaves: a warning here; whether that save had been acknowledged
    // is the session's to say (its mark).
    EXPECT_TRUE(r->interrupted);
    {
        const auto rep = b->verify("s1");
        EXPECT_TRUE(rep.ok());
        bool warned = false;
        for (const auto& f : rep.findings)
            warned = warned || (f.level == tradestate::Finding::Severity::info &&
                                f.message.find("an interrupted save leaves this") != std::string::npos);
        EXPECT_TRUE(warned);
    }
    // The next save cuts the bad tail off, keeping a copy of it.
    b->save("s1", doc_of(sample_doc(4, 4)), meta_for(4, day_stamp(5, 4)));
    const auto aside = named("s1.tsarc.corrupt-", dir.path());
    ASSERT_EQ(aside.size(), 1u);
    const auto kept = slurp(aside[0]);
    const auto truncated = bytes.substr(0, bytes.size() - 5);
    ASSERT_GT(kept.size(), 72u);
    EXPECT_EQ(kept, truncated.substr(truncated.size() - kept.size()));
    EXPECT_EQ(kept.substr(0, 4), "TSRC");
    r = b->load("s1");
    EXPECT_EQ(r->doc, sample_doc(4, 4));
    EXPECT_FALSE(r->recovered);
    EXPECT_EQ(r->sequence, 3u);
    EXPECT_TRUE(b->verify("s1").ok());
    auto h = b->history("s1");
    ASSERT_EQ(h.size(), 3u);
    EXPECT_EQ(b->load_at("s1", 2)->doc, sample_doc(2, 2));
}

TEST_F(CompressedArchive, CorruptRecordsAreReportedNotFatal) {
    save_n(1, 4);
    auto bytes = slurp(file());
    // Damage the last record's compressed bytes.
    bytes[bytes.size() - 3] ^= 0x40;
    spit(file(), bytes);
    fs::remove(dir.path() / "s1.tsarc.idx");
    auto r = b->load("s1");
    ASSERT_TRUE(r);
    EXPECT_EQ(r->doc, sample_doc(3, 3));
    EXPECT_TRUE(r->recovered);
    // Damage a middle record (record 2): verify names its offset, load is unaffected.
    TempDir d2;
    auto b2 = open_backend("compressed-archive", d2.path());
    for (int i = 1; i <= 4; ++i) b2->save("s1", doc_of(sample_doc(i, i)), meta_for(i, day_stamp(5, i)));
    auto h = b2->history("s1");
    auto f2 = d2.path() / "s1.tsarc";
    auto b2bytes = slurp(f2);
    const std::size_t rec2 = 16 + h[0].stored_bytes;
    b2bytes[rec2 + h[1].stored_bytes - 1] ^= 1;
    spit(f2, b2bytes);
    auto v = b2->verify("s1");
    EXPECT_FALSE(v.ok());
    bool named_offset = false;
    for (const auto& f : v.findings)
        named_offset = named_offset || (f.level == tradestate::Finding::Severity::error &&
                                        f.where.find("offset " + std::to_string(rec2)) != std::string::npos);
    EXPECT_TRUE(named_offset);
    auto r2 = b2->load("s1");
    EXPECT_EQ(r2->doc, sample_doc(4, 4));
    EXPECT_EQ(b2->history("s1").size(), 3u);
    EXPECT_FALSE(b2->load_at("s1", 2).has_value());
}

TEST_F(CompressedArchive, IndexIsACacheThatIsRebuilt) {
    save_n(1, 3);
    const auto idx = dir.path() / "s1.tsarc.idx";
    ASSERT_TRUE(fs::exists(idx));
    spit(idx, "garbage that is not an index");
    EXPECT_EQ(b->load("s1")->doc, sample_doc(3, 3));
    fs::remove(idx);
    EXPECT_EQ(b->load("s1")->doc, sample_doc(3, 3));
    save_n(4, 4);
    EXPECT_TRUE(fs::exists(idx));
    EXPECT_EQ(b->load("s1")->doc, sample_doc(4, 4));
    EXPECT_EQ(b->history("s1").size(), 4u);
    // A stale index (file appended to behind its back) is noticed.
    const auto old_idx = slurp(idx);
    save_n(5, 5);
    spit(idx, old_idx);
    EXPECT_EQ(b->load("s1")->doc, sample_doc(5, 5));
}

TEST_F(CompressedArchive, DailyRolloverArchivesCompletedDays) {
    save_n(1, 3, 5);                                                     // 2025-09-05
    b->save("s1", doc_of(sample_doc(4, 4)), meta_for(4, day_stamp(6, 1))); // next day: automatic archive
    const auto day5 = dir.path() / "archive" / "s1-2025-09-05.tsarc";
    ASSERT_TRUE(fs::exists(day5));
    auto h = b->history("s1");
    ASSERT_EQ(h.size(), 4u);
    for (std::uint64_t s = 1; s <= 4; ++s) EXPECT_EQ(b->load_at("s1", s)->doc, sample_doc(static_cast<int>(s), static_cast<std::int64_t>(s)));
    EXPECT_EQ(b->load("s1")->doc, sample_doc(4, 4));
    // The live file now holds the last snapshot of day 5 and the new one.
    EXPECT_LT(slurp(file()).size(), slurp(day5).size() + slurp(file()).size());
    // On command: the completed days move out (the last snapshot of day 5);
    // the current day stays.
    const auto day5_before = slurp(day5);
    const auto summary = b->archive("s1");
    EXPECT_NE(summary.find("archived 1 snapshot(s) of 1 completed day(s)"), std::string::npos) << summary;
    EXPECT_NE(summary.find("the live file keeps 1 snapshot(s), from sequence 4"), std::string::npos) << summary;
    EXPECT_GT(slurp(day5).size(), day5_before.size());
    save_n(5, 6, 6);
    const auto again = b->archive("s1");
    EXPECT_FALSE(fs::exists(dir.path() / "archive" / "s1-2025-09-06.tsarc")) << "the current trading day was archived";
    EXPECT_NE(again.find("nothing to archive (the live file's 3 snapshot(s) are of 2025-09-06, the current trading day)"),
              std::string::npos)
        << again;
    h = b->history("s1");
    ASSERT_EQ(h.size(), 6u);
    EXPECT_EQ(h.back().sequence, 6u);
    EXPECT_EQ(b->load("s1")->sequence, 6u);
    b->save("s1", doc_of(sample_doc(7, 7)), meta_for(7, day_stamp(6, 9)));
    EXPECT_EQ(b->load("s1")->sequence, 7u);
    EXPECT_TRUE(b->verify("s1").ok());
    // remove() takes the archives with it.
    EXPECT_TRUE(b->remove("s1"));
    EXPECT_TRUE(named("s1-", dir.path() / "archive").empty());
    EXPECT_FALSE(b->exists("s1"));
}

TEST_F(CompressedArchive, CompactionBoundsLiveRecordsAndArchiveDays) {
    auto c = open_backend("compressed-archive", dir.path(),
                          boost::json::object{{"max_live_records", 10}, {"keep_every_nth", 3}, {"archive_daily", true},
                                              {"keep_archive_days", 2}, {"compression_level", 5}});
    for (int i = 1; i <= 40; ++i) c->save("s1", doc_of(sample_doc(i % 5, i)), meta_for(i, day_stamp(1, i)));
    auto h = c->history("s1");
    EXPECT_LE(h.size(), 10u);
    EXPECT_GE(h.size(), 2u);
    EXPECT_EQ(h.back().sequence, 40u);
    EXPECT_EQ(c->load("s1")->doc, sample_doc(0, 40));
    // Days 2..6, one save each: archives older than 2 days before the newest go.
    for (int d = 2; d <= 6; ++d) c->save("s1", doc_of(sample_doc(1, 40 + d)), meta_for(40 + d, day_stamp(d, 1)));
    c->archive("s1");
    const auto files = named("s1-", dir.path() / "archive");
    ASSERT_FALSE(files.empty());
    for (const auto& f : files) EXPECT_GE(f.filename().string(), "s1-2025-09-04.tsarc") << f;
    EXPECT_EQ(c->load("s1")->sequence, 45u);
    EXPECT_EQ(c->load("s1")->meta.iteration, 46);
}

TEST_F(CompressedArchive, BadSettingsAreConfigErrors) {
    for (auto bad : {boost::json::object{{"compression_level", 99}}, boost::json::object{{"archive_daily", "yes"}},
                     boost::json::object{{"keep_every_nth", 0}}, boost::json::object{{"no_such_key", 1}}}) {
        try {
            (void)open_backend("compressed-archive", dir.path(), bad);
            FAIL() << "accepted " << boost::json::serialize(bad);
        } catch (const Error& e) {
            EXPECT_EQ(e.code(), Errc::config) << e.what();
        }
    }
}

TEST_F(CompressedArchive, KilledWriterLeavesALoadableFile) {
    ForkedChild child([&](int) {
        auto w = open_backend("compressed-archive", dir.path(), boost::json::object{{"archive_daily", false}});
        for (std::int64_t i = 1;; ++i) w->save("s1", doc_of(sample_doc(static_cast<int>(i % 5) * 2000, i)), meta_for(i));
    });
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
    while (std::chrono::steady_clock::now() < deadline) {
        auto l = b->list();
        if (!l.empty() && l[0].sequence >= 8) break;
        std::this_thread::yield();
    }
    (void)child.kill();
    auto r = b->load("s1");
    ASSERT_TRUE(r);
    const auto tag = r->doc.at("iteration").as_int64();
    EXPECT_EQ(r->doc, sample_doc(static_cast<int>(tag % 5) * 2000, tag));
    EXPECT_EQ(static_cast<std::int64_t>(r->sequence), tag);
    b->save("s1", doc_of(sample_doc(1, 1000)), meta_for(1000));
    EXPECT_EQ(b->load("s1")->sequence, r->sequence + 1);
    EXPECT_TRUE(b->verify("s1").ok());
}

} // namespace
