// Crash test of atomic replace, for every backend in backends.hpp: a child
// process saves in a loop (with fsync on) and is SIGKILLed at random
// moments; after each kill the session must load as exactly the document of
// the last completed save or of the save that was in flight.
//
// TRADESTATE_CRASH_ROUNDS overrides the number of kills (default 200).
#include "support.hpp"

#include <gtest/gtest.h>

#include <chrono>
#include <csignal>
#include <iostream>
#include <random>
#include <thread>

#include <fcntl.h>
#include <poll.h>
#include <sys/wait.h>
#include <unistd.h>

using namespace tradestate;
using namespace tradestate::testing;

namespace {

json::value crash_doc(std::int64_t k) {
    // sizes vary from save to save so that a mix of two versions cannot parse as either
    return make_doc(static_cast<std::size_t>(40 + (k % 7) * 60), static_cast<std::size_t>(k % 4) * 50,
                    static_cast<std::uint64_t>(k), k);
}

/// Child: save crash_doc(k) for k = last saved + 1, ... forever, reporting
/// "B k" before and "E k" after each save on `out_fd`.
[[noreturn]] void saver_loop(const std::string& name, const BackendOptions& opts, int out_fd) {
    try {
        auto b = open_backend(name, opts);
        auto lease = b->acquire_writer("crash");
        std::int64_t k = 0;
        if (auto r = b->load("crash")) k = r->doc.as_object().at("iteration").as_int64();
        for (;;) {
            ++k;
            std::string line = "B " + std::to_string(k) + "\n";
            if (::write(out_fd, line.data(), line.size()) < 0) ::_exit(3);
            save_doc(*b, "crash", crash_doc(k));
            line = "E " + std::to_string(k) + "\n";
            if (::write(out_fd, line.data(), line.size()) < 0) ::_exit(3);
        }
    } catch (const std::exception& e) {
        std::string msg = std::string("X ") + e.what() + "\n";
        (void)::write(out_fd, msg.data(), msg.size());
        ::_exit(2);
    }
}

class Crash : public ::testing::TestWithParam<BackendEntry> {};

TEST_P(Crash, SigkillDuringSavesNeverLeavesABrokenState) {
    TempDir tmp;
    std::string skip;
    auto o = options_for(GetParam(), tmp.path() / "state", skip);
    if (!o) GTEST_SKIP() << skip;
    o->fsync = true;
    int rounds = 200;
    if (const char* env = std::getenv("TRADESTATE_CRASH_ROUNDS")) rounds = std::max(1, std::atoi(env));

    std::mt19937 rng(12345);
    std::int64_t last_done = 0; // highest k whose save completed in any round
    int mid_save_kills = 0, recovered = 0;
    long long save_us = 2000; // estimate of one save's duration, refined as rounds go
    const auto t0 = std::chrono::steady_clock::now();
    for (int round = 0; round < rounds; ++round) {
        ForkedChild child([&](int fd) { saver_loop(GetParam().name, *o, fd); });
        std::string out;
        auto read_some = [&](int timeout_ms) { return child.read_some(out, timeout_ms); };
        // Let the child complete 0-2 saves, then kill it at a random moment
        // within the next one (save_us: the time one save takes, measured
        // between consecutive "B" lines).
        const int wanted_begins = 1 + static_cast<int>(rng() % 3);
        int begins = 0;
        auto last_begin = std::chrono::steady_clock::now();
        auto count_begins = [&] {
            int n = 0;
            for (std::size_t i = 0; (i = out.find('B', i)) != std::string::npos; ++i) ++n;
            return n;
        };
        while (begins < wanted_begins && out.find('X') == std::string::npos) {
            ASSERT_TRUE(read_some(30000)) << "the saver child stopped reporting (round " << round << ")";
            const int now_begins = count_begins();
            if (now_begins > begins) {
                const auto t = std::chrono::steady_clock::now();
                if (begins > 0)
                    save_us = (save_us * 3 + std::chrono::duration_cast<std::chrono::microseconds>(t - last_begin).count() /
                                                 (now_begins - begins)) / 4;
                last_begin = t;
                begins = now_begins;
            }
        }
        std::this_thread::sleep_for(std::chrono::microseconds(rng() % static_cast<unsigned>(std::max<long long>(save_us, 100))));
        const int st = child.kill();
        while (read_some(0)) {
        }
        ASSERT_EQ(out.find('X'), std::string::npos) << "the saver failed: " << out;
        ASSERT_TRUE(WIFSIGNALED(st)) << "the saver exited on its own: " << out;

        // last begun / last ended save of this round
        std::int64_t begun = 0, ended = last_done;
        std::istringstream lines(out);
        std::string tag;
        std::int64_t k = 0;
        while (lines >> tag >> k) (tag == "B" ? begun : ended) = std::max(tag == "B" ? begun : ended, k);
        if (begun > ended) ++mid_save_kills;

        auto b = open_backend(GetParam().name, *o);
        std::optional<LoadResult> r;
        try {
            r = b->load("crash");
        } catch (const Error& e) {
            FAIL() << "round " << round << ": the state does not load after SIGKILL: " << e.what();
        }
        if (!r) {
            ASSERT_EQ(ended, 0) << "round " << round << ": the session vanished after a completed save";
            continue;
        }
        const auto got = r->doc.as_object().at("iteration").as_int64();
        ASSERT_TRUE(got == ended || got == begun)
            << "round " << round << ": loaded iteration " << got << ", expected " << ended << " (last completed) or "
            << begun << " (in flight)";
        ASSERT_TRUE(same_doc(r->doc, crash_doc(got))) << "round " << round << ": document " << got << " is damaged";
        if (r->recovered) ++recovered;
        last_done = got;
    }
    const auto secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    std::cout << "[ info ] " << GetParam().name << ": " << rounds << " SIGKILLs (" << mid_save_kills
              << " during a save, " << recovered << " loads fell back to an older copy), last iteration " << last_done
              << ", " << secs << " s\n";
    EXPECT_GT(mid_save_kills, rounds / 4) << "too few kills landed inside a save to prove anything";
}

std::string param_name(const ::testing::TestParamInfo<BackendEntry>& info) {
    std::string n = info.param.name;
    for (auto& c : n)
        if (!std::isalnum(static_cast<unsigned char>(c))) c = '_';
    return n;
}

INSTANTIATE_TEST_SUITE_P(Backends, Crash, ::testing::ValuesIn(conformance_backends()), param_name);

} // namespace
