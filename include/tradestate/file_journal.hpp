// tradestate — FileJournal: a session's journal as a file beside its state,
// `<state_dir>/<session>.journal`, in the layout of journal_format.hpp.
//
// Appends go to the end of the file with one write per batch and, with
// `always`, one fdatasync before append() returns. Compaction replaces the
// file atomically (temp file, fsync, rename, directory fsync). After a write
// or fsync error the file takes no more records: the page cache cannot be
// trusted after a failed fsync, so the session starts a new journal.
#pragma once

#include <tradestate/detail/atomic_file.hpp>
#include <tradestate/journal_format.hpp>
#include <tradestate/journal_writer.hpp>

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

namespace tradestate {

class FileJournal final : public JournalWriter {
public:
    struct Stats {
        std::uint64_t appends = 0;
        std::uint64_t fsyncs = 0;
    };

    /// Start a new, empty journal `id` (0 picks a random one) at `path`
    /// after record `base_seq` (replaces the file atomically).
    [[nodiscard]] static std::unique_ptr<FileJournal> create(const std::filesystem::path& path, JournalFsync policy,
                                                             std::uint64_t base_seq = 0, std::uint64_t id = 0) {
        if (id == 0) id = detail::random_id();
        detail::write_file_atomic(path, detail::journal_header(id, base_seq), true);
        return std::unique_ptr<FileJournal>(new FileJournal(path, policy, id, base_seq));
    }

    /// Continue the journal at `path`; a torn tail is cut off first.
    [[nodiscard]] static std::unique_ptr<FileJournal> open(const std::filesystem::path& path, JournalFsync policy,
                                                           std::uint64_t max_bytes = 1ull << 30) {
        auto c = read_journal(path, max_bytes);
        if (!c.intact()) throw Error(Errc::corrupt, c.corruption + "; the journal cannot be continued");
        if (!c.torn_tail.empty()) {
            detail::unique_fd fd(::open(path.c_str(), O_WRONLY | O_CLOEXEC));
            if (!fd) detail::throw_io("open journal", path, errno);
            if (::ftruncate(fd.get(), static_cast<off_t>(c.valid_bytes)) != 0 || ::fsync(fd.get()) != 0)
                detail::throw_io("cut the torn tail of journal", path, errno);
        }
        return std::unique_ptr<FileJournal>(new FileJournal(path, policy, c.id, c.last_seq()));
    }

    ~FileJournal() override {
        {
            std::lock_guard lk(m_);
            stop_ = true;
        }
        cv_.notify_all();
        if (flusher_.joinable()) flusher_.join();
        if (fd_ && dirty_ && !failed_ && policy_ != JournalFsync::never) (void)::fdatasync(fd_.get());
    }
    FileJournal(const FileJournal&) = delete;
    FileJournal& operator=(const FileJournal&) = delete;

    [[nodiscard]] std::uint64_t id() const noexcept override { return id_; }
    [[nodiscard]] const std::filesystem::path& path() const noexcept { return path_; }
    [[nodiscard]] std::string where() const override { return path_.string(); }
    [[nodiscard]] JournalFsync policy() const noexcept { return policy_; }
    [[nodiscard]] std::uint64_t last_seq() const override {
        std::lock_guard lk(m_);
        return last_seq_;
    }
    [[nodiscard]] Stats stats() const {
        std::lock_guard lk(m_);
        return stats_;
    }

    using JournalWriter::append;

    /// Append several operations with one write (and one fdatasync, with
    /// `always`). Returns the last sequence number.
    std::uint64_t append(const std::vector<boost::json::object>& ops) override {
        std::lock_guard lk(m_);
        if (failed_)
            throw Error(Errc::io, path_.string() + ": the journal had a write or fsync error earlier (" + failure_ +
                                      "); it takes no more records");
        std::string buf;
        std::uint64_t seq = last_seq_;
        for (const auto& op : ops) detail::append_journal_record(buf, ++seq, detail::journal_payload(op, path_.string()));
        if (buf.empty()) return last_seq_;
        const off_t before = ::lseek(fd_.get(), 0, SEEK_END);
        if (int e = detail::write_all(fd_.get(), buf.data(), buf.size())) {
            // Take a partial record back out so that nothing follows garbage.
            if (before >= 0) (void)::ftruncate(fd_.get(), before);
            fail("write: " + detail::errno_text(e));
            detail::throw_io("append to journal", path_, e);
        }
        if (policy_ == JournalFsync::always) {
            if (::fdatasync(fd_.get()) != 0) {
                const int e = errno;
                fail("fsync: " + detail::errno_text(e)); // never retried on the same file
                detail::throw_io("fsync journal", path_, e);
            }
            ++stats_.fsyncs;
        } else {
            dirty_ = true;
        }
        last_seq_ = seq;
        stats_.appends += ops.size();
        return seq;
    }

    void sync() override {
        std::lock_guard lk(m_);
        sync_locked();
    }

    /// Replace the file (atomically) by one holding only the records after
    /// `through_seq`; records up to it are in a durable snapshot.
    void compact(std::uint64_t through_seq) override {
        std::lock_guard lk(m_);
        if (through_seq > last_seq_)
            throw Error(Errc::invalid_argument, path_.string() + ": cannot compact through record " +
                                                    std::to_string(through_seq) + ", the last one is " +
                                                    std::to_string(last_seq_));
        if (failed_) throw Error(Errc::io, path_.string() + ": the journal had an error (" + failure_ + "); not compacting");
        const std::string bytes = detail::read_file(path_);
        const auto c = decode_journal(bytes, path_.string());
        if (!c.intact()) throw Error(Errc::corrupt, c.corruption + "; not compacting");
        if (through_seq <= c.base_seq) return;
        std::string out = detail::journal_header(id_, through_seq);
        for (const auto& r : c.records)
            if (r.seq > through_seq) {
                out.append(bytes, static_cast<std::size_t>(r.offset), static_cast<std::size_t>(c.valid_bytes - r.offset));
                break;
            }
        detail::write_file_atomic(path_, out, true);
        fd_ = open_append(path_);
        dirty_ = false;
    }

    /// The file at path() is still the one this writer appends to.
    [[nodiscard]] bool in_place() const override {
        std::lock_guard lk(m_);
        return detail::same_file(fd_.get(), path_);
    }

private:
    FileJournal(std::filesystem::path path, JournalFsync policy, std::uint64_t id, std::uint64_t last)
        : path_(std::move(path)), policy_(policy), id_(id), last_seq_(last), fd_(open_append(path_)) {
        if (policy_ == JournalFsync::every_second) flusher_ = std::thread([this] { flush_loop(); });
    }

    static detail::unique_fd open_append(const std::filesystem::path& p) {
        detail::unique_fd fd(::open(p.c_str(), O_WRONLY | O_APPEND | O_CLOEXEC | O_NONBLOCK));
        if (!fd) detail::throw_io("open journal", p, errno);
        detail::require_regular(fd.get(), p);
        return fd;
    }

    void fail(std::string why) {
        failed_ = true;
        failure_ = std::move(why);
    }

    void sync_locked() {
        if (!dirty_ || failed_) return;
        if (::fdatasync(fd_.get()) != 0) {
            const int e = errno;
            fail("fsync: " + detail::errno_text(e));
            detail::throw_io("fsync journal", path_, e);
        }
        dirty_ = false;
        ++stats_.fsyncs;
    }

    void flush_loop() {
        std::unique_lock lk(m_);
        while (!stop_) {
            cv_.wait_for(lk, std::chrono::seconds(1), [this] { return stop_; });
            if (stop_) break;
            try {
                sync_locked();
            } catch (const Error&) {
                // Recorded in failed_: the next append reports it.
            }
        }
    }

    std::filesystem::path path_;
    JournalFsync policy_;
    std::uint64_t id_;
    mutable std::mutex m_;
    std::condition_variable cv_;
    std::uint64_t last_seq_;
    detail::unique_fd fd_;
    bool dirty_ = false;
    bool failed_ = false;
    bool stop_ = false;
    std::string failure_;
    Stats stats_;
    std::thread flusher_;
};

} // namespace tradestate
