// mmap-binary: slot fallback, growth, torn writes by a killed process.
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

constexpr std::size_t desc_at[2] = {512, 1024};

struct SlotView {
    std::uint64_t seq, off, len;
};
SlotView slot(const std::string& file, int s) {
    return {le64(file, desc_at[s] + 8), le64(file, desc_at[s] + 16), le64(file, desc_at[s] + 32)};
}
int newest_slot(const std::string& file) { return slot(file, 1).seq > slot(file, 0).seq ? 1 : 0; }

class MmapBinary : public ::testing::Test {
protected:
    TempDir dir;
    std::shared_ptr<tradestate::Backend> b = open_backend("mmap-binary", dir.path());
    fs::path file(const std::string& s = "s1") const { return dir.path() / (s + ".tsmm"); }
};

TEST_F(MmapBinary, RoundTripListAndSequence) {
    EXPECT_FALSE(b->load("s1").has_value());
    EXPECT_FALSE(b->exists("s1"));
    b->save("s1", doc_of(sample_doc(3, 1)), meta_for(1));
    b->save("s1", doc_of(sample_doc(5, 2)), meta_for(2));
    auto r = b->load("s1");
    ASSERT_TRUE(r);
    EXPECT_EQ(r->doc, sample_doc(5, 2));
    EXPECT_EQ(r->sequence, 2u);
    EXPECT_EQ(r->meta.iteration, 2);
    EXPECT_EQ(r->meta.cash_paise, meta_for(2).cash_paise);
    EXPECT_FALSE(r->recovered);
    auto l = b->list();
    ASSERT_EQ(l.size(), 1u);
    EXPECT_EQ(l[0].session, "s1");
    EXPECT_EQ(l[0].sequence, 2u);
    EXPECT_EQ(l[0].meta.saved_at, meta_for(2).saved_at);
    EXPECT_TRUE(b->verify("s1").ok());
    EXPECT_TRUE(b->remove("s1"));
    EXPECT_FALSE(b->exists("s1"));
    EXPECT_FALSE(b->remove("s1"));
}

TEST_F(MmapBinary, DamagedNewestPayloadFallsBackToOtherSlot) {
    b->save("s1", doc_of(sample_doc(10, 1)), meta_for(1));
    b->save("s1", doc_of(sample_doc(10, 2)), meta_for(2));
    auto bytes = slurp(file());
    const int n = newest_slot(bytes);
    const auto s = slot(bytes, n);
    ASSERT_EQ(s.seq, 2u);
    bytes[s.off + s.len / 2] ^= 0x20;
    spit(file(), bytes);
    auto r = b->load("s1");
    ASSERT_TRUE(r);
    EXPECT_EQ(r->doc, sample_doc(10, 1));
    EXPECT_EQ(r->sequence, 1u);
    EXPECT_TRUE(r->recovered);
    ASSERT_FALSE(r->warnings.empty());
    EXPECT_NE(r->warnings[0].find(std::string("slot ") + (n == 0 ? 'A' : 'B')), std::string::npos) << r->warnings[0];
    EXPECT_NE(r->warnings[0].find(file().string()), std::string::npos);
    EXPECT_NE(r->warnings[0].find("checksum"), std::string::npos);
    auto v = b->verify("s1");
    EXPECT_TRUE(v.ok());
    bool warned = false;
    for (const auto& f : v.findings) warned = warned || f.level == tradestate::Finding::Severity::warning;
    EXPECT_TRUE(warned);
    // The next save overwrites the damaged slot and the state moves on.
    b->save("s1", doc_of(sample_doc(10, 3)), meta_for(3));
    r = b->load("s1");
    EXPECT_EQ(r->doc, sample_doc(10, 3));
    EXPECT_FALSE(r->recovered);
    EXPECT_EQ(r->sequence, 3u);
}

TEST_F(MmapBinary, DamagedNewestDescriptorFallsBack) {
    b->save("s1", doc_of(sample_doc(2, 1)), meta_for(1));
    b->save("s1", doc_of(sample_doc(2, 2)), meta_for(2));
    auto bytes = slurp(file());
    bytes[desc_at[newest_slot(bytes)] + 44] ^= 1; // iteration field
    spit(file(), bytes);
    auto r = b->load("s1");
    ASSERT_TRUE(r);
    EXPECT_EQ(r->doc, sample_doc(2, 1));
    EXPECT_TRUE(r->recovered);
}

TEST_F(MmapBinary, BothSlotsDamagedIsAClearError) {
    b->save("s1", doc_of(sample_doc(2, 1)), meta_for(1));
    b->save("s1", doc_of(sample_doc(2, 2)), meta_for(2));
    auto bytes = slurp(file());
    for (int s = 0; s < 2; ++s) bytes[slot(bytes, s).off] ^= 0x55;
    spit(file(), bytes);
    try {
        (void)b->load("s1");
        FAIL() << "loaded a file with two damaged slots";
    } catch (const Error& e) {
        EXPECT_EQ(e.code(), Errc::corrupt);
        EXPECT_NE(std::string(e.what()).find(file().string()), std::string::npos) << e.what();
    }
    EXPECT_FALSE(b->verify("s1").ok());
}

TEST_F(MmapBinary, TruncatedFiles) {
    b->save("s1", doc_of(sample_doc(50, 1)), meta_for(1));
    b->save("s1", doc_of(sample_doc(50, 2)), meta_for(2));
    const auto bytes = slurp(file());
    // Cut into whichever slot lies last in the file: the other one is used.
    const int last = slot(bytes, 0).off > slot(bytes, 1).off ? 0 : 1;
    const auto cut = slot(bytes, last);
    spit(file(), bytes.substr(0, cut.off + cut.len / 2));
    auto r = b->load("s1");
    ASSERT_TRUE(r);
    EXPECT_EQ(r->sequence, slot(bytes, 1 - last).seq);
    EXPECT_EQ(r->doc, sample_doc(50, static_cast<std::int64_t>(slot(bytes, 1 - last).seq)));
    // Cut into the header: nothing can be trusted.
    for (std::size_t n : {0ul, 7ul, 600ul, 4095ul}) {
        spit(file(), bytes.substr(0, n));
        try {
            (void)b->load("s1");
            FAIL() << "loaded a file truncated to " << n << " bytes";
        } catch (const Error& e) {
            EXPECT_EQ(e.code(), Errc::corrupt) << e.what();
        }
    }
    // A save on a file with a destroyed header keeps it aside and starts over.
    b->save("s1", doc_of(sample_doc(1, 9)), meta_for(9));
    EXPECT_EQ(b->load("s1")->doc, sample_doc(1, 9));
    int aside = 0;
    for (const auto& e : fs::directory_iterator(dir.path()))
        aside += e.path().filename().string().find("s1.tsmm.corrupt-") == 0;
    EXPECT_EQ(aside, 1);
}

TEST_F(MmapBinary, GrowsFromSmallTo100kPositionsKeepingTheOlderSlot) {
    std::int64_t tag = 0;
    std::uint64_t last_size = 0;
    for (int positions : {0, 1, 100, 5000, 100000}) {
        ++tag;
        const auto doc = sample_doc(positions, tag);
        b->save("s1", doc_of(doc), meta_for(tag));
        const auto bytes = slurp(file());
        EXPECT_GE(bytes.size(), last_size);
        last_size = bytes.size();
        auto r = b->load("s1");
        ASSERT_TRUE(r);
        ASSERT_EQ(r->doc, doc);
        if (tag > 1) {
            // The older slot survived the growth: damage the newest, get the previous.
            auto damaged = bytes;
            const auto s = slot(bytes, newest_slot(bytes));
            damaged[s.off + s.len - 1] ^= 1;
            spit(file(), damaged);
            auto prev = b->load("s1");
            ASSERT_TRUE(prev);
            EXPECT_EQ(prev->doc, sample_doc(positions == 1 ? 0 : positions == 100 ? 1 : positions == 5000 ? 100 : 5000,
                                            tag - 1));
            EXPECT_TRUE(prev->recovered);
            spit(file(), bytes);
        }
    }
    // Shrinking back reuses the existing regions.
    b->save("s1", doc_of(sample_doc(3, 99)), meta_for(99));
    EXPECT_EQ(slurp(file()).size(), last_size);
    EXPECT_EQ(b->load("s1")->doc, sample_doc(3, 99));
}

TEST_F(MmapBinary, KilledWriterNeverLeavesAnUnloadableFile) {
    for (int round = 0; round < 3; ++round) {
        ForkedChild child([&](int) {
            auto w = open_backend("mmap-binary", dir.path());
            for (std::int64_t i = 1;; ++i) w->save("s1", doc_of(sample_doc(static_cast<int>(i % 7) * 3000, i)), meta_for(i));
        });
        // Wait (polling) until the child made progress, then kill it mid-save.
        const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
        std::uint64_t seen = 0;
        while (std::chrono::steady_clock::now() < deadline) {
            auto l = b->list();
            if (!l.empty() && l[0].sequence >= seen + 5u + static_cast<unsigned>(round)) break;
            std::this_thread::yield();
        }
        (void)child.kill();
        auto r = b->load("s1");
        ASSERT_TRUE(r);
        const auto tag = r->doc.at("iteration").as_int64();
        EXPECT_EQ(r->doc, sample_doc(static_cast<int>(tag % 7) * 3000, tag));
        EXPECT_EQ(r->meta.iteration, tag);
        seen = r->sequence;
    }
}

TEST_F(MmapBinary, HostileSessionNamesAndLimits) {
    for (const char* bad : {"", "../x", "a/b", ".hidden", "x\ny"})
        EXPECT_THROW(b->save(bad, doc_of(sample_doc(1, 1)), meta_for(1)), Error) << bad;
    auto o = tradestate::testing::options_in(dir.path(), true);
    o.max_file_bytes = 64 * 1024;
    auto small = open_backend("mmap-binary", o);
    small->save("s1", doc_of(sample_doc(1, 1)), meta_for(1));
    EXPECT_THROW(small->save("s1", doc_of(sample_doc(5000, 2)), meta_for(2)), Error);
    EXPECT_EQ(small->load("s1")->doc, sample_doc(1, 1));
}

TEST_F(MmapBinary, WriterLease) {
    auto lease = b->acquire_writer("s1");
    ASSERT_TRUE(lease->valid());
    auto other = open_backend("mmap-binary", dir.path());
    // flock conflicts between open file descriptions, even in one process.
    try {
        (void)other->acquire_writer("s1");
        FAIL() << "second writer admitted";
    } catch (const Error& e) {
        EXPECT_EQ(e.code(), Errc::locked);
    }
    lease.reset();
    EXPECT_NO_THROW((void)other->acquire_writer("s1"));
}

} // namespace
