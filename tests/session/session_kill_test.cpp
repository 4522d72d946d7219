// kill -9 proof of Session<State>, in process: a forked child resumes the
// session through the real plugin, records operations with journal_fsync =
// always, acknowledges each on a pipe only after record() returned, and hands
// background checkpoints to the writer thread at random; the parent SIGKILLs
// it at random moments. After every kill, what a resume would give must hold
// every acknowledged operation, report no loss, and equal — to the paisa —
// the same stream applied in memory.
//
// TRADESTATE_SESSION_KILLS sets the kills per backend (ctest runs a bounded
// number; docs/durability.md has the long run). The same proof over the
// installed example program is examples/durable_session (label torture).
#include <tradestate_test/support.hpp>

#include <tradestate/detail/atomic_file.hpp>
#include <tradestate/persister.hpp>
#include <tradestate/session.hpp>
#include <tradestate/session_state.hpp>

#include <gtest/gtest.h>

#include <cstdlib>
#include <iostream>
#include <random>

#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

using namespace tradestate;
using namespace tradestate::testing;
using TradingSession = tradestate::Session<SessionState>;

namespace {

SessionOptions options(const std::filesystem::path& dir) {
    SessionOptions o;
    o.state_dir = dir;
    o.journal_fsync = JournalFsync::always;
    o.fsync = true;
    return o;
}

std::shared_ptr<StatePersister<SessionState>> persister(const std::string& backend, const std::filesystem::path& dir) {
    return std::make_shared<StatePersister<SessionState>>(open_backend(backend, options_in(dir, true)), quiet_logger());
}

/// The child: resume (or start), then trade until killed; ack = the 8-byte operation number.
[[noreturn]] void child_main(const std::string& backend, const std::filesystem::path& dir, int ack_fd, unsigned seed) {
    try {
        TradingSession s(persister(backend, dir), options(dir));
        if (!s.resume().resumed) s.start_fresh(fresh_state());
        std::mt19937 rng(seed);
        for (;;) {
            const std::uint64_t k = s.status().acknowledged_op + 1;
            const std::uint64_t seq = s.record(op_number(k, s.state()));
            if (seq != k) ::_exit(3);
            if (detail::write_all(ack_fd, reinterpret_cast<const char*>(&seq), sizeof seq) != 0) ::_exit(4);
            if (rng() % 12 == 0) s.checkpoint();
        }
    } catch (const std::exception& e) {
        std::cerr << "child: " << e.what() << '\n';
        ::_exit(5);
    }
}

} // namespace

class SessionKill : public ::testing::TestWithParam<std::string> {};

TEST_P(SessionKill, NoAcknowledgedOperationIsLostOnSigkill) {
    const char* env = std::getenv("TRADESTATE_SESSION_KILLS");
    const int rounds = env ? std::atoi(env) : 150;
    TempDir d("tradestate-session-kill");
    std::mt19937 rng(12345);
    SessionState ref = fresh_state(); // the same stream, applied in memory
    std::uint64_t ref_seq = 0, max_acked = 0, total_acks = 0, mid_op_kills = 0;
    for (int round = 0; round < rounds; ++round) {
        ForkedChild child([&](int fd) { child_main(GetParam(), d.path(), fd, static_cast<unsigned>(round)); });
        // Kill after a random number of acknowledgements (0..11), then, half
        // the time, a random few hundred microseconds later, to hit operations
        // and checkpoints in flight.
        const std::uint64_t want = rng() % 12;
        std::uint64_t got = 0;
        auto read_ack = [&](int timeout_ms) {
            pollfd p{child.fd(), POLLIN, 0};
            if (::poll(&p, 1, timeout_ms) <= 0) return false;
            std::uint64_t seq = 0;
            if (::read(child.fd(), &seq, sizeof seq) != static_cast<ssize_t>(sizeof seq)) return false;
            EXPECT_GT(seq, max_acked) << "acknowledgements must grow";
            max_acked = std::max(max_acked, seq);
            ++got;
            ++total_acks;
            return true;
        };
        while (got < want)
            if (!read_ack(60'000)) break;
        if (rng() % 2) {
            const auto spin_until = std::chrono::steady_clock::now() + std::chrono::microseconds(rng() % 800);
            while (std::chrono::steady_clock::now() < spin_until) {
            }
            ++mid_op_kills;
        }
        const int status = child.kill();
        ASSERT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL)
            << "child exited on its own (status " << status << ") in round " << round;
        while (read_ack(0)) {
        } // acks written before death count as acknowledged

        auto p = persister(GetParam(), d.path());
        const auto ins = TradingSession::inspect(*p, options(d.path()));
        if (!ins.state) {
            ASSERT_EQ(max_acked, 0u) << "round " << round << ": nothing loads after " << max_acked << " acknowledgements";
            continue;
        }
        ASSERT_FALSE(ins.report.loss) << "round " << round << ": " << ins.report.loss_message("default");
        ASSERT_GE(ins.report.last_op, max_acked) << "acknowledged operations lost in round " << round;
        ASSERT_LE(ins.report.last_op, max_acked + 1) << "round " << round;
        for (; ref_seq < ins.report.last_op; ++ref_seq) tradestate_apply(ref, op_number(ref_seq + 1, ref), "ref");
        ASSERT_EQ(*ins.state, ref) << "round " << round;
        ASSERT_EQ(ins.state->portfolio.reconcile(), Money{});
        max_acked = ins.report.last_op; // the in-flight one, if it landed, is now part of the state
    }
    std::cout << "[ measure  ] session kill -9 (" << GetParam() << "): " << rounds << " kills, " << total_acks
              << " acknowledged operations, 0 lost, 0 losses reported; " << mid_op_kills
              << " kills at random moments after an acknowledgement; final operation " << max_acked << '\n';
    EXPECT_GT(total_acks, static_cast<std::uint64_t>(rounds)); // the children really traded
}

INSTANTIATE_TEST_SUITE_P(FileBackends, SessionKill, ::testing::ValuesIn(file_backends()),
                         [](const auto& i) {
                             std::string s;
                             for (char c : i.param) s.push_back(c == '-' ? '_' : c);
                             return s;
                         });
