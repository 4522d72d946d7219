// tradestate — the journal's record format: how operations are framed and
// checked, whether they sit in a file or in a backend's store.
//
// File layout (all integers little-endian):
//
//   header  (32 bytes): "TSJRNL01" | id u64 | base_seq u64 | xxh3(first 24 bytes) u64
//   record  (24 + n) : magic u32 "TSJ1" | n u32 | seq u64 | xxh3(seq bytes ‖ payload) u64 | payload (n bytes)
//
// The payload is one compact JSON object with an "op" member (what the
// operation means is up to the state type; see replay.hpp). Sequence numbers
// start at base_seq + 1 and grow by one, and keep counting across the
// journals of one session, so an operation's number never changes.
//
// Decoding reports a torn or corrupt LAST record as `torn_tail` (a crash in
// the middle of an append) and ignores it; whether that record had been
// acknowledged is for the caller to say, from the session's mark (session.hpp).
// A bad record followed by valid data, or a sequence gap, stops decoding
// there: the intact records before it are returned and `corruption` names
// the file and byte offset, so a recovery can still roll forward through
// them. A bad header is an Error (nothing in the file can be trusted).
#pragma once

#include <tradestate/backend.hpp>
#include <tradestate/detail/atomic_file.hpp>
#include <tradestate/detail/checksum.hpp>
#include <tradestate/detail/endian.hpp>
#include <tradestate/detail/json.hpp>
#include <tradestate/error.hpp>

#include <boost/json/object.hpp>
#include <boost/json/value.hpp>

#include <chrono>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <optional>
#include <random>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace tradestate {

/// When appended records reach stable storage (like Redis's appendfsync).
enum class JournalFsync {
    always,       ///< fdatasync before an append returns: an acknowledged operation survives power loss
    every_second, ///< a background thread flushes once a second: up to ~1 s lost on power loss
    never,        ///< left to the OS: survives a process crash (kill -9), not a power loss
};

[[nodiscard]] inline const char* to_string(JournalFsync f) noexcept {
    switch (f) {
    case JournalFsync::always: return "always";
    case JournalFsync::every_second: return "every_second";
    case JournalFsync::never: return "never";
    }
    return "always";
}

/// "always" | "every_second" | "never"; throws Errc::invalid_argument otherwise.
[[nodiscard]] inline JournalFsync parse_journal_fsync(std::string_view s) {
    if (s == "always") return JournalFsync::always;
    if (s == "every_second") return JournalFsync::every_second;
    if (s == "never") return JournalFsync::never;
    throw Error(Errc::invalid_argument,
                "journal_fsync must be \"always\", \"every_second\" or \"never\", found \"" + std::string(s) + "\"");
}

namespace detail {

inline constexpr char journal_magic[8] = {'T', 'S', 'J', 'R', 'N', 'L', '0', '1'};
inline constexpr std::uint32_t journal_record_magic = 0x314A5354u; // "TSJ1" little-endian
inline constexpr std::size_t journal_header_size = 32;
inline constexpr std::size_t journal_record_header_size = 24;
inline constexpr std::uint32_t journal_max_payload = 16u << 20;

[[nodiscard]] inline std::string journal_header(std::uint64_t id, std::uint64_t base_seq) {
    std::string h(journal_magic, sizeof journal_magic);
    put_u64(h, id);
    put_u64(h, base_seq);
    put_u64(h, xxh3(h));
    return h;
}

/// XXH3 of the sequence number (8 bytes, little-endian) followed by the payload.
[[nodiscard]] inline std::uint64_t record_checksum(std::uint64_t seq, std::string_view payload) noexcept {
    char s[8];
    store_le(s, seq);
    Xxh3Stream h;
    h.update(std::string_view(s, 8));
    h.update(payload);
    return h.digest();
}

inline void append_journal_record(std::string& out, std::uint64_t seq, std::string_view payload) {
    put_u32(out, journal_record_magic);
    put_u32(out, static_cast<std::uint32_t>(payload.size()));
    put_u64(out, seq);
    put_u64(out, record_checksum(seq, payload));
    out.append(payload);
}

[[nodiscard]] inline std::string journal_record(std::uint64_t seq, std::string_view payload) {
    std::string r;
    r.reserve(journal_record_header_size + payload.size());
    append_journal_record(r, seq, payload);
    return r;
}

/// A fresh random 64-bit id (never 0): journals, session lineages.
[[nodiscard]] inline std::uint64_t random_id() {
    std::random_device rd;
    const std::uint64_t id = (static_cast<std::uint64_t>(rd()) << 32) ^ rd() ^
                             static_cast<std::uint64_t>(std::chrono::steady_clock::now().time_since_epoch().count());
    return id == 0 ? 1 : id;
}

/// The payload of one operation: compact JSON, refused over the record limit.
[[nodiscard]] inline std::string journal_payload(const boost::json::object& op, const std::string& where) {
    std::string p = print(op, {.indent = -1});
    if (p.size() > journal_max_payload)
        throw Error(Errc::invalid_argument, where + ": a journal record of " + std::to_string(p.size()) +
                                                " bytes is over the 16 MiB limit");
    return p;
}

} // namespace detail

/// One decoded record.
struct JournalRecord {
    std::uint64_t seq = 0;
    std::uint64_t offset = 0; ///< byte offset of the record header in the file (0: kept by a backend)
    boost::json::object op;
};

/// A whole journal, decoded.
struct JournalContents {
    std::uint64_t id = 0;
    std::uint64_t base_seq = 0;
    std::vector<JournalRecord> records;
    std::uint64_t valid_bytes = 0;  ///< header + intact records; anything after is a torn tail
    std::string torn_tail;          ///< empty, or a sentence describing the ignored tail
    std::uint64_t torn_offset = 0;  ///< where the torn tail starts (when there is one)
    std::string corruption;         ///< empty, or where and why decoding stopped before the end
    [[nodiscard]] bool intact() const noexcept { return corruption.empty(); }
    [[nodiscard]] std::uint64_t last_seq() const noexcept { return records.empty() ? base_seq : records.back().seq; }
};

/// Decode journal bytes (`name` is used in messages). Throws Errc::corrupt for
/// a bad header; stops at a sequence gap or a bad record with valid data
/// after it, describing it in `corruption`.
[[nodiscard]] inline JournalContents decode_journal(std::string_view bytes, const std::string& name) {
    using namespace detail;
    JournalContents c;
    if (bytes.size() < journal_header_size || std::memcmp(bytes.data(), journal_magic, sizeof journal_magic) != 0)
        throw Error(Errc::corrupt, name + ": not a tradestate journal (bad or missing 32-byte header at offset 0)");
    if (get_u64(bytes.data() + 24) != xxh3(bytes.data(), 24))
        throw Error(Errc::corrupt, name + ": journal header checksum mismatch at offset 0");
    c.id = get_u64(bytes.data() + 8);
    c.base_seq = get_u64(bytes.data() + 16);
    std::size_t off = journal_header_size;
    std::uint64_t expect = c.base_seq + 1;
    // Is there an intact record anywhere after `from`? (Then a bad record
    // before it is corruption, not a torn tail, whatever its length field says.)
    auto intact_record_after = [&](std::size_t from) {
        for (std::size_t i = from; i + journal_record_header_size <= bytes.size(); ++i) {
            const char* p = bytes.data() + i;
            if (get_u32(p) != journal_record_magic) continue;
            const std::uint32_t len = get_u32(p + 4);
            if (len > bytes.size() - i - journal_record_header_size) continue;
            if (record_checksum(get_u64(p + 8), bytes.substr(i + journal_record_header_size, len)) == get_u64(p + 16))
                return true;
        }
        return false;
    };
    while (off < bytes.size()) {
        const std::size_t left = bytes.size() - off;
        std::string problem;
        if (left < journal_record_header_size) {
            problem = "incomplete record header (" + std::to_string(left) + " bytes)";
        } else {
            const char* p = bytes.data() + off;
            const std::uint32_t magic = get_u32(p);
            const std::uint32_t len = get_u32(p + 4);
            const std::uint64_t seq = get_u64(p + 8);
            const std::uint64_t sum = get_u64(p + 16);
            if (magic != journal_record_magic) problem = "bad record magic";
            else if (len > journal_max_payload) problem = "record length " + std::to_string(len) + " over the limit";
            else if (len > left - journal_record_header_size)
                problem = "record cut short (needs " + std::to_string(len) + " payload bytes, " +
                          std::to_string(left - journal_record_header_size) + " present)";
            else {
                const std::size_t end = off + journal_record_header_size + len;
                const std::string_view payload = bytes.substr(off + journal_record_header_size, len);
                if (record_checksum(seq, payload) != sum) problem = "checksum mismatch";
                else {
                    auto stop = [&](const std::string& why) {
                        c.corruption = name + ": record at offset " + std::to_string(off) + " " + why;
                        c.valid_bytes = off;
                    };
                    if (seq != expect) {
                        stop("has sequence " + std::to_string(seq) + ", expected " + std::to_string(expect) +
                             " (records missing or reordered)");
                        return c;
                    }
                    boost::json::value v;
                    try {
                        v = parse(payload, name + "@" + std::to_string(off));
                    } catch (const Error& e) {
                        stop(std::string("has a valid checksum but unreadable JSON: ") + e.what());
                        return c;
                    }
                    if (!v.is_object() || !v.get_object().contains("op")) {
                        stop("is not a journal operation (JSON object with \"op\")");
                        return c;
                    }
                    c.records.push_back({seq, off, std::move(v.get_object())});
                    ++expect;
                    off = end;
                    continue;
                }
            }
        }
        // A bad record: a torn tail if no intact record follows it.
        if (!intact_record_after(off + 1)) {
            c.torn_offset = off;
            c.torn_tail = name + ": a torn last record at offset " + std::to_string(off) + " (" + problem + ", " +
                          std::to_string(bytes.size() - off) + " bytes) was ignored";
            break;
        }
        c.corruption = name + ": corrupt journal record at offset " + std::to_string(off) + " (" + problem +
                       ") followed by intact records";
        c.valid_bytes = off;
        return c;
    }
    c.valid_bytes = c.torn_tail.empty() ? bytes.size() : off;
    return c;
}

/// Read and decode the journal at `path` (Errc::not_found if absent; a FIFO
/// or other non-regular file is refused without blocking).
[[nodiscard]] inline JournalContents read_journal(const std::filesystem::path& path,
                                                  std::uint64_t max_bytes = 1ull << 30) {
    return decode_journal(detail::read_file(path, max_bytes), path.string());
}

/// Check and decode a journal a backend returned (Backend::journal_read):
/// every record's checksum, the sequence and the JSON. A database has no
/// torn tail: decoding stops at the first bad record, naming it in
/// `corruption`, and records missing before `last_appended` are named too.
[[nodiscard]] inline JournalContents decode_journal(const StoredJournal& j) {
    JournalContents c;
    c.id = j.id;
    c.base_seq = j.base_seq;
    std::uint64_t expect = j.base_seq + 1;
    for (const auto& r : j.records) {
        const std::string where = j.location + " journal record " + std::to_string(r.seq);
        if (r.seq != expect) {
            c.corruption = where + ": expected record " + std::to_string(expect) + " (records missing or reordered)";
            return c;
        }
        if (detail::record_checksum(r.seq, r.payload) != r.checksum) {
            c.corruption = where + ": checksum mismatch (the stored payload was changed)";
            return c;
        }
        boost::json::value v;
        try {
            v = detail::parse(r.payload, where);
        } catch (const Error& e) {
            c.corruption = where + " has a valid checksum but unreadable JSON: " + e.what();
            return c;
        }
        if (!v.is_object() || !v.get_object().contains("op")) {
            c.corruption = where + " is not a journal operation (JSON object with \"op\")";
            return c;
        }
        c.records.push_back({r.seq, 0, std::move(v.get_object())});
        ++expect;
    }
    if (j.last_appended > c.last_seq())
        c.corruption = j.location + ": records " + std::to_string(c.last_seq() + 1) + ".." +
                       std::to_string(j.last_appended) + " were appended but are no longer stored";
    return c;
}

} // namespace tradestate
