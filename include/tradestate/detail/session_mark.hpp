// tradestate — the session mark: a small file beside the journal that
// remembers how far a session got, so that losing the journal (deleted, cut
// short, rolled back) or the newest snapshot is noticed and named instead
// of silently resuming from further back. docs/session.md has the rules.
//
// `<state_dir>/.<session>.mark`, 1024 bytes: two 512-byte slots (one disk
// sector each), written alternately with pwrite, so a torn write can only
// damage the slot being written. Each slot (all integers little-endian):
//
//   0  "TSMARK01"       8  counter u64 (which write; the higher valid one wins)
//   16 lineage u64      24 journal_id u64     32 acked_seq u64
//   40 progress i64     48 snapshot_sequence u64   56 snapshot_seq u64
//   64 xxh3 of bytes 0..63 u64
//
// After every acknowledged journal append the writer updates acked_seq
// (pwrite, no flush: a process crash cannot lose it; after a power loss it
// may lag the journal, which only narrows what the check can see). After
// every durable snapshot it updates the snapshot fields and flushes.
#pragma once

#include <tradestate/detail/atomic_file.hpp>
#include <tradestate/detail/checksum.hpp>
#include <tradestate/detail/endian.hpp>

#include <cstdint>
#include <cstring>
#include <filesystem>
#include <optional>
#include <string>
#include <utility>

#include <cerrno>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

namespace tradestate::detail {

/// What the mark says about a session.
struct SessionMark {
    std::uint64_t lineage = 0;
    std::uint64_t journal_id = 0;        ///< the journal being appended to
    std::uint64_t acked_seq = 0;         ///< the last operation acknowledged to the caller
    std::int64_t progress = -1;          ///< the state's progress counter at acked_seq (-1: unknown)
    std::uint64_t snapshot_sequence = 0; ///< backend sequence of the newest durable snapshot
    std::uint64_t snapshot_seq = 0;      ///< the last operation that snapshot contains
    bool operator==(const SessionMark&) const = default;
};

inline constexpr char mark_magic[8] = {'T', 'S', 'M', 'A', 'R', 'K', '0', '1'};
inline constexpr std::size_t mark_slot_size = 512;
inline constexpr std::size_t mark_file_size = 2 * mark_slot_size;
inline constexpr std::size_t mark_payload = 72;

[[nodiscard]] inline std::filesystem::path mark_path(const std::filesystem::path& state_dir, const std::string& session) {
    return state_dir / ("." + session + ".mark");
}

/// A mark read back.
struct MarkRead {
    std::optional<SessionMark> mark; ///< nullopt: no file, or no valid slot
    std::uint64_t counter = 0;
    std::string problem;             ///< non-empty: the file exists but is damaged (message)
};

[[nodiscard]] inline std::optional<std::pair<std::uint64_t, SessionMark>> decode_mark_slot(const char* p) {
    if (std::memcmp(p, mark_magic, 8) != 0) return std::nullopt;
    if (get_u64(p + 64) != xxh3(p, 64)) return std::nullopt;
    SessionMark m;
    m.lineage = get_u64(p + 16);
    m.journal_id = get_u64(p + 24);
    m.acked_seq = get_u64(p + 32);
    m.progress = static_cast<std::int64_t>(get_u64(p + 40));
    m.snapshot_sequence = get_u64(p + 48);
    m.snapshot_seq = get_u64(p + 56);
    return std::pair{get_u64(p + 8), m};
}

/// Read the mark at `path` (never blocks; a FIFO or the like is a problem, not a hang).
[[nodiscard]] inline MarkRead read_mark(const std::filesystem::path& path) {
    MarkRead out;
    std::string bytes;
    try {
        bytes = read_file(path, 1 << 20);
    } catch (const Error& e) {
        if (e.code() != Errc::not_found) out.problem = e.what();
        return out;
    }
    std::optional<std::pair<std::uint64_t, SessionMark>> best;
    for (std::size_t slot = 0; slot < 2; ++slot) {
        if (bytes.size() < slot * mark_slot_size + mark_payload) continue;
        auto s = decode_mark_slot(bytes.data() + slot * mark_slot_size);
        if (s && (!best || s->first > best->first)) best = s;
    }
    if (!best) {
        out.problem = path.string() + ": the session mark is damaged (no valid slot in " + std::to_string(bytes.size()) +
                      " bytes), so lost operations cannot be detected from it";
        return out;
    }
    out.counter = best->first;
    out.mark = best->second;
    return out;
}

/// The writing side: one per session writer, under its lease. Not thread-safe.
class MarkFile {
public:
    /// Open (or create) the mark at `path`, continuing after `counter`.
    MarkFile(std::filesystem::path path, std::uint64_t counter) : path_(std::move(path)), counter_(counter) { reopen(); }

    /// Write `m` into the next slot; `durable`: fdatasync before returning.
    void write(const SessionMark& m, bool durable) {
        char b[mark_payload] = {};
        ++counter_;
        std::memcpy(b, mark_magic, 8);
        store_le(b + 8, counter_);
        store_le(b + 16, m.lineage);
        store_le(b + 24, m.journal_id);
        store_le(b + 32, m.acked_seq);
        store_le(b + 40, static_cast<std::uint64_t>(m.progress));
        store_le(b + 48, m.snapshot_sequence);
        store_le(b + 56, m.snapshot_seq);
        store_le(b + 64, xxh3(b, 64));
        const off_t at = static_cast<off_t>((counter_ % 2) * mark_slot_size);
        if (::pwrite(fd_.get(), b, sizeof b, at) != static_cast<ssize_t>(sizeof b))
            throw_io("write the session mark", path_, errno ? errno : EIO);
        if (durable && ::fdatasync(fd_.get()) != 0) throw_io("flush the session mark", path_, errno);
        last_ = m;
    }

    [[nodiscard]] const SessionMark& last() const noexcept { return last_; }
    [[nodiscard]] const std::filesystem::path& path() const noexcept { return path_; }
    /// The file at path() is still the one being written.
    [[nodiscard]] bool in_place() const noexcept { return same_file(fd_.get(), path_); }

    /// Open the file at path() again (after it was deleted or replaced).
    void reopen() {
        unique_fd fd(::open(path_.c_str(), O_RDWR | O_CREAT | O_CLOEXEC | O_NONBLOCK, 0644));
        if (!fd) throw_io("open the session mark", path_, errno);
        require_regular(fd.get(), path_);
        struct stat st {};
        if (::fstat(fd.get(), &st) == 0 && static_cast<std::size_t>(st.st_size) < mark_file_size) {
            // New (or cut short): give it its size and make its name durable.
            // Allocated, not sparse: a later pwrite never needs a new block (no ENOSPC mid-run).
            int e = ::posix_fallocate(fd.get(), 0, static_cast<off_t>(mark_file_size));
            if (e == EOPNOTSUPP || e == ENOSYS) e = ::ftruncate(fd.get(), static_cast<off_t>(mark_file_size)) ? errno : 0;
            if (e != 0) throw_io("size the session mark", path_, e);
            if (::fsync(fd.get()) != 0) throw_io("flush the session mark", path_, errno);
            fsync_directory(path_.has_parent_path() ? path_.parent_path() : std::filesystem::path("."));
        }
        fd_ = std::move(fd);
    }

private:
    std::filesystem::path path_;
    std::uint64_t counter_ = 0;
    unique_fd fd_;
    SessionMark last_;
};

} // namespace tradestate::detail
