// tradestate — AsyncSaver<State>: auto-save without stalling the loop.
//
// The loop hands an immutable snapshot (a `std::shared_ptr<const State>`,
// a copy of the state, or an already built `Document`) to `submit()` and
// goes on; one background thread converts and writes it through the
// StatePersister. Guarantees:
//   * ordered: snapshots are written in the order they were submitted, by
//     one thread; a newer snapshot never lands before an older one;
//   * bounded: at most one snapshot waits while a save is in flight; a
//     newer submit replaces the waiting one ("coalesced") — a slow disk
//     costs intermediate versions, never memory or loop time;
//   * flushed: `flush()` (and the destructor) returns once everything
//     submitted before it is written or has failed, so a save in flight at
//     Ctrl+C completes before the process exits;
//   * loud failures: a failed save is passed to the failure callback (on the
//     writer thread) and kept for `take_failure()` (on the loop thread);
//     nothing is retried behind the loop's back — the next submit is the
//     retry, with newer data.
// Written snapshots are destroyed on the writer thread and replaced ones on
// a small reaper thread, so freeing a large state never stalls the loop and
// replaced snapshots never pile up while a slow save is in flight.
//
// While saves may be in flight the persister belongs to the writer thread:
// call `flush()` before using the same persister from another thread
// (e.g. the final synchronous save at exit).
#pragma once

#include <tradestate/backend.hpp>
#include <tradestate/error.hpp>
#include <tradestate/persister.hpp>

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <exception>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <utility>
#include <vector>

namespace tradestate {

/// One failed background save.
struct SaveFailure {
    std::uint64_t ticket = 0;   ///< the submit() that failed
    std::int64_t tag = 0;       ///< the caller's tag given to submit() (e.g. the loop iteration)
    std::string session;
    std::string message;        ///< the error's full sentence
};

/// Counters of an AsyncSaver (a consistent copy).
struct AsyncSaverStats {
    std::uint64_t submitted = 0;  ///< snapshots handed over
    std::uint64_t written = 0;    ///< saves that succeeded
    std::uint64_t failed = 0;     ///< saves that threw
    std::uint64_t coalesced = 0;  ///< snapshots replaced by a newer one before being written
    std::uint64_t last_written_ticket = 0;
    std::chrono::nanoseconds last_save_time{0}; ///< duration of the newest finished save
};

/// One snapshot written by the background thread.
struct SavedSnapshot {
    std::uint64_t ticket = 0;           ///< the submit() that was written
    std::int64_t tag = 0;               ///< the caller's tag given to submit()
    std::uint64_t sequence = 0;         ///< the sequence the backend gave the save
    std::optional<SaveMeta> envelope;   ///< the envelope given to submit(), if any
    std::chrono::nanoseconds took{0};   ///< how long the save took
};

template <class State> class AsyncSaver {
public:
    using Persister = StatePersister<State>;
    using FailureCallback = std::function<void(const SaveFailure&)>;
    using SuccessCallback = std::function<void(const SavedSnapshot&)>;

    /// Save into `session` through `persister` on a background thread.
    /// `on_failure` / `on_success` run on the writer thread and must not throw.
    explicit AsyncSaver(std::shared_ptr<Persister> persister, std::string session = default_session,
                        FailureCallback on_failure = {}, SuccessCallback on_success = {})
        : persister_(std::move(persister)), session_(std::move(session)), on_failure_(std::move(on_failure)),
          on_success_(std::move(on_success)) {
        if (!persister_) throw Error(Errc::invalid_argument, "AsyncSaver needs a persister");
        validate_session_name(session_);
        reaper_ = std::thread([this] { reap(); });
        writer_ = std::thread([this] { run(); });
    }

    AsyncSaver(const AsyncSaver&) = delete;
    AsyncSaver& operator=(const AsyncSaver&) = delete;

    /// Writes everything submitted, then stops the writer thread.
    ~AsyncSaver() {
        {
            std::lock_guard lk(mu_);
            stopping_ = true;
        }
        work_cv_.notify_one();
        reap_cv_.notify_one();
        if (writer_.joinable()) writer_.join();
        if (reaper_.joinable()) reaper_.join();
    }

    /// Hand over a snapshot; returns its ticket (1, 2, ...). Never blocks on
    /// I/O. `tag` comes back in the callbacks and in SaveFailure.
    /// `envelope` (lineage, journal mark) is stored with the snapshot (Session<State> passes it).
    std::uint64_t submit(std::shared_ptr<const State> snapshot, std::int64_t tag = 0,
                         std::optional<SaveMeta> envelope = std::nullopt) {
        if (!snapshot) throw Error(Errc::invalid_argument, "AsyncSaver::submit: null snapshot");
        Item it;
        it.state = std::move(snapshot);
        it.tag = tag;
        it.envelope = std::move(envelope);
        return enqueue(std::move(it));
    }
    /// Copy `s` (the only work done on the caller's thread) and hand it over.
    std::uint64_t submit_copy(const State& s, std::int64_t tag = 0, std::optional<SaveMeta> envelope = std::nullopt) {
        return submit(std::make_shared<const State>(s), tag, std::move(envelope));
    }
    /// Hand over an already built document.
    std::uint64_t submit_document(std::shared_ptr<const Document> doc, std::int64_t tag = 0,
                                  std::optional<SaveMeta> envelope = std::nullopt) {
        if (!doc) throw Error(Errc::invalid_argument, "AsyncSaver::submit_document: null document");
        Item it;
        it.doc = std::move(doc);
        it.tag = tag;
        it.envelope = std::move(envelope);
        return enqueue(std::move(it));
    }

    /// Wait until every snapshot submitted before this call was written or
    /// failed. Returns true if the newest of them was written successfully.
    bool flush() {
        std::unique_lock lk(mu_);
        const std::uint64_t target = next_ticket_ - 1;
        done_cv_.wait(lk, [&] { return finished_ticket_ >= target; });
        return target == 0 || last_ok_ticket_ == target;
    }

    /// Like flush(), giving up after `timeout`; false on timeout or failure.
    template <class Rep, class Period> bool flush_for(std::chrono::duration<Rep, Period> timeout) {
        std::unique_lock lk(mu_);
        const std::uint64_t target = next_ticket_ - 1;
        if (!done_cv_.wait_for(lk, timeout, [&] { return finished_ticket_ >= target; })) return false;
        return target == 0 || last_ok_ticket_ == target;
    }

    /// True while a snapshot is being written or waits to be.
    [[nodiscard]] bool busy() const {
        std::lock_guard lk(mu_);
        return pending_.has_value() || in_flight_;
    }

    /// The oldest failure not yet taken (and forget it), for the loop to report.
    [[nodiscard]] std::optional<SaveFailure> take_failure() {
        std::lock_guard lk(mu_);
        if (failures_.empty()) return std::nullopt;
        SaveFailure f = std::move(failures_.front());
        failures_.erase(failures_.begin());
        return f;
    }

    /// The newest failure, kept until a later save succeeds.
    [[nodiscard]] std::optional<SaveFailure> last_error() const {
        std::lock_guard lk(mu_);
        return last_error_;
    }

    [[nodiscard]] AsyncSaverStats stats() const {
        std::lock_guard lk(mu_);
        return stats_;
    }

    [[nodiscard]] const std::string& session() const noexcept { return session_; }
    [[nodiscard]] Persister& persister() noexcept { return *persister_; }

private:
    struct Item {
        std::uint64_t ticket = 0;
        std::int64_t tag = 0;
        std::shared_ptr<const State> state;
        std::shared_ptr<const Document> doc;
        std::optional<SaveMeta> envelope;
    };

    static constexpr std::size_t max_kept_failures = 16;

    std::uint64_t enqueue(Item it) {
        std::unique_lock lk(mu_);
        if (stopping_) throw Error(Errc::invalid_argument, "AsyncSaver::submit after shutdown began");
        it.ticket = next_ticket_++;
        ++stats_.submitted;
        if (pending_) {
            // Replaced before it was written: its ticket counts as finished
            // when the newer one finishes; the writer frees it.
            ++stats_.coalesced;
            graveyard_.push_back(std::move(*pending_));
        }
        const bool wake_reaper = !graveyard_.empty();
        pending_ = std::move(it);
        const std::uint64_t t = pending_->ticket;
        lk.unlock();
        work_cv_.notify_one();
        if (wake_reaper) reap_cv_.notify_one();
        return t;
    }

    void run() {
        std::unique_lock lk(mu_);
        for (;;) {
            work_cv_.wait(lk, [&] { return pending_.has_value() || stopping_; });
            std::optional<Item> item;
            if (pending_) {
                item = std::move(pending_);
                pending_.reset();
                in_flight_ = true;
            }
            lk.unlock();
            if (item) write(*item);
            item.reset(); // free the written snapshot before taking the lock
            lk.lock();
            if (!pending_ && stopping_) break;
        }
    }

    void reap() {
        std::unique_lock lk(mu_);
        for (;;) {
            reap_cv_.wait(lk, [&] { return !graveyard_.empty() || stopping_; });
            std::vector<Item> dead;
            dead.swap(graveyard_);
            lk.unlock();
            dead.clear(); // free replaced snapshots here, not on the loop thread
            lk.lock();
            if (stopping_ && graveyard_.empty()) break;
        }
    }

    void write(const Item& it) {
        std::optional<SaveFailure> failure;
        std::uint64_t sequence = 0;
        const auto t0 = std::chrono::steady_clock::now();
        const SaveMeta* env = it.envelope ? &*it.envelope : nullptr;
        try {
            if (it.state) sequence = persister_->save(*it.state, session_, env);
            else sequence = persister_->save_document(*it.doc, session_, env);
        } catch (const std::exception& e) {
            failure = SaveFailure{it.ticket, it.tag, session_, e.what()};
        } catch (...) {
            failure = SaveFailure{it.ticket, it.tag, session_, "unknown exception while saving"};
        }
        const auto took = std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now() - t0);
        if (failure && on_failure_) on_failure_(*failure);
        if (!failure && on_success_) on_success_(SavedSnapshot{it.ticket, it.tag, sequence, it.envelope, took});
        {
            std::lock_guard lk(mu_);
            in_flight_ = false;
            stats_.last_save_time = took;
            if (failure) {
                ++stats_.failed;
                last_error_ = *failure;
                if (failures_.size() == max_kept_failures) failures_.erase(failures_.begin());
                failures_.push_back(std::move(*failure));
            } else {
                ++stats_.written;
                stats_.last_written_ticket = it.ticket;
                last_ok_ticket_ = it.ticket;
                last_error_.reset();
            }
            finished_ticket_ = it.ticket;
        }
        done_cv_.notify_all();
    }

    std::shared_ptr<Persister> persister_;
    std::string session_;
    FailureCallback on_failure_;
    SuccessCallback on_success_;

    mutable std::mutex mu_;
    std::condition_variable work_cv_;
    std::condition_variable done_cv_;
    std::condition_variable reap_cv_;
    std::optional<Item> pending_;
    std::vector<Item> graveyard_;
    bool in_flight_ = false;
    bool stopping_ = false;
    std::uint64_t next_ticket_ = 1;
    std::uint64_t finished_ticket_ = 0;
    std::uint64_t last_ok_ticket_ = 0;
    std::optional<SaveFailure> last_error_;
    std::vector<SaveFailure> failures_;
    AsyncSaverStats stats_;

    std::thread reaper_; // last: started after everything above exists
    std::thread writer_;
};

} // namespace tradestate
