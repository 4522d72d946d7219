// AsyncSaver: ordering, coalescing on a slow disk, flush at exit (also in a
// real process stopped with SIGINT), and failure reporting — through the
// real json-files plugin.
#include <tradestate_test/support.hpp>

#include <tradestate/async_saver.hpp>
#include <tradestate/session_state.hpp>

#include <gtest/gtest.h>

#include <atomic>
#include <condition_variable>
#include <csignal>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <pthread.h>
#include <sys/wait.h>
#include <unistd.h>

namespace {

namespace fs = std::filesystem;
using tradestate::AsyncSaver;
using tradestate::Backend;
using tradestate::SessionState;
using tradestate::testing::TempDir;
using Persister = tradestate::StatePersister<SessionState>;

std::shared_ptr<spdlog::logger> quiet() { return tradestate::testing::quiet_logger(); }

std::shared_ptr<Backend> json_files(const fs::path& dir) {
    auto o = tradestate::testing::options_in(dir, false);
    o.keep_backups = 2;
    return tradestate::testing::open_backend("json-files", o);
}

SessionState state_at(std::int64_t iteration, int positions = 3) {
    SessionState s;
    s.timestamp = tradestate::Timestamp::from_micros(1'727'000'000'000'000 + iteration * 1'000'000);
    s.iteration = iteration;
    s.portfolio = tradestate::Portfolio(tradestate::Money::from_rupees(1'000'000));
    for (int i = 0; i < positions; ++i) {
        tradestate::Position p;
        p.symbol = "NIFTY25SEP" + std::to_string(24000 + 50 * i) + "CE";
        p.shares = 75;
        p.lot_size = 75;
        p.entry_price = tradestate::Money::from_paise(10'000 + i);
        p.strategy = "straddle";
        s.portfolio.open(p);
    }
    return s;
}

/// A real backend behind a gate: records the iteration of every save and,
/// while closed, holds saves (a disk as slow as the test wants).
class GatedBackend final : public Backend {
public:
    explicit GatedBackend(std::shared_ptr<Backend> inner) : inner_(std::move(inner)) {}

    void close_gate() {
        std::lock_guard lk(mu_);
        open_ = false;
    }
    void open_gate() {
        {
            std::lock_guard lk(mu_);
            open_ = true;
        }
        cv_.notify_all();
    }
    /// Wait until a save is blocked at the closed gate.
    void wait_until_held() {
        std::unique_lock lk(mu_);
        cv_.wait(lk, [&] { return held_ > 0; });
    }
    std::vector<std::int64_t> saved() {
        std::lock_guard lk(mu_);
        return saved_;
    }
    void fail_next(std::string why) {
        std::lock_guard lk(mu_);
        fail_ = std::move(why);
    }

    std::string name() const override { return inner_->name(); }
    std::uint64_t save(const std::string& session, const tradestate::Document& doc, const tradestate::SaveMeta& meta) override {
        {
            std::unique_lock lk(mu_);
            ++held_;
            cv_.notify_all();
            cv_.wait(lk, [&] { return open_; });
            --held_;
            if (!fail_.empty()) {
                std::string why;
                why.swap(fail_);
                throw tradestate::Error(tradestate::Errc::io, why);
            }
        }
        const auto seq = inner_->save(session, doc, meta);
        std::lock_guard lk(mu_);
        saved_.push_back(meta.iteration);
        return seq;
    }
    std::optional<tradestate::LoadResult> load(const std::string& s) override { return inner_->load(s); }
    std::vector<tradestate::SessionInfo> list() override { return inner_->list(); }
    bool exists(const std::string& s) override { return inner_->exists(s); }
    bool remove(const std::string& s) override { return inner_->remove(s); }
    tradestate::VerifyReport verify(const std::string& s) override { return inner_->verify(s); }
    std::unique_ptr<tradestate::WriterLease> acquire_writer(const std::string& s) override {
        return inner_->acquire_writer(s);
    }

private:
    std::shared_ptr<Backend> inner_;
    std::mutex mu_;
    std::condition_variable cv_;
    bool open_ = true;
    int held_ = 0;
    std::string fail_;
    std::vector<std::int64_t> saved_;
};

std::int64_t loaded_iteration(Persister& p, const std::string& session = "default") {
    auto l = p.load(session);
    if (!l) return -1;
    return l->state.iteration;
}

TEST(AsyncSaver, SavesInSubmitOrderAndTheLastOneWins) {
    TempDir dir;
    auto gate = std::make_shared<GatedBackend>(json_files(dir.path()));
    auto persister = std::make_shared<Persister>(gate, quiet());
    {
        AsyncSaver<SessionState> saver(persister);
        for (int i = 1; i <= 40; ++i) {
            const auto ticket = saver.submit_copy(state_at(i));
            EXPECT_EQ(ticket, static_cast<std::uint64_t>(i));
        }
        EXPECT_TRUE(saver.flush());
        const auto st = saver.stats();
        EXPECT_EQ(st.submitted, 40u);
        EXPECT_EQ(st.written + st.coalesced, 40u);
        EXPECT_EQ(st.failed, 0u);
        EXPECT_EQ(st.last_written_ticket, 40u);
        EXPECT_FALSE(saver.busy());
    }
    const auto saved = gate->saved();
    ASSERT_FALSE(saved.empty());
    for (std::size_t i = 1; i < saved.size(); ++i) EXPECT_LT(saved[i - 1], saved[i]) << "save " << i << " out of order";
    EXPECT_EQ(saved.back(), 40);
    EXPECT_EQ(loaded_iteration(*persister), 40);
}

TEST(AsyncSaver, SlowDiskCoalescesPendingSnapshotsWithoutBlockingTheCaller) {
    TempDir dir;
    auto gate = std::make_shared<GatedBackend>(json_files(dir.path()));
    auto persister = std::make_shared<Persister>(gate, quiet());
    AsyncSaver<SessionState> saver(persister);
    gate->close_gate();
    saver.submit_copy(state_at(1));
    gate->wait_until_held(); // save 1 is in flight and cannot finish
    // The disk is stuck, yet every submit returns: only the newest waits.
    for (int i = 2; i <= 100; ++i) saver.submit_copy(state_at(i));
    EXPECT_TRUE(saver.busy());
    auto st = saver.stats();
    EXPECT_EQ(st.submitted, 100u);
    EXPECT_EQ(st.coalesced, 98u); // 2..99 replaced, 100 waits
    EXPECT_EQ(st.written, 0u);
    gate->open_gate();
    EXPECT_TRUE(saver.flush());
    EXPECT_EQ(gate->saved(), (std::vector<std::int64_t>{1, 100}));
    st = saver.stats();
    EXPECT_EQ(st.written, 2u);
    EXPECT_EQ(st.last_written_ticket, 100u);
    EXPECT_EQ(loaded_iteration(*persister), 100);
}

TEST(AsyncSaver, DestructorCompletesTheSaveInFlightAndThePendingOne) {
    TempDir dir;
    auto gate = std::make_shared<GatedBackend>(json_files(dir.path()));
    auto persister = std::make_shared<Persister>(gate, quiet());
    auto saver = std::make_unique<AsyncSaver<SessionState>>(persister);
    gate->close_gate();
    saver->submit_copy(state_at(7));
    gate->wait_until_held();
    saver->submit_copy(state_at(8));
    std::atomic<bool> destroyed{false};
    std::thread closer([&] {
        saver.reset();
        destroyed = true;
    });
    // The destructor cannot return while save 7 is held at the gate.
    EXPECT_FALSE(destroyed.load());
    EXPECT_EQ(loaded_iteration(*persister), -1);
    gate->open_gate();
    closer.join();
    EXPECT_TRUE(destroyed.load());
    EXPECT_EQ(gate->saved(), (std::vector<std::int64_t>{7, 8}));
    EXPECT_EQ(loaded_iteration(*persister), 8);
}

TEST(AsyncSaver, FailuresAreReportedAndTheNextSubmitRetries) {
    TempDir dir;
    const fs::path state = dir.path() / "state";
    auto persister = std::make_shared<Persister>(json_files(state), quiet());
    std::mutex mu;
    std::vector<tradestate::SaveFailure> seen;
    AsyncSaver<SessionState> saver(persister, "default", [&](const tradestate::SaveFailure& f) {
        std::lock_guard lk(mu);
        seen.push_back(f);
    });
    saver.submit_copy(state_at(1));
    ASSERT_TRUE(saver.flush());
    EXPECT_FALSE(saver.last_error());

    // Real failure: the state directory is replaced by a regular file.
    fs::rename(state, dir.path() / "state-away");
    { std::ofstream(state) << "not a directory\n"; }
    const auto bad = saver.submit_copy(state_at(2));
    EXPECT_FALSE(saver.flush());
    {
        std::lock_guard lk(mu);
        ASSERT_EQ(seen.size(), 1u);
        EXPECT_EQ(seen[0].ticket, bad);
        EXPECT_EQ(seen[0].session, "default");
        EXPECT_NE(seen[0].message.find(state.string()), std::string::npos) << seen[0].message;
    }
    auto last = saver.last_error();
    ASSERT_TRUE(last);
    EXPECT_EQ(last->ticket, bad);
    auto taken = saver.take_failure();
    ASSERT_TRUE(taken);
    EXPECT_EQ(taken->ticket, bad);
    EXPECT_FALSE(saver.take_failure());
    EXPECT_EQ(saver.stats().failed, 1u);

    // The disk comes back: the next submit is the retry, with newer data.
    fs::remove(state);
    fs::rename(dir.path() / "state-away", state);
    saver.submit_copy(state_at(3));
    EXPECT_TRUE(saver.flush());
    EXPECT_FALSE(saver.last_error());
    EXPECT_EQ(loaded_iteration(*persister), 3);
}

TEST(AsyncSaver, SubmittedDocumentsAreSavedToo) {
    TempDir dir;
    auto persister = std::make_shared<Persister>(json_files(dir.path()), quiet());
    AsyncSaver<SessionState> saver(persister, "docs");
    saver.submit_document(std::make_shared<const tradestate::Document>(Persister::to_document(state_at(5, 10))));
    EXPECT_TRUE(saver.flush());
    auto l = persister->load("docs");
    ASSERT_TRUE(l);
    EXPECT_EQ(l->state, state_at(5, 10));
}

TEST(AsyncSaver, SuccessReportsTheBackendsSequenceAndStoresTheEnvelope) {
    TempDir dir;
    auto persister = std::make_shared<Persister>(json_files(dir.path()), quiet());
    std::mutex mu;
    std::vector<tradestate::SavedSnapshot> done;
    AsyncSaver<SessionState> saver(persister, "default", {}, [&](const tradestate::SavedSnapshot& s) {
        std::lock_guard lk(mu);
        done.push_back(s);
    });
    tradestate::SaveMeta env;
    env.lineage = 0x1234;
    env.journal_id = 0xabcd;
    env.journal_seq = 77;
    saver.submit_copy(state_at(1), 11);
    ASSERT_TRUE(saver.flush());
    saver.submit_copy(state_at(2), 12, env);
    ASSERT_TRUE(saver.flush());
    std::lock_guard lk(mu);
    ASSERT_EQ(done.size(), 2u);
    EXPECT_EQ(done[0].tag, 11);
    EXPECT_EQ(done[0].sequence, 1u);
    EXPECT_FALSE(done[0].envelope);
    EXPECT_EQ(done[1].sequence, 2u);
    ASSERT_TRUE(done[1].envelope);
    auto l = persister->load("default");
    ASSERT_TRUE(l);
    EXPECT_EQ(l->sequence, 2u);
    EXPECT_EQ(l->meta.lineage, 0x1234u);
    EXPECT_EQ(l->meta.journal_id, 0xabcdu);
    EXPECT_EQ(l->meta.journal_seq, 77u);
}

// ---- a real process stopped with SIGINT while its save is in flight ------

volatile std::sig_atomic_t g_stop = 0;
extern "C" void on_sigint(int) { g_stop = 1; }

/// In the child: a backend that announces a save on `ready` and finishes it
/// only after a byte arrives on `go` (sent after the parent's SIGINT).
class PipeGatedBackend final : public Backend {
public:
    PipeGatedBackend(std::shared_ptr<Backend> inner, int ready, int go) : inner_(std::move(inner)), ready_(ready), go_(go) {}
    std::string name() const override { return inner_->name(); }
    std::uint64_t save(const std::string& session, const tradestate::Document& doc, const tradestate::SaveMeta& meta) override {
        const char c = 'S';
        if (::write(ready_, &c, 1) != 1) std::_Exit(20);
        char g = 0;
        while (::read(go_, &g, 1) < 0 && errno == EINTR) {
        }
        return inner_->save(session, doc, meta);
    }
    std::optional<tradestate::LoadResult> load(const std::string& s) override { return inner_->load(s); }
    std::vector<tradestate::SessionInfo> list() override { return inner_->list(); }
    bool exists(const std::string& s) override { return inner_->exists(s); }
    bool remove(const std::string& s) override { return inner_->remove(s); }
    tradestate::VerifyReport verify(const std::string& s) override { return inner_->verify(s); }
    std::unique_ptr<tradestate::WriterLease> acquire_writer(const std::string& s) override {
        return inner_->acquire_writer(s);
    }

private:
    std::shared_ptr<Backend> inner_;
    int ready_, go_;
};

TEST(AsyncSaver, SaveInFlightAtSigintCompletesBeforeTheProcessExits) {
    TempDir dir;
    int ready[2], go[2];
    ASSERT_EQ(::pipe(ready), 0);
    ASSERT_EQ(::pipe(go), 0);
    const pid_t pid = ::fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
        ::close(ready[0]);
        ::close(go[1]);
        struct sigaction sa {};
        sa.sa_handler = on_sigint;
        ::sigaction(SIGINT, &sa, nullptr);
        // SIGINT blocked here, so the saver's threads inherit the block and
        // only sigsuspend() below takes it: handled by a saver thread, it
        // would set g_stop and leave this thread suspended for ever.
        sigset_t sigint;
        sigemptyset(&sigint);
        sigaddset(&sigint, SIGINT);
        ::pthread_sigmask(SIG_BLOCK, &sigint, nullptr);
        int code = 0;
        try {
            auto backend = std::make_shared<PipeGatedBackend>(json_files(dir.path()), ready[1], go[0]);
            auto persister = std::make_shared<Persister>(backend, quiet());
            AsyncSaver<SessionState> saver(persister);
            saver.submit_copy(state_at(42, 100));
            sigset_t none;
            sigemptyset(&none);
            while (!g_stop) ::sigsuspend(&none); // the "loop", until Ctrl+C
            // leaving the scope flushes
        } catch (...) {
            code = 10;
        }
        std::_Exit(code);
    }
    ::close(ready[1]);
    ::close(go[0]);
    char c = 0;
    ASSERT_EQ(::read(ready[0], &c, 1), 1); // the child's save is in flight
    ASSERT_EQ(::kill(pid, SIGINT), 0);
    // Nothing is on disk yet: the save is held until we say go.
    auto persister = std::make_shared<Persister>(json_files(dir.path()), quiet());
    EXPECT_EQ(loaded_iteration(*persister), -1);
    ASSERT_EQ(::write(go[1], "g", 1), 1);
    int status = 0;
    ASSERT_EQ(::waitpid(pid, &status, 0), pid);
    ASSERT_TRUE(WIFEXITED(status));
    EXPECT_EQ(WEXITSTATUS(status), 0);
    EXPECT_EQ(loaded_iteration(*persister), 42);
    ::close(ready[0]);
    ::close(go[1]);
}

} // namespace
