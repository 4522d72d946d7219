// tradestate — Session<State>: the one owner of a session's durability.
//
// It holds the writer lease, the journal, the background checkpoints and the
// recovery rules, so that a program only changes its state through
// operations and asks for checkpoints:
//
//   tradestate::Session<MyState> s(persister, opts);   // takes the writer lease
//   if (s.exists()) s.resume(); else s.start_fresh(MyState{});
//   s.apply(op1); s.apply(op2);
//   s.commit();          // returns once op1, op2 are durable (journal_fsync)
//   s.checkpoint();      // background snapshot; the caller does not wait
//   s.close();           // final snapshot (unless nothing changed), lease released
//
// State needs the StatePersister conversions and the replay hook
// `tradestate_apply` (replay.hpp). The rules, each with the test that proves
// it, are in docs/session.md. In short:
//   * an operation is acknowledged (commit() returns) only once it is on
//     stable storage where a restart will look; commit() checks that the
//     journal, the mark, the lease and the newest snapshot are still in
//     place, and writes a fresh snapshot and journal when one was deleted;
//   * journal records are kept back to the oldest copy a fallback can load
//     (Backend::fallback_depth()), so a fallback rolls forward to the last
//     acknowledged operation;
//   * a mark file beside the journal (detail/session_mark.hpp) remembers the
//     last acknowledged operation and the newest durable snapshot, so that a
//     deleted or shortened journal, or a rolled-back snapshot, is named;
//   * a loss that cannot be repaired makes resume() throw Errc::data_loss
//     naming what is gone, unless the caller accepts it explicitly;
//   * nothing of a session that exists on disk turns into a fresh start;
//     start_fresh() moves the previous session, backups included, to a
//     backup name.
#pragma once

#include <tradestate/async_saver.hpp>
#include <tradestate/backend.hpp>
#include <tradestate/backend_journal.hpp>
#include <tradestate/detail/atomic_file.hpp>
#include <tradestate/detail/session_mark.hpp>
#include <tradestate/error.hpp>
#include <tradestate/file_journal.hpp>
#include <tradestate/journal_format.hpp>
#include <tradestate/journal_writer.hpp>
#include <tradestate/persister.hpp>
#include <tradestate/replay.hpp>

#include <spdlog/logger.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <ctime>
#include <deque>
#include <exception>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <system_error>
#include <utility>
#include <vector>

#include <sys/stat.h>

namespace tradestate {

/// How a session is kept.
struct SessionOptions {
    std::string name = default_session;
    bool journal = true;                          ///< journal every operation (false: snapshots only)
    JournalFsync journal_fsync = JournalFsync::always;
    std::filesystem::path state_dir = "state";    ///< where the journal and the mark live (file backends)
    std::uint64_t max_file_bytes = 1ull << 30;
    bool fsync = true;                            ///< flush the mark after each durable snapshot
    std::size_t fallback_depth = 0;               ///< 0: what the backend says (Backend::fallback_depth)
    /// Called on the writer thread after a background checkpoint is durable / failed (the
    /// snapshot's tag is the state's progress counter, see replay.hpp). Must not throw.
    std::function<void(const SavedSnapshot&)> on_checkpoint;
    std::function<void(const SaveFailure&)> on_checkpoint_failed;
};

struct ResumeOptions {
    /// Continue from the best copy even when acknowledged operations are
    /// gone (the loss is logged and stays in the report). Without it,
    /// resume() throws Errc::data_loss.
    bool accept_loss = false;
};

/// Acknowledged operations that no copy holds any more.
struct SessionLoss {
    std::uint64_t first_op = 0;                ///< first lost operation
    std::uint64_t last_op = 0;                 ///< last lost operation (the last acknowledged one)
    std::optional<std::int64_t> from_progress; ///< the state's progress counter before the loss
    std::optional<std::int64_t> to_progress;   ///< ... and what it had reached
    std::vector<std::string> reasons;          ///< what is missing or damaged, one sentence each

    [[nodiscard]] std::string what() const {
        std::string s;
        if (first_op && last_op >= first_op)
            s = last_op == first_op ? "operation " + std::to_string(first_op)
                                    : "operations " + std::to_string(first_op) + ".." + std::to_string(last_op);
        else s = "operations";
        if (from_progress && to_progress && *to_progress > *from_progress)
            s += *to_progress == *from_progress + 1
                     ? " (iteration " + std::to_string(*to_progress) + ")"
                     : " (iterations " + std::to_string(*from_progress + 1) + ".." + std::to_string(*to_progress) + ")";
        return s;
    }
    [[nodiscard]] bool one() const noexcept { return first_op && first_op == last_op; }
};

/// What resume() (or inspect()) found and did.
struct ResumeReport {
    bool resumed = false;               ///< a saved state was loaded
    std::string source;                 ///< where the snapshot came from
    std::uint64_t snapshot_sequence = 0;
    std::uint64_t snapshot_op = 0;      ///< the last operation the snapshot contains
    std::size_t replayed = 0;           ///< journal records applied over it
    std::uint64_t last_op = 0;          ///< the state's last operation after replay
    std::uint64_t acknowledged_op = 0;  ///< the last acknowledged operation, per the mark (0: unknown)
    bool recovered = false;             ///< not the newest copy: an older one was rolled forward
    std::vector<std::string> notes;     ///< what is worth knowing but is no damage (a torn unacknowledged record)
    std::vector<std::string> warnings;  ///< conversions, fallbacks, journals not used
    std::vector<std::string> damage;    ///< damaged, missing or replaced files (tradestate verify fails on these)
    std::vector<std::string> kept_aside;///< files kept for inspection
    std::optional<SessionLoss> loss;    ///< acknowledged operations that are gone

    /// The full sentence for a loss (empty without one).
    [[nodiscard]] std::string loss_message(const std::string& session) const {
        if (!loss) return {};
        std::string m = "session '" + session + "': " + loss->what() + (loss->one() ? " was" : " were") +
                        " acknowledged but " + (loss->one() ? "is" : "are") + " gone";
        for (const auto& r : loss->reasons) m += "\n  - " + r;
        if (resumed) m += "\n  The best copy that loads is " + source + " (sequence " + std::to_string(snapshot_sequence) +
                          ", up to operation " + std::to_string(last_op) + ").";
        else m += "\n  No saved copy of the session loads.";
        for (const auto& k : kept_aside) m += "\n  Kept for inspection: " + k;
        return m;
    }

    /// Log the report once, each line naming the session: damage as errors,
    /// warnings, notes as information, and a loss (which the caller
    /// accepted; `accepted` says so after it) as an error.
    template <class Logger> void log_to(Logger& log, const std::string& session, const std::string& accepted) const {
        const std::string who = "session '" + session + "': ";
        const auto about = [&](const std::string& w) { return w.starts_with("session '") ? w : who + w; };
        for (const auto& w : damage) log.error("{}", about(w));
        for (const auto& w : warnings) log.warn("{}", about(w));
        for (const auto& n : notes) log.info("{}", about(n));
        if (loss) log.error("{}\n  {}", loss_message(session), accepted);
    }
};

/// What a resume would give, read without taking the lease or changing a byte.
template <class State> struct Inspection {
    std::optional<State> state;
    ResumeReport report;
};

/// Where a session stands (Session::status()).
struct SessionStatus {
    std::string name;
    std::uint64_t lineage = 0;
    std::uint64_t journal_id = 0;       ///< 0: no journal
    std::string journal_where;
    std::uint64_t acknowledged_op = 0;  ///< the last operation commit() acknowledged
    std::size_t pending_ops = 0;        ///< applied, not yet committed
    std::uint64_t durable_sequence = 0; ///< backend sequence of the newest durable snapshot
    std::uint64_t durable_op = 0;       ///< the last operation that snapshot holds
    bool checkpoint_in_flight = false;
    std::string journal_problem;        ///< non-empty: the journal failed; operations go into snapshots
};

namespace detail {

/// Rename `p` to `<p><suffix>-<UTC time>[-n]`; returns the new path (empty if `p` is gone).
inline std::filesystem::path move_aside(const std::filesystem::path& p, const std::string& suffix) {
    struct stat st {};
    if (::lstat(p.c_str(), &st) != 0) return {};
    const std::string stamp = utc_stamp();
    for (int n = 0; n < 1000; ++n) {
        std::filesystem::path to = p.string() + suffix + "-" + stamp + (n ? "-" + std::to_string(n) : std::string());
        struct stat o {};
        if (::lstat(to.c_str(), &o) == 0) continue;
        if (::rename(p.c_str(), to.c_str()) != 0) throw_io("move aside", p, errno);
        return to;
    }
    throw Error(Errc::io, "cannot find a free name to move " + p.string() + " aside");
}

[[nodiscard]] inline bool path_present(const std::filesystem::path& p) {
    struct stat st {};
    return ::lstat(p.c_str(), &st) == 0;
}

} // namespace detail

template <journaled_state State> class Session {
public:
    using Persister = StatePersister<State>;

    /// Open session `opts.name` through `persister` and take its writer
    /// lease (a second writer is refused with Errc::locked naming the holder).
    Session(std::shared_ptr<Persister> persister, SessionOptions opts)
        : p_(std::move(persister)), o_(std::move(opts)) {
        if (!p_) throw Error(Errc::invalid_argument, "Session needs a persister");
        validate_session_name(o_.name);
        log_ = p_->logger();
        if (o_.fallback_depth == 0) o_.fallback_depth = std::max<std::size_t>(1, p_->backend().fallback_depth());
        lease_ = p_->acquire_writer(o_.name);
        if (!backend_journal()) {
            std::error_code ec;
            std::filesystem::create_directories(o_.state_dir, ec);
            if (ec) throw Error(Errc::io, "cannot create the state directory " + o_.state_dir.string() + ": " + ec.message());
            clean_stale_temps();
        }
    }

    Session(const Session&) = delete;
    Session& operator=(const Session&) = delete;

    /// Finishes background checkpoints and flushes the journal; writes no
    /// final snapshot (close() does) — what was committed is durable anyway.
    ~Session() {
        try {
            saver_.reset();
            std::lock_guard lk(jmu_);
            if (journal_) journal_->sync();
        } catch (const std::exception& e) {
            log_->error("session '{}': closing the journal failed: {}", o_.name, e.what());
        }
    }

    // ---------------------------------------------------------- reading

    /// What resume() would give, without the lease and without changing
    /// anything (tools and dashboards use this).
    [[nodiscard]] static Inspection<State> inspect(Persister& p, const SessionOptions& o) {
        auto r = recover(p, o);
        return {std::move(r.state), std::move(r.report)};
    }

    /// Whether anything of the session is stored: a snapshot (even a
    /// damaged one), backups, a journal or a mark.
    [[nodiscard]] bool exists() { return exists(*p_, o_); }
    [[nodiscard]] static bool exists(Persister& p, const SessionOptions& o) {
        if (p.exists(o.name)) return true;
        if (p.backend().has_journal()) {
            try {
                return p.backend().journal_read(o.name).has_value();
            } catch (const Error&) {
                return true; // something is there, if only damaged
            }
        }
        return detail::path_present(journal_path(o)) || detail::path_present(detail::mark_path(o.state_dir, o.name));
    }

    /// Names of every session anything is stored of, sorted: the backend's
    /// list plus the journals and marks in `o.state_dir` (a session whose
    /// snapshot is gone still shows up).
    [[nodiscard]] static std::vector<std::string> names(Persister& p, const std::filesystem::path& state_dir) {
        std::vector<std::string> out;
        for (const auto& i : p.list()) out.push_back(i.session);
        if (!p.backend().has_journal()) {
            std::error_code ec;
            for (auto it = std::filesystem::directory_iterator(state_dir, ec);
                 !ec && it != std::filesystem::directory_iterator(); it.increment(ec)) {
                const std::string f = it->path().filename().string();
                std::string n;
                if (f.size() > 8 && f.ends_with(".journal")) n = f.substr(0, f.size() - 8);
                else if (f.size() > 6 && f[0] == '.' && f.ends_with(".mark")) n = f.substr(1, f.size() - 6);
                if (!n.empty() && is_valid_session_name(n)) out.push_back(n);
            }
        }
        std::sort(out.begin(), out.end());
        out.erase(std::unique(out.begin(), out.end()), out.end());
        return out;
    }

    // ------------------------------------------------------- starting up

    /// Load the newest good copy, roll it forward with the journal, and
    /// continue. Returns what was loaded, recovered and (with
    /// `accept_loss`) lost; `resumed == false` when nothing was ever saved
    /// (then call start_fresh). Throws Errc::data_loss naming what is gone
    /// when acknowledged operations cannot be recovered and the loss is not
    /// accepted; the state is then unchanged and nothing on disk was touched.
    ResumeReport resume(const ResumeOptions& ro = {}) {
        if (started_) throw Error(Errc::invalid_argument, "session '" + o_.name + "' is already open");
        Recovered r = recover(*p_, o_);
        auto& rep = r.report;
        if (rep.loss && !ro.accept_loss)
            throw Error(Errc::data_loss, rep.loss_message(o_.name) +
                                             "\n  Nothing was changed. To continue from the best copy anyway, accept the loss "
                                             "explicitly (fno_runner --accept-loss); to keep it all and begin anew, start fresh.");
        if (!r.state) {
            if (rep.loss)
                throw Error(Errc::data_loss, rep.loss_message(o_.name) +
                                                 "\n  There is nothing to resume from; start fresh (the session's files are "
                                                 "kept as a backup session).");
            return rep; // never saved
        }
        // The report is logged here, once, and returned: a program shows it
        // or not, but need not log it again.
        rep.log_to(*log_, o_.name, "The loss was accepted; the session continues from there.");
        state_ = std::move(*r.state);
        lineage_ = r.lineage ? r.lineage : detail::random_id();
        committed_ = r.next_op;
        changes_ = submitted_changes_ = durable_changes_ = 0;
        started_ = true;
        open_mark(r.mark_counter);
        const bool continue_journal = o_.journal && r.journal_continuable && !rep.loss;
        if (continue_journal) {
            std::lock_guard lk(jmu_);
            if (backend_journal()) journal_ = BackendJournal::open(p_->backend(), o_.name, o_.journal_fsync);
            else journal_ = FileJournal::open(journal_path(o_), o_.journal_fsync, o_.max_file_bytes);
            committed_ = std::max(committed_, journal_->last_seq());
        }
        if (!continue_journal || rep.recovered || !rep.damage.empty() || lineage_ != r.lineage) {
            // A new journal (or a good newest copy again): a snapshot of
            // everything, synchronously, before anything else happens.
            restart_journal("", continue_journal);
        } else {
            durable_op_ = rep.snapshot_op;
            last_sequence_ = rep.snapshot_sequence;
            write_mark(true, rep.snapshot_sequence, rep.snapshot_op);
        }
        return rep;
    }

    /// Begin a new session with `initial`. If anything of the session exists
    /// it is first renamed, with all its copies, journal and mark, to
    /// `<name>-backup-<UTC time>`; that name is returned (empty when there
    /// was nothing). The first snapshot is written before this returns.
    std::string start_fresh(State initial) {
        if (started_) throw Error(Errc::invalid_argument, "session '" + o_.name + "' is already open");
        std::string backup;
        if (exists()) backup = move_to_backup();
        state_ = std::move(initial);
        lineage_ = detail::random_id();
        committed_ = 0;
        changes_ = submitted_changes_ = durable_changes_ = 0;
        started_ = true;
        open_mark(0);
        restart_journal("", false);
        return backup;
    }

    // -------------------------------------------------------- operations

    [[nodiscard]] const State& state() const noexcept { return state_; }

    /// Apply `op` to state() now; it is acknowledged by the next commit().
    /// The hook must leave the state unchanged when it throws.
    void apply(const boost::json::object& op) {
        require_started();
        apply_op(state_, op, "session '" + o_.name + "' operation " + std::to_string(committed_ + pending_.size() + 1));
        pending_.push_back(op);
        ++changes_;
    }

    /// Make the applied operations durable; returns the number of the last
    /// one once it is on stable storage (per journal_fsync) where a restart
    /// will look. With the journal off it returns at once (the operations
    /// become durable with the next checkpoint). Throws Errc::io when they
    /// could not be made durable; they stay pending and the next commit()
    /// or checkpoint tries again.
    std::uint64_t commit() {
        require_started();
        if (pending_.empty()) return committed_;
        if (!o_.journal) {
            committed_ += pending_.size();
            pending_.clear();
            return committed_;
        }
        std::string problem;
        {
            std::unique_lock lk(jmu_);
            if (journal_ && journal_problem_.empty()) {
                try {
                    const std::uint64_t seq = journal_->append(pending_);
                    committed_ = seq;
                    pending_.clear();
                } catch (const std::exception& e) {
                    journal_problem_ = e.what();
                }
            }
            if (!journal_problem_.empty()) problem = "the journal failed (" + journal_problem_ + ")";
            else if (!journal_) problem = "there is no journal";
        }
        if (problem.empty()) {
            const std::string gone = what_moved();
            if (gone.empty()) {
                try {
                    write_mark(false);
                } catch (const std::exception& e) { // the operations are durable; only the loss check is weaker
                    log_->warn("session '{}': {}", o_.name, e.what());
                }
                return committed_;
            }
            log_->error("session '{}': {}; writing a new snapshot and journal now", o_.name, gone);
            restart_journal(gone, false); // throws when that fails too: not acknowledged
            return committed_;
        }
        // Not in a journal: make the operations durable with a snapshot instead.
        const std::size_t n = pending_.size();
        committed_ += n;
        try {
            log_->error("session '{}': {}; saving a snapshot to make operations {}..{} durable", o_.name, problem,
                        committed_ - n + 1, committed_);
            restart_journal(problem, false);
        } catch (const std::exception& e) {
            committed_ -= n;
            throw Error(Errc::io, "session '" + o_.name + "': operations " + std::to_string(committed_ + 1) + ".." +
                                      std::to_string(committed_ + n) + " are not durable: " + problem +
                                      ", and the snapshot that would hold them failed: " + e.what());
        }
        pending_.clear();
        return committed_;
    }

    /// apply() then commit().
    std::uint64_t record(const boost::json::object& op) {
        apply(op);
        return commit();
    }

    /// Hand a snapshot of state() to the background writer (the caller's
    /// cost: one copy of the state). Once it is durable the journal is
    /// compacted behind the oldest copy a fallback can use. False when
    /// nothing changed since the last checkpoint.
    bool checkpoint() {
        require_started();
        if (!pending_.empty()) commit();
        if (changes_ == submitted_changes_) return false;
        if (!saver_) make_saver();
        SaveMeta env = envelope();
        std::lock_guard lk(bmu_); // the writer thread looks the ticket up once the save is done
        const auto ticket = saver_->submit_copy(state_, progress_of(state_).value_or(static_cast<std::int64_t>(changes_)), env);
        changes_at_ticket_[ticket] = changes_;
        submitted_changes_ = changes_;
        return true;
    }

    /// Write a snapshot now and wait for it.
    void snapshot() {
        require_started();
        if (!pending_.empty()) commit();
        if (saver_) saver_->flush();
        save_sync();
    }

    /// Commit, finish background checkpoints, write a final snapshot when
    /// anything changed since the last durable one, release the lease.
    /// Returns whether a final snapshot was written.
    bool close() {
        if (!started_ || closed_) {
            closed_ = true;
            lease_.reset();
            return false;
        }
        if (!pending_.empty()) commit();
        if (saver_) saver_->flush();
        bool wrote = false;
        std::uint64_t durable_changes;
        {
            std::lock_guard lk(bmu_);
            durable_changes = durable_changes_;
        }
        if (changes_ != durable_changes) {
            save_sync();
            wrote = true;
        }
        saver_.reset();
        {
            std::lock_guard lk(jmu_);
            if (journal_) journal_->sync();
        }
        closed_ = true;
        lease_.reset();
        return wrote;
    }

    [[nodiscard]] SessionStatus status() const {
        SessionStatus s;
        s.name = o_.name;
        s.lineage = lineage_;
        s.acknowledged_op = committed_;
        s.pending_ops = pending_.size();
        {
            std::lock_guard lk(jmu_);
            if (journal_) {
                s.journal_id = journal_->id();
                s.journal_where = journal_->where();
            }
            s.journal_problem = journal_problem_;
        }
        {
            std::lock_guard lk(bmu_);
            s.durable_sequence = last_sequence_;
            s.durable_op = durable_op_;
        }
        s.checkpoint_in_flight = saver_ && saver_->busy();
        return s;
    }

    [[nodiscard]] const SessionOptions& options() const noexcept { return o_; }
    [[nodiscard]] Persister& persister() noexcept { return *p_; }
    /// resume() or start_fresh() happened (state() is the session's; it stays readable after close()).
    [[nodiscard]] bool started() const noexcept { return started_; }
    [[nodiscard]] bool closed() const noexcept { return closed_; }
    /// Whether the writer lease still holds (false: another process may write the session).
    [[nodiscard]] bool lease_valid() const { return lease_ && lease_->valid(); }

    /// Keep the writer lease: when it no longer holds because its lock file
    /// was deleted (with the state dir, say), take it anew (the next commit
    /// then writes the session's files again). False when another process
    /// holds it now: stop writing.
    [[nodiscard]] bool keep_lease() {
        if (lease_valid()) return true;
        try {
            lease_.reset();
            lease_ = p_->acquire_writer(o_.name);
            log_->warn("session '{}': the writer lease was gone (its lock file deleted?) and is taken again", o_.name);
            return true;
        } catch (const Error& e) {
            if (e.code() != Errc::locked) throw;
            log_->error("session '{}': {}", o_.name, e.what());
            return false;
        }
    }

    [[nodiscard]] static std::filesystem::path journal_path(const SessionOptions& o) {
        return o.state_dir / (o.name + ".journal");
    }

private:
    // ----------------------------------------------------------- recovery

    struct Recovered {
        std::optional<State> state;
        ResumeReport report;
        std::uint64_t lineage = 0;
        std::uint64_t next_op = 0;          ///< numbers up to this are used: the next operation is next_op + 1
        bool journal_continuable = false;   ///< the journal belongs to the state and can take appends as is
        std::uint64_t mark_counter = 0;
    };

    static Recovered recover(Persister& p, const SessionOptions& o) {
        Recovered R;
        auto& rep = R.report;
        Backend& b = p.backend();
        const bool bj = b.has_journal();
        const std::string& name = o.name;

        // The mark: how far the session had got.
        std::optional<detail::SessionMark> mark;
        if (!bj) {
            auto mr = detail::read_mark(detail::mark_path(o.state_dir, name));
            if (!mr.problem.empty()) rep.damage.push_back(mr.problem);
            mark = mr.mark;
            R.mark_counter = mr.counter;
        }

        // Read in this order — mark, journal, snapshot — so that a reader
        // beside a running writer never sees a snapshot older than the
        // journal's base, nor a mark ahead of the journal: compaction only
        // drops records a newer durable snapshot holds, and the mark follows
        // the journal.
        // The journal, wherever it is kept.
        std::optional<JournalContents> jc;
        std::string jwhere;
        bool jpresent = false;
        std::string jerror;
        if (bj) {
            try {
                if (auto sj = b.journal_read(name)) {
                    jpresent = true;
                    jwhere = sj->location + " journal";
                    jc = decode_journal(*sj);
                }
            } catch (const Error& e) {
                jpresent = true;
                jerror = e.what();
            }
        } else {
            const auto jp = journal_path(o);
            jwhere = jp.string();
            if (detail::path_present(jp)) {
                jpresent = true;
                try {
                    jc = read_journal(jp, o.max_file_bytes);
                } catch (const Error& e) {
                    jerror = e.what();
                }
            }
        }
        // The snapshot: the backend's newest good copy.
        std::optional<Loaded<State>> loaded;
        std::string load_error;
        try {
            loaded = p.load(name);
        } catch (const Error& e) {
            if (e.code() != Errc::corrupt && e.code() != Errc::parse && e.code() != Errc::schema) throw;
            load_error = e.what();
        }

        if (!jerror.empty()) rep.damage.push_back("the journal cannot be read: " + jerror);
        if (jc && !jc->intact()) rep.damage.push_back(jc->corruption);

        // What was acknowledged, as far as anything remembers.
        const bool mark_same_lineage = mark && (!loaded || !mark->lineage || !loaded->meta.lineage ||
                                                mark->lineage == loaded->meta.lineage);
        std::uint64_t acked = mark_same_lineage ? mark->acked_seq : 0;
        std::optional<std::int64_t> acked_progress;
        if (mark_same_lineage && mark->progress >= 0) acked_progress = mark->progress;
        rep.acknowledged_op = acked;

        SessionLoss loss;
        auto lose = [&](std::string why) { loss.reasons.push_back(std::move(why)); };

        if (!loaded) {
            const bool marked = mark && (mark->acked_seq > 0 || mark->snapshot_sequence > 0);
            if (!load_error.empty()) {
                rep.damage.push_back(load_error);
                lose("no saved copy of the session loads: " + load_error);
            } else if (jpresent || marked) {
                lose(std::string("no saved copy of the session exists, but ") +
                     (jpresent ? "its journal " + jwhere + " does" : std::string("its mark says operation ") +
                                                                         std::to_string(mark->acked_seq) +
                                                                         " was acknowledged"));
            } else if (p.exists(name)) {
                lose("the session's files are there but hold no saved copy (see tradestate verify)");
            } else {
                return R; // never saved
            }
            loss.first_op = 1;
            loss.last_op = std::max<std::uint64_t>({acked, jc ? jc->last_seq() : 0, 1});
            loss.to_progress = acked_progress;
            rep.loss = loss;
            return R;
        }

        rep.resumed = true;
        rep.source = loaded->source;
        rep.snapshot_sequence = loaded->sequence;
        rep.recovered = loaded->recovered;
        rep.kept_aside = loaded->kept_aside;
        for (auto& w : loaded->warnings) rep.warnings.push_back(std::move(w));
        const SaveMeta& meta = loaded->meta;
        const std::uint64_t snap_op = meta.journal_seq;
        if (loaded->recovered) {
            // A save the backend found cut short (a crash in the middle of an
            // append) never returned, so it was never acknowledged — unless the
            // session mark, written once a snapshot is durable, names a newer
            // snapshot than the copy that loads: then a finished one was cut.
            const bool never_acknowledged = loaded->interrupted && mark && mark->lineage && meta.lineage &&
                                            mark->lineage == meta.lineage &&
                                            mark->snapshot_sequence <= loaded->sequence && mark->snapshot_seq <= snap_op;
            if (never_acknowledged)
                rep.notes.push_back("the newest copy of the session is incomplete: a save interrupted before it was "
                                    "acknowledged (the session mark names no newer snapshot); " +
                                    loaded->source + " (sequence " + std::to_string(loaded->sequence) + ") loads");
            else
                rep.damage.push_back("the newest copy of the session is unusable; the older copy " + loaded->source +
                                     " (sequence " + std::to_string(loaded->sequence) + ") loads");
        }
        rep.snapshot_op = snap_op;
        R.lineage = meta.lineage;
        State st = std::move(loaded->state);

        if (mark && mark->lineage) {
            if (meta.lineage && meta.lineage != mark->lineage) {
                rep.damage.push_back("the copy that loads (" + loaded->source + ") belongs to another session lineage (" +
                                     detail::hex64(meta.lineage) + ") than the session's mark (" +
                                     detail::hex64(mark->lineage) + "): it was copied in from another session");
                lose("the copy that loads is not from this session");
                loss.first_op = 1;
                loss.last_op = mark->acked_seq;
                loss.to_progress = mark->progress >= 0 ? std::optional<std::int64_t>(mark->progress) : std::nullopt;
            } else if (!loaded->checked) {
                rep.damage.push_back(loaded->source + " has no tradestate checksum, but the session was written by "
                                                      "tradestate (its mark exists): the file was replaced or edited");
                lose("the copy that loads was replaced or edited by another program");
                loss.first_op = 1;
                loss.last_op = mark->acked_seq;
                loss.to_progress = mark->progress >= 0 ? std::optional<std::int64_t>(mark->progress) : std::nullopt;
                R.lineage = mark->lineage;
            }
            // Operation numbers, not backend sequences: they survive `tradestate convert`.
            if (mark_same_lineage && meta.lineage && mark->snapshot_seq > snap_op && !loaded->recovered) {
                rep.recovered = true;
                rep.damage.push_back(loaded->source + " (sequence " + std::to_string(loaded->sequence) +
                                     ") holds operations up to " + std::to_string(snap_op) +
                                     ", but the newest durable snapshot (sequence " +
                                     std::to_string(mark->snapshot_sequence) + ") held operations up to " +
                                     std::to_string(mark->snapshot_seq) +
                                     " per the session mark: a newer copy was rolled back, deleted or damaged");
            }
        }

        // Roll forward.
        std::uint64_t last = snap_op;
        const bool lineage_known = meta.lineage != 0;
        if (jc) {
            if (jc->id == meta.journal_id && meta.journal_id != 0) {
                if (jc->base_seq > snap_op) {
                    lose(jwhere + " starts after operation " + std::to_string(jc->base_seq) +
                         ", but the copy that loads holds operations up to " + std::to_string(snap_op) +
                         " only: the records in between were dropped after newer snapshots that are now unusable");
                } else {
                    try {
                        auto res = replay_journal(st, *jc, snap_op, jwhere);
                        rep.replayed = res.applied;
                        last = res.last_seq;
                        R.journal_continuable = jc->intact() && jerror.empty();
                    } catch (const Error& e) {
                        rep.damage.push_back(e.what());
                        lose(std::string("a journal record cannot be applied: ") + e.what());
                    }
                }
                if (!jc->torn_tail.empty()) {
                    if (acked > jc->last_seq()) {
                        rep.damage.push_back(jc->torn_tail + ": it held acknowledged operation " +
                                             std::to_string(jc->last_seq() + 1));
                        R.journal_continuable = false;
                    } else {
                        rep.notes.push_back(jc->torn_tail + ": the process stopped in the middle of an append; that "
                                                            "operation was never acknowledged");
                    }
                }
            } else if (!lineage_known || meta.journal_id == 0) {
                if (!jc->records.empty() || jc->base_seq != snap_op)
                    rep.warnings.push_back(jwhere + " (journal " + detail::hex64(jc->id) +
                                           ") does not belong to the snapshot (which names " +
                                           (meta.journal_id ? detail::hex64(meta.journal_id) : std::string("no journal")) +
                                           "): not replayed; it is kept aside when the session continues");
            } else if (jc->last_seq() > snap_op) {
                lose(jwhere + " holds operations up to " + std::to_string(jc->last_seq()) +
                     " that cannot be applied to the copy that loads (it belongs to journal " +
                     detail::hex64(meta.journal_id) + ", the journal file to " + detail::hex64(jc->id) + ")");
            } else {
                rep.notes.push_back(jwhere + " is older than the snapshot and not needed");
            }
        }
        if (jc && (jc->id == meta.journal_id || lineage_known)) acked = std::max(acked, jc->last_seq());
        if (acked > last) {
            if (!jpresent && mark_same_lineage) lose("the journal " + jwhere + " is missing");
            else if (jc && !jc->intact()) lose(jwhere + " is damaged after operation " + std::to_string(jc->last_seq()));
            else if (jc && !jc->torn_tail.empty() && jc->id == meta.journal_id)
                lose(jwhere + " was cut inside the record of operation " + std::to_string(jc->last_seq() + 1));
            else if (jc && jc->id == meta.journal_id)
                lose(jwhere + " ends at operation " + std::to_string(jc->last_seq()) + ": it was cut short or rolled back");
            else if (loss.reasons.empty())
                lose("the journal does not reach the last acknowledged operation");
            if (!loss.first_op) {
                loss.first_op = last + 1;
                loss.last_op = acked;
                loss.from_progress = progress_of(st);
                loss.to_progress = acked_progress;
            }
        } else if (!loss.reasons.empty() && !loss.first_op) {
            loss.first_op = last + 1;
            loss.last_op = std::max(acked, last + 1);
            loss.from_progress = progress_of(st);
            loss.to_progress = acked_progress;
        }
        if (!loss.reasons.empty()) {
            rep.loss = loss;
            R.journal_continuable = false;
        }
        rep.last_op = last;
        R.next_op = std::max({last, acked, jc ? jc->last_seq() : 0});
        R.state = std::move(st);
        return R;
    }

    // ------------------------------------------------------------ writing

    [[nodiscard]] bool backend_journal() const { return p_->backend().has_journal(); }

    void require_started() const {
        if (!started_)
            throw Error(Errc::invalid_argument,
                        "session '" + o_.name + "' is not open: call resume() or start_fresh() first");
        if (closed_) throw Error(Errc::invalid_argument, "session '" + o_.name + "' was closed");
    }

    [[nodiscard]] SaveMeta envelope() const {
        SaveMeta m;
        m.lineage = lineage_;
        std::lock_guard lk(jmu_);
        m.journal_id = journal_ ? journal_->id() : 0;
        m.journal_seq = committed_;
        return m;
    }

    /// Remove temp files of this session's host-kept files whose writer is gone.
    void clean_stale_temps() {
        const auto jname = journal_path(o_).filename().string();
        const auto mname = detail::mark_path(o_.state_dir, o_.name).filename().string();
        std::size_t n = detail::remove_stale_temps(o_.state_dir, jname) + detail::remove_stale_temps(o_.state_dir, mname);
        if (n) log_->info("session '{}': removed {} temp file(s) left by an interrupted writer", o_.name, n);
    }

    void open_mark(std::uint64_t counter) {
        if (backend_journal()) return;
        std::lock_guard lk(mmu_);
        mark_ = std::make_unique<detail::MarkFile>(detail::mark_path(o_.state_dir, o_.name), counter);
    }

    /// Write the mark with the current acknowledged operation (and, when
    /// `snapshot_sequence` is given, the newest durable snapshot).
    void write_mark(bool durable, std::optional<std::uint64_t> snapshot_sequence = std::nullopt,
                    std::uint64_t snapshot_op = 0) {
        std::lock_guard lk(mmu_);
        if (!mark_) return;
        detail::SessionMark m = mark_->last();
        m.lineage = lineage_;
        {
            std::lock_guard jl(jmu_);
            m.journal_id = journal_ ? journal_->id() : 0;
        }
        m.acked_seq = committed_;
        if (const auto pr = progress_of(state_)) m.progress = *pr;
        if (snapshot_sequence) {
            m.snapshot_sequence = *snapshot_sequence;
            m.snapshot_seq = snapshot_op;
        }
        mark_->write(m, durable && o_.fsync);
    }

    /// Empty when everything a restart reads is still in place; else what moved.
    [[nodiscard]] std::string what_moved() {
        {
            std::lock_guard lk(jmu_);
            if (journal_ && !journal_->in_place()) return "the journal " + journal_->where() + " was deleted or replaced";
        }
        {
            std::lock_guard lk(mmu_);
            if (mark_ && !mark_->in_place()) return "the session mark " + mark_->path().string() + " was deleted or replaced";
        }
        if (lease_ && !lease_->valid()) return "the writer lease's lock file was deleted or replaced";
        if (!p_->backend().in_place(o_.name)) return "the newest saved copy of the session was deleted or replaced";
        return {};
    }

    /// Synchronous snapshot of state_ with the current journal; updates the
    /// bookkeeping and the mark. The caller has flushed the saver.
    std::uint64_t save_sync() {
        const SaveMeta env = envelope();
        const std::uint64_t seq = p_->save(state_, o_.name, &env);
        after_durable(seq, env.journal_id, env.journal_seq, changes_, true);
        return seq;
    }

    /// Start a new journal from a synchronous snapshot of everything
    /// (`why` non-empty: the old one failed or vanished, and is kept aside).
    /// `keep_journal`: only write the snapshot, the current journal stays.
    void restart_journal(const std::string& why, bool keep_journal) {
        if (saver_) saver_->flush();
        if (lease_ && !lease_->valid()) {
            lease_.reset();
            lease_ = p_->acquire_writer(o_.name); // Errc::locked when another process took over
        }
        if (keep_journal) {
            save_sync();
            return;
        }
        const std::uint64_t jid = o_.journal ? detail::random_id() : 0;
        SaveMeta env;
        env.lineage = lineage_;
        env.journal_id = jid;
        env.journal_seq = committed_;
        const std::uint64_t seq = p_->save(state_, o_.name, &env);
        {
            std::lock_guard lk(jmu_);
            journal_.reset();
            journal_problem_.clear();
            if (!backend_journal()) {
                const auto jp = journal_path(o_);
                if (detail::path_present(jp)) {
                    const auto aside = detail::move_aside(jp, ".replaced");
                    if (!aside.empty())
                        log_->warn("session '{}': the previous journal {} is kept as {}{}", o_.name, jp.string(),
                                   aside.string(), why.empty() ? "" : " (" + why + ")");
                }
            }
            if (o_.journal) {
                if (backend_journal())
                    journal_ = BackendJournal::create(p_->backend(), o_.name, o_.journal_fsync, committed_, jid);
                else journal_ = FileJournal::create(journal_path(o_), o_.journal_fsync, committed_, jid);
            }
        }
        {
            std::lock_guard lk(mmu_);
            if (mark_ && !mark_->in_place()) mark_->reopen();
        }
        {
            std::lock_guard lk(bmu_);
            durable_.clear();
        }
        after_durable(seq, jid, committed_, changes_, true);
        if (!why.empty())
            log_->warn("session '{}': a new journal starts at operation {} (snapshot sequence {})", o_.name, committed_, seq);
    }

    /// Bookkeeping once a snapshot holding operations up to `op` is durable
    /// (loop thread for synchronous saves, writer thread for checkpoints).
    void after_durable(std::uint64_t sequence, std::uint64_t journal_id, std::uint64_t op, std::uint64_t changes,
                       bool sync_call) {
        std::optional<std::uint64_t> compact_through;
        {
            std::lock_guard lk(bmu_);
            if (durable_.empty() || durable_.back() != op) durable_.push_back(op);
            while (durable_.size() > o_.fallback_depth) durable_.pop_front();
            if (durable_.size() == o_.fallback_depth) compact_through = durable_.front();
            last_sequence_ = sequence;
            durable_op_ = op;
            durable_changes_ = std::max(durable_changes_, changes);
        }
        if (compact_through) {
            std::lock_guard lk(jmu_);
            if (journal_ && journal_->id() == journal_id && journal_problem_.empty()) {
                try {
                    journal_->compact(*compact_through);
                } catch (const std::exception& e) {
                    log_->warn("session '{}': could not compact the journal through operation {}: {}", o_.name,
                               *compact_through, e.what());
                }
            }
        }
        try {
            std::lock_guard lk(mmu_);
            if (mark_) {
                detail::SessionMark m = mark_->last();
                m.lineage = lineage_;
                m.journal_id = journal_id;
                if (sync_call) {
                    m.acked_seq = committed_;
                    if (const auto pr = progress_of(state_)) m.progress = *pr;
                }
                m.snapshot_sequence = sequence;
                m.snapshot_seq = op;
                mark_->write(m, o_.fsync);
            }
        } catch (const std::exception& e) {
            if (sync_call) throw;
            log_->warn("session '{}': could not update the session mark: {}", o_.name, e.what());
        }
    }

    void make_saver() {
        saver_ = std::make_unique<AsyncSaver<State>>(
            p_, o_.name,
            [this](const SaveFailure& f) {
                log_->error("session '{}': a background checkpoint failed: {} — {}; the next checkpoint retries", o_.name,
                            f.message, o_.journal ? "the journal still holds every operation" : "nothing since the last snapshot is durable");
                if (o_.on_checkpoint_failed) o_.on_checkpoint_failed(f);
            },
            [this](const SavedSnapshot& s) {
                std::uint64_t changes = 0;
                {
                    std::lock_guard lk(bmu_);
                    auto it = changes_at_ticket_.find(s.ticket);
                    if (it != changes_at_ticket_.end()) changes = it->second;
                    changes_at_ticket_.erase(changes_at_ticket_.begin(), changes_at_ticket_.upper_bound(s.ticket));
                }
                if (s.envelope) after_durable(s.sequence, s.envelope->journal_id, s.envelope->journal_seq, changes, false);
                if (o_.on_checkpoint) o_.on_checkpoint(s);
            });
    }

    /// Rename everything of the session to `<name>-backup-<UTC time>`.
    std::string move_to_backup() {
        const std::string backup = o_.name.substr(0, 40) + "-backup-" + detail::utc_stamp("%Y%m%d-%H%M%S");
        validate_session_name(backup);
        bool renamed = false;
        try {
            p_->backend().rename(o_.name, backup); // everything, damaged files included
            renamed = true;
        } catch (const Error& e) {
            if (e.code() != Errc::unsupported) throw;
        }
        if (!renamed) {
            // The backend cannot rename: keep what a resume would give as the backup.
            auto ins = inspect(*p_, o_);
            if (ins.state) {
                auto l = p_->acquire_writer(backup);
                SaveMeta env;
                env.lineage = detail::random_id();
                p_->save(*ins.state, backup, &env);
            }
            log_->warn("session '{}': backend '{}' cannot rename sessions; the state a resume would give is kept as "
                       "session '{}' (its older copies are not)",
                       o_.name, p_->backend().name(), backup);
        }
        if (!backend_journal()) {
            for (const auto& [from, to] :
                 {std::pair{journal_path(o_), o_.state_dir / (backup + ".journal")},
                  std::pair{detail::mark_path(o_.state_dir, o_.name), detail::mark_path(o_.state_dir, backup)}})
                if (detail::path_present(from) && ::rename(from.c_str(), to.c_str()) != 0)
                    detail::throw_io("move " + from.string() + " to", to, errno);
            detail::fsync_directory(o_.state_dir);
        }
        // The lock file may have moved with the session's directory: take the lease anew.
        lease_.reset();
        lease_ = p_->acquire_writer(o_.name);
        log_->info("session '{}': the previous session is kept as session '{}'", o_.name, backup);
        return backup;
    }

    std::shared_ptr<Persister> p_;
    SessionOptions o_;
    std::shared_ptr<spdlog::logger> log_;
    std::unique_ptr<WriterLease> lease_;
    State state_{};
    bool started_ = false;
    bool closed_ = false;
    std::uint64_t lineage_ = 0;
    std::vector<boost::json::object> pending_;
    std::uint64_t committed_ = 0;          ///< the last acknowledged operation
    std::uint64_t changes_ = 0;            ///< apply() calls since the start
    std::uint64_t submitted_changes_ = 0;  ///< changes_ at the last checkpoint handed over

    mutable std::mutex jmu_;               ///< journal_, journal_problem_ (the writer thread compacts)
    std::unique_ptr<JournalWriter> journal_;
    std::string journal_problem_;

    mutable std::mutex mmu_;               ///< mark_
    std::unique_ptr<detail::MarkFile> mark_;

    mutable std::mutex bmu_;               ///< durable bookkeeping
    std::deque<std::uint64_t> durable_;    ///< operations held by the newest durable snapshots (newest last)
    std::uint64_t last_sequence_ = 0;
    std::uint64_t durable_op_ = 0;
    std::uint64_t durable_changes_ = 0;
    std::map<std::uint64_t, std::uint64_t> changes_at_ticket_; ///< checkpoint ticket -> changes_ it holds

    std::unique_ptr<AsyncSaver<State>> saver_; // last: its thread stops first
};

} // namespace tradestate
