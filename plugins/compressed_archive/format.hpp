// The compressed-archive plugin's file format: file header, records
// (header, saved_at, envelope, zstd-compressed binary document) and the
// scan that walks a file and says where it stops being valid. Layout:
// docs/format-compressed-archive.md. Private to the plugin.
#pragma once

#include <tradestate/backend.hpp>
#include <tradestate/error.hpp>
#include <tradestate/detail/checksum.hpp>
#include <tradestate/detail/endian.hpp>

#include <zstd.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <unistd.h>

namespace tradestate::compressed_archive {

// All integers little-endian.
inline constexpr char file_magic[8] = {'T', 'S', 'A', 'R', 'C', '0', '0', '1'};
inline constexpr std::uint32_t format_version = 1;
inline constexpr std::uint32_t flag_closed = 1; // an archive file under archive/
inline constexpr std::size_t file_header_bytes = 16;
inline constexpr char record_magic[4] = {'T', 'S', 'R', 'C'};
inline constexpr std::size_t record_header_bytes = 72;
/// A saved_at stamp is ~32 bytes ("2025-09-29T11:49:10.218268+05:30"); a longer
/// length field in a record the file ends inside is damage, not a torn append.
inline constexpr std::uint16_t max_saved_at_bytes = 64;

inline void put16(char* p, std::uint16_t v) { detail::store_le(p, v); }
inline void put32(char* p, std::uint32_t v) { detail::store_le(p, v); }
inline void put64(char* p, std::uint64_t v) { detail::store_le(p, v); }
inline std::uint16_t get16(const char* p) { return detail::load_le<std::uint16_t>(p); }
inline std::uint32_t get32(const char* p) { return detail::get_u32(p); }
inline std::uint64_t get64(const char* p) { return detail::get_u64(p); }

// Record version 2 (tradestate 0.3) adds the session envelope — lineage,
// journal id, journal seq, 24 bytes — after saved_at, covered by both checksums.
inline constexpr std::uint16_t record_version = 2;
inline constexpr std::size_t envelope_bytes = 24;
[[nodiscard]] inline std::size_t envelope_size(std::uint16_t version) { return version >= 2 ? envelope_bytes : 0; }

/// Header checksum: XXH3 of record bytes [0, 64), saved_at and the envelope.
inline std::uint64_t header_sum(const char* h, std::string_view saved_and_envelope) {
    detail::Xxh3Stream st;
    st.update(std::string_view(h, 64));
    st.update(saved_and_envelope);
    return st.digest();
}

inline std::string envelope_of(const SaveMeta& m) {
    std::string e(envelope_bytes, '\0');
    put64(e.data(), m.lineage);
    put64(e.data() + 8, m.journal_id);
    put64(e.data() + 16, m.journal_seq);
    return e;
}

inline std::string make_file_header(std::uint32_t flags) {
    std::string h(file_header_bytes, '\0');
    std::memcpy(h.data(), file_magic, 8);
    put32(h.data() + 8, format_version);
    put32(h.data() + 12, flags);
    return h;
}

/// The bytes of one record: header, saved_at, compressed document.
inline std::string make_record(std::uint64_t seq, const SaveMeta& m, std::string_view compressed, std::uint64_t raw_len) {
    std::string r(record_header_bytes, '\0');
    char* h = r.data();
    const std::string extra = m.saved_at + envelope_of(m);
    std::memcpy(h, record_magic, 4);
    put16(h + 4, record_version);
    put16(h + 6, static_cast<std::uint16_t>(m.saved_at.size()));
    put64(h + 8, seq);
    put64(h + 16, static_cast<std::uint64_t>(m.iteration));
    put64(h + 24, static_cast<std::uint64_t>(m.positions));
    put64(h + 32, static_cast<std::uint64_t>(m.cash_paise));
    put64(h + 40, compressed.size());
    put64(h + 48, raw_len);
    detail::Xxh3Stream st;
    st.update(std::string_view(h, 56));
    st.update(extra);
    st.update(compressed);
    put64(h + 56, st.digest());
    put64(h + 64, header_sum(h, extra));
    r.append(extra);
    r.append(compressed);
    return r;
}

/// One record as found in a file.
struct Rec {
    std::uint64_t offset = 0, length = 0; // whole record
    std::uint64_t seq = 0, clen = 0, rlen = 0;
    SaveMeta meta;
    bool ok = false;
    bool cut_short = false; // parse failed because the data ends inside the record (an interrupted append)
    std::string problem;
    [[nodiscard]] std::uint64_t end() const { return offset + length; }
};

/// Parse the record at `off` in `data` (which holds the file from offset
/// `base`). Returns false when the header is unusable (the rest of the file
/// cannot be walked); then `why` says why.
inline bool parse_record(std::string_view data, std::uint64_t base, std::uint64_t off, Rec& r, std::string& why) {
    const std::uint64_t rel = off - base;
    const std::uint64_t left = data.size() - rel;
    r = Rec{};
    r.offset = off;
    // Before its header checksum is read, a record the file seems to end
    // inside is an interrupted append only if no record follows it (a
    // damaged length field in an earlier record looks the same otherwise).
    const auto last_in_file = [&] {
        return left <= 4 || data.substr(static_cast<std::size_t>(rel) + 4).find(std::string_view(record_magic, 4)) ==
                                std::string_view::npos;
    };
    if (left < record_header_bytes) {
        why = "truncated record header (" + std::to_string(left) + " of " + std::to_string(record_header_bytes) +
              " bytes)";
        r.cut_short = std::memcmp(data.data() + rel, record_magic, std::min<std::uint64_t>(left, 4)) == 0 &&
                      last_in_file();
        return false;
    }
    const char* h = data.data() + rel;
    if (std::memcmp(h, record_magic, 4) != 0) {
        why = "no record magic";
        return false;
    }
    const std::uint16_t sl = get16(h + 6);
    const std::uint16_t version = get16(h + 4);
    const std::size_t env = envelope_size(version);
    if (left < record_header_bytes + sl + env) {
        why = "truncated record header";
        r.cut_short = sl <= max_saved_at_bytes && last_in_file();
        return false;
    }
    const std::string_view saved_at(h + record_header_bytes, sl);
    const std::string_view extra(h + record_header_bytes, sl + env);
    if (header_sum(h, extra) != get64(h + 64)) {
        why = "record header checksum mismatch";
        return false;
    }
    if (version != 1 && version != record_version) {
        why = "record format version " + std::to_string(version) + " is not supported";
        return false;
    }
    r.seq = get64(h + 8);
    r.meta.iteration = static_cast<std::int64_t>(get64(h + 16));
    r.meta.positions = static_cast<std::int64_t>(get64(h + 24));
    r.meta.cash_paise = static_cast<std::int64_t>(get64(h + 32));
    r.clen = get64(h + 40);
    r.rlen = get64(h + 48);
    r.meta.saved_at.assign(saved_at);
    if (env) {
        const char* e = h + record_header_bytes + sl;
        r.meta.lineage = get64(e);
        r.meta.journal_id = get64(e + 8);
        r.meta.journal_seq = get64(e + 16);
    }
    const std::uint64_t body = record_header_bytes + sl + env;
    if (r.clen > left - body) {
        why = "record of sequence " + std::to_string(r.seq) + " is truncated (" + std::to_string(r.clen) +
              " compressed bytes announced, " + std::to_string(left - body) + " present)";
        r.cut_short = true;
        return false;
    }
    r.length = body + r.clen;
    detail::Xxh3Stream st;
    st.update(std::string_view(h, 56));
    st.update(extra);
    st.update(std::string_view(h + body, r.clen));
    const bool sum_ok = st.digest() == get64(h + 56);
    if (!sum_ok) r.problem = "record checksum mismatch (sequence " + std::to_string(r.seq) + ")";
    else r.ok = true;
    return true;
}

struct Scan {
    std::string header_problem;           // the file header is unusable
    std::vector<Rec> recs;                // every record whose header could be read
    std::uint64_t valid_end = file_header_bytes; // end of the last good record
    std::uint64_t size = 0;
    std::string tail_problem;             // unreadable bytes at tail_offset
    std::uint64_t tail_offset = 0;
    bool tail_cut_short = false;          // ... a record the file ends inside: an interrupted append
    [[nodiscard]] const Rec* last_ok() const {
        for (auto it = recs.rbegin(); it != recs.rend(); ++it)
            if (it->ok) return &*it;
        return nullptr;
    }
    /// The good records, oldest first (pointers into `recs`).
    [[nodiscard]] std::vector<const Rec*> good() const {
        std::vector<const Rec*> out;
        for (const auto& r : recs)
            if (r.ok) out.push_back(&r);
        return out;
    }
    [[nodiscard]] std::size_t ok_count() const {
        return static_cast<std::size_t>(std::count_if(recs.begin(), recs.end(), [](const Rec& r) { return r.ok; }));
    }
};

inline Scan scan_bytes(std::string_view data) {
    Scan s;
    s.size = data.size();
    if (data.size() < file_header_bytes) {
        s.header_problem = "the file is " + std::to_string(data.size()) + " bytes, shorter than its header (truncated)";
        return s;
    }
    if (std::memcmp(data.data(), file_magic, 8) != 0) {
        s.header_problem = "bad magic (not a compressed-archive file)";
        return s;
    }
    if (get32(data.data() + 8) != format_version) {
        s.header_problem = "format version " + std::to_string(get32(data.data() + 8)) + " is not supported";
        return s;
    }
    if ((get32(data.data() + 12) & ~1u) != 0) {
        s.header_problem = "unknown flags " + std::to_string(get32(data.data() + 12)) + " in the file header (damaged)";
        return s;
    }
    std::uint64_t off = file_header_bytes;
    std::uint64_t last_seq = 0;
    while (off < data.size()) {
        Rec r;
        std::string why;
        if (!parse_record(data, 0, off, r, why)) {
            s.tail_problem = why;
            s.tail_offset = off;
            s.tail_cut_short = r.cut_short;
            break;
        }
        if (r.ok && r.seq <= last_seq) {
            r.ok = false;
            r.problem = "sequence " + std::to_string(r.seq) + " does not follow " + std::to_string(last_seq);
        }
        if (r.ok) {
            last_seq = r.seq;
            s.valid_end = r.end();
        }
        off = r.end();
        s.recs.push_back(std::move(r));
    }
    return s;
}

inline std::string decompress(std::string_view data, const Rec& r, std::uint64_t base, const std::string& what,
                       std::uint64_t max_bytes) {
    if (r.rlen > max_bytes)
        throw Error(Errc::corrupt, what + ": record announces " + std::to_string(r.rlen) +
                                       " uncompressed bytes, over persistence.max_file_bytes");
    const char* src = data.data() + (r.offset - base) + (r.length - r.clen);
    std::string out(r.rlen, '\0');
    const std::size_t n = ZSTD_decompress(out.data(), out.size(), src, r.clen);
    if (ZSTD_isError(n) || n != r.rlen)
        throw Error(Errc::corrupt, what + ": cannot decompress record: " +
                                       (ZSTD_isError(n) ? std::string(ZSTD_getErrorName(n)) : "length mismatch"));
    return out;
}

/// Read and check the record at `off` (expected sequence `seq`) with pread.
[[nodiscard]] inline std::optional<std::pair<std::string, Rec>> read_record_at(int fd, std::uint64_t size, std::uint64_t off,
                                                                              std::uint64_t seq) {
    if (off < file_header_bytes || off + record_header_bytes > size) return std::nullopt;
    std::string head(record_header_bytes, '\0');
    if (::pread(fd, head.data(), head.size(), static_cast<off_t>(off)) != static_cast<ssize_t>(head.size()))
        return std::nullopt;
    const std::uint64_t total = record_header_bytes + get16(head.data() + 6) +
                                envelope_size(get16(head.data() + 4)) + get64(head.data() + 40);
    if (total > size - off) return std::nullopt;
    std::string data(total, '\0');
    if (::pread(fd, data.data(), total, static_cast<off_t>(off)) != static_cast<ssize_t>(total)) return std::nullopt;
    Rec r;
    std::string why;
    if (!parse_record(data, off, off, r, why) || !r.ok || r.seq != seq || r.end() != off + total) return std::nullopt;
    return std::make_pair(std::move(data), std::move(r));
}


} // namespace tradestate::compressed_archive
