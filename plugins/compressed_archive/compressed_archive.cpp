// tradestate backend plugin "compressed-archive": per session an append-only
// file of zstd-compressed snapshots with full history, an index for fast
// seek, time travel (load_at), daily archiving into state/archive/ and
// compaction. File layout and policy: docs/format-compressed-archive.md.
#include <tradestate/backend.hpp>
#include <tradestate/detail/atomic_file.hpp>
#include <tradestate/detail/binary_doc.hpp>
#include <tradestate/detail/checksum.hpp>
#include <tradestate/detail/endian.hpp>
#include <tradestate/detail/file_lock.hpp>
#include <tradestate/detail/session_name.hpp>
#include <tradestate/plugin.hpp>

#include <spdlog/spdlog.h>
#include <zstd.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <ctime>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

namespace tradestate::compressed_archive {
namespace {

namespace fs = std::filesystem;

// ---- layout (all integers little-endian) ------------------------------------
constexpr char file_magic[8] = {'T', 'S', 'A', 'R', 'C', '0', '0', '1'};
constexpr std::uint32_t format_version = 1;
constexpr std::uint32_t flag_closed = 1; // an archive file under archive/
constexpr std::size_t file_header_bytes = 16;
constexpr char record_magic[4] = {'T', 'S', 'R', 'C'};
constexpr std::size_t record_header_bytes = 72;
/// A saved_at stamp is ~32 bytes ("2025-09-29T11:49:10.218268+05:30"); a longer
/// length field in a record the file ends inside is damage, not a torn append.
constexpr std::uint16_t max_saved_at_bytes = 64;
constexpr char index_magic[8] = {'T', 'S', 'A', 'R', 'C', 'I', 'D', 'X'};
constexpr const char* suffix = ".tsarc";

void put16(char* p, std::uint16_t v) { detail::store_le(p, v); }
void put32(char* p, std::uint32_t v) { detail::store_le(p, v); }
void put64(char* p, std::uint64_t v) { detail::store_le(p, v); }
std::uint16_t get16(const char* p) { return detail::load_le<std::uint16_t>(p); }
std::uint32_t get32(const char* p) { return detail::get_u32(p); }
std::uint64_t get64(const char* p) { return detail::get_u64(p); }

// Record version 2 (tradestate 0.3) adds the session envelope — lineage,
// journal id, journal seq, 24 bytes — after saved_at, covered by both checksums.
constexpr std::uint16_t record_version = 2;
constexpr std::size_t envelope_bytes = 24;
[[nodiscard]] std::size_t envelope_size(std::uint16_t version) { return version >= 2 ? envelope_bytes : 0; }

/// Header checksum: XXH3 of record bytes [0, 64), saved_at and the envelope.
std::uint64_t header_sum(const char* h, std::string_view saved_and_envelope) {
    detail::Xxh3Stream st;
    st.update(std::string_view(h, 64));
    st.update(saved_and_envelope);
    return st.digest();
}

std::string envelope_of(const SaveMeta& m) {
    std::string e(envelope_bytes, '\0');
    put64(e.data(), m.lineage);
    put64(e.data() + 8, m.journal_id);
    put64(e.data() + 16, m.journal_seq);
    return e;
}

std::string make_file_header(std::uint32_t flags) {
    std::string h(file_header_bytes, '\0');
    std::memcpy(h.data(), file_magic, 8);
    put32(h.data() + 8, format_version);
    put32(h.data() + 12, flags);
    return h;
}

/// The bytes of one record: header, saved_at, compressed document.
std::string make_record(std::uint64_t seq, const SaveMeta& m, std::string_view compressed, std::uint64_t raw_len) {
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
bool parse_record(std::string_view data, std::uint64_t base, std::uint64_t off, Rec& r, std::string& why) {
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
    [[nodiscard]] std::size_t ok_count() const {
        return static_cast<std::size_t>(std::count_if(recs.begin(), recs.end(), [](const Rec& r) { return r.ok; }));
    }
};

Scan scan_bytes(std::string_view data) {
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

std::string decompress(std::string_view data, const Rec& r, std::uint64_t base, const std::string& what,
                       std::uint64_t max_bytes) {
    if (r.rlen > max_bytes)
        throw Error(errc::corrupt, what + ": record announces " + std::to_string(r.rlen) +
                                       " uncompressed bytes, over persistence.max_file_bytes");
    const char* src = data.data() + (r.offset - base) + (r.length - r.clen);
    std::string out(r.rlen, '\0');
    const std::size_t n = ZSTD_decompress(out.data(), out.size(), src, r.clen);
    if (ZSTD_isError(n) || n != r.rlen)
        throw Error(errc::corrupt, what + ": cannot decompress record: " +
                                       (ZSTD_isError(n) ? std::string(ZSTD_getErrorName(n)) : "length mismatch"));
    return out;
}

std::string now_stamp() {
    const auto t = std::chrono::system_clock::to_time_t(std::chrono::system_clock::now());
    std::tm tm{};
    ::gmtime_r(&t, &tm);
    char buf[32];
    std::strftime(buf, sizeof buf, "%Y%m%dT%H%M%SZ", &tm);
    return buf;
}

/// "YYYY-MM-DD" from the start of an ISO 8601 timestamp, or empty.
std::string day_of(const std::string& saved_at) {
    if (saved_at.size() < 10) return {};
    for (std::size_t i = 0; i < 10; ++i) {
        const char c = saved_at[i];
        if (i == 4 || i == 7) {
            if (c != '-') return {};
        } else if (c < '0' || c > '9') {
            return {};
        }
    }
    return saved_at.substr(0, 10);
}

/// Days since the epoch of "YYYY-MM-DD".
long day_number(const std::string& d) {
    using namespace std::chrono;
    const int y = std::stoi(d.substr(0, 4));
    const unsigned m = static_cast<unsigned>(std::stoi(d.substr(5, 2)));
    const unsigned dd = static_cast<unsigned>(std::stoi(d.substr(8, 2)));
    return static_cast<long>(sys_days(year{y} / month{m} / day{dd}).time_since_epoch().count());
}

struct Settings {
    int compression_level = 3;
    bool archive_daily = true;
    std::int64_t max_live_records = 5000;
    std::int64_t keep_every_nth = 10;
    std::int64_t keep_archive_days = 90;
};

Settings parse_settings(const boost::json::object& o) {
    Settings s;
    auto integer = [](const boost::json::value& v, const std::string& key, std::int64_t lo, std::int64_t hi) {
        std::int64_t i = 0;
        if (v.is_int64()) i = v.get_int64();
        else if (v.is_uint64() && v.get_uint64() <= static_cast<std::uint64_t>(INT64_MAX))
            i = static_cast<std::int64_t>(v.get_uint64());
        else
            throw Error(errc::config, "[persistence.compressed-archive] " + key + " must be an integer");
        if (i < lo || i > hi)
            throw Error(errc::config, "[persistence.compressed-archive] " + key + " = " + std::to_string(i) +
                                          " is out of range (" + std::to_string(lo) + " to " + std::to_string(hi) + ")");
        return i;
    };
    for (const auto& kv : o) {
        const std::string key(kv.key());
        if (key == "compression_level")
            s.compression_level = static_cast<int>(integer(kv.value(), key, ZSTD_minCLevel(), ZSTD_maxCLevel()));
        else if (key == "archive_daily") {
            if (!kv.value().is_bool())
                throw Error(errc::config, "[persistence.compressed-archive] archive_daily must be true or false");
            s.archive_daily = kv.value().get_bool();
        } else if (key == "max_live_records")
            s.max_live_records = integer(kv.value(), key, 0, INT64_MAX);
        else if (key == "keep_every_nth")
            s.keep_every_nth = integer(kv.value(), key, 1, INT64_MAX);
        else if (key == "keep_archive_days")
            s.keep_archive_days = integer(kv.value(), key, 0, 1000000);
        else
            throw Error(errc::config, "unknown setting [persistence.compressed-archive] " + key +
                                          " (known: compression_level, archive_daily, max_live_records, "
                                          "keep_every_nth, keep_archive_days)");
    }
    return s;
}

/// Shared or exclusive flock on a session's internal lock file; writers
/// hold it exclusively while they change the live file, readers shared.
class FlockGuard {
public:
    FlockGuard(const fs::path& p, bool exclusive) {
        fd_ = detail::unique_fd(::open(p.c_str(), (exclusive ? O_RDWR | O_CREAT : O_RDONLY) | O_CLOEXEC | O_NONBLOCK, 0644));
        if (!fd_) {
            if (!exclusive) return; // nothing was ever written, or a read-only dir: read without it
            detail::throw_io("open lock file", p, errno);
        }
        detail::require_regular(fd_.get(), p);
        while (::flock(fd_.get(), exclusive ? LOCK_EX : LOCK_SH) != 0)
            if (errno != EINTR) detail::throw_io("lock", p, errno);
    }

private:
    detail::unique_fd fd_;
};

class ArchiveBackend final : public Backend {
public:
    explicit ArchiveBackend(const BackendOptions& o) : opts_(o), cfg_(parse_settings(o.settings)) {}

    [[nodiscard]] std::string name() const override { return "compressed-archive"; }

    [[nodiscard]] bool stores_views() const override { return false; } // the host skips building them
    [[nodiscard]] bool has_history() const override { return true; }

    std::uint64_t save(const std::string& session, const Document& doc, const SaveMeta& meta) override {
        validate_session_name(session);
        if (meta.saved_at.size() > 4096)
            throw Error(errc::invalid_argument, "saved_at of session '" + session + "' is longer than 4096 bytes");
        const std::string raw = detail::binary_encode(doc.main);
        std::string comp(ZSTD_compressBound(raw.size()), '\0');
        const std::size_t n = ZSTD_compress(comp.data(), comp.size(), raw.data(), raw.size(), cfg_.compression_level);
        if (ZSTD_isError(n))
            throw Error(errc::io, "cannot compress session '" + session + "': " + ZSTD_getErrorName(n));
        comp.resize(n);

        ensure_dir();
        const auto path = live_of(session);
        FlockGuard lock(lock_of(session), true);
        auto st = prepare_live(session);

        std::uint64_t last_seq = st.last_seq;
        if (cfg_.archive_daily && !st.first_day.empty()) {
            const auto d = day_of(meta.saved_at);
            if (!d.empty() && d > st.first_day) {
                (void)archive_locked(session, d); // every earlier day is complete now
                st = prepare_live(session);
            }
        }
        const std::string rec = make_record(last_seq + 1, meta, comp, raw.size());
        if (st.size + rec.size() > opts_.max_file_bytes)
            throw Error(errc::io, "cannot save session '" + session + "': " + path.string() + " would grow to " +
                                      std::to_string(st.size + rec.size()) + " bytes, over the limit of " +
                                      std::to_string(opts_.max_file_bytes) +
                                      " bytes (persistence.max_file_bytes); run `tradestate archive` or raise the limit");
        {
            detail::unique_fd fd = detail::open_regular(path, O_WRONLY);
            std::uint64_t done = 0;
            while (done < rec.size()) {
                const ssize_t w = ::pwrite(fd.get(), rec.data() + done, rec.size() - done,
                                           static_cast<off_t>(st.size + done));
                if (w < 0) {
                    if (errno == EINTR) continue;
                    const int e = errno;
                    (void)::ftruncate(fd.get(), static_cast<off_t>(st.size)); // drop the partial record
                    detail::throw_io("append to", path, e);
                }
                done += static_cast<std::uint64_t>(w);
            }
            if (opts_.fsync && ::fdatasync(fd.get()) != 0) {
                // The save failed: the record must not become the newest state.
                // Cut it off; no second fdatasync on this descriptor.
                const int e = errno;
                (void)::ftruncate(fd.get(), static_cast<off_t>(st.size));
                detail::throw_io("fsync", path, e);
            }
        }
        st.offsets.emplace_back(st.size, last_seq + 1);
        st.size += rec.size();
        if (cfg_.max_live_records > 0 && static_cast<std::int64_t>(st.offsets.size()) > cfg_.max_live_records) thin(session);
        else write_index(session, st.offsets, st.size);
        return last_seq + 1;
    }

    [[nodiscard]] std::optional<LoadResult> load(const std::string& session) override {
        validate_session_name(session);
        const auto path = live_of(session);
        FlockGuard lock(lock_of(session), false);
        // Fast path: a fresh index names the last record; read only that.
        if (auto fast = load_via_index(session)) return fast;
        std::string data;
        try {
            data = detail::read_file(path, opts_.max_file_bytes);
        } catch (const Error& e) {
            if (e.code() == errc::not_found) return std::nullopt;
            throw;
        }
        auto sc = scan_bytes(data);
        if (!sc.header_problem.empty())
            throw Error(errc::corrupt, path.string() + " is damaged: " + sc.header_problem +
                                           "; no state can be read from it (restore it from a backup or move it aside)");
        LoadResult r;
        std::vector<std::string> bad_after;
        for (auto it = sc.recs.rbegin(); it != sc.recs.rend(); ++it) {
            if (!it->ok) {
                bad_after.push_back("record at offset " + std::to_string(it->offset) + ": " + it->problem);
                continue;
            }
            try {
                r.doc = detail::binary_decode(decompress(data, *it, 0, path.string(), opts_.max_file_bytes),
                                              path.string() + " record at offset " + std::to_string(it->offset));
            } catch (const Error& e) {
                bad_after.push_back("record at offset " + std::to_string(it->offset) + ": " + e.what());
                continue;
            }
            r.meta = it->meta;
            r.sequence = it->seq;
            r.source = path.string() + " record at offset " + std::to_string(it->offset);
            break;
        }
        const bool tail_only = bad_after.empty();
        if (!sc.tail_problem.empty())
            bad_after.insert(bad_after.begin(),
                             "unreadable tail at offset " + std::to_string(sc.tail_offset) + ": " + sc.tail_problem);
        // A file cut short exactly at a record boundary still scans clean; the
        // index of this very file (same inode) remembers how long it was. When
        // the scan already found the damage, that report (with its offset) says
        // it better.
        if (bad_after.empty()) {
            struct stat st {};
            const auto idx = read_index(session);
            if (idx && !idx->entries.empty() && ::stat(path.c_str(), &st) == 0 &&
                idx->ino == static_cast<std::uint64_t>(st.st_ino) && idx->covered > data.size())
                bad_after.push_back("truncated: the file is " + std::to_string(data.size()) +
                                                        " bytes, its index lists " + std::to_string(idx->entries.size()) +
                                                        " records over " + std::to_string(idx->covered) + " bytes");
        }
        if (r.sequence == 0) {
            if (bad_after.empty()) return std::nullopt; // header only: never saved
            std::string all;
            for (const auto& b : bad_after) all += (all.empty() ? "" : "; ") + b;
            // The newest day archive still holds earlier snapshots.
            if (auto older = load_newest_archived(session)) {
                older->recovered = true;
                older->warnings.push_back(path.string() + " has no valid record (" + all + "); loaded " + older->source);
                return older;
            }
            throw Error(errc::corrupt, path.string() + " has no valid record (" + all +
                                           "); the state cannot be loaded and " + archive_dir().string() +
                                           " holds no earlier snapshot of it");
        }
        for (const auto& b : bad_after) {
            r.warnings.push_back(path.string() + ": " + b + "; skipped, loaded sequence " + std::to_string(r.sequence));
            r.recovered = true;
        }
        // Only a tail cut short, after every record intact: an append that never completed.
        r.interrupted = r.recovered && tail_only && sc.tail_cut_short;
        return r;
    }

    [[nodiscard]] std::vector<SessionInfo> list() override {
        std::vector<SessionInfo> out;
        std::error_code ec;
        if (!fs::is_directory(opts_.state_dir, ec)) return out;
        for (auto it = fs::directory_iterator(opts_.state_dir, ec); !ec && it != fs::directory_iterator();
             it.increment(ec)) {
            const auto& p = it->path();
            if (p.extension() != suffix) continue;
            const auto session = p.stem().string();
            if (!is_valid_session_name(session)) continue;
            SessionInfo si;
            si.session = session;
            si.location = p.string();
            try {
                FlockGuard lock(lock_of(session), false);
                auto info = last_record_info(session);
                if (!info) continue;
                si.meta = info->meta;
                si.sequence = info->seq;
            } catch (const Error& e) {
                log_warn("{}", e.what());
            }
            out.push_back(std::move(si));
        }
        std::sort(out.begin(), out.end(), [](const auto& a, const auto& b) { return a.session < b.session; });
        return out;
    }

    [[nodiscard]] bool exists(const std::string& session) override {
        validate_session_name(session);
        struct stat st {};
        if (::stat(live_of(session).c_str(), &st) != 0) return false;
        return static_cast<std::uint64_t>(st.st_size) != file_header_bytes;
    }

    bool remove(const std::string& session) override {
        validate_session_name(session);
        const auto path = live_of(session);
        if (!fs::exists(opts_.state_dir)) return false;
        FlockGuard lock(lock_of(session), true);
        if (::unlink(path.c_str()) != 0) {
            if (errno == ENOENT) {
                ::unlink(lock_of(session).c_str());
                return false;
            }
            detail::throw_io("remove", path, errno);
        }
        ::unlink(index_of(session).c_str());
        for (const auto& [day, file] : archive_files(session)) ::unlink(file.c_str());
        ::unlink(lock_of(session).c_str());
        if (opts_.fsync) {
            try {
                detail::fsync_directory(opts_.state_dir);
            } catch (const Error&) {
            }
        }
        return true;
    }

    [[nodiscard]] VerifyReport verify(const std::string& session) override {
        validate_session_name(session);
        VerifyReport rep;
        rep.session = session;
        FlockGuard lock(lock_of(session), false);
        auto check_file = [&](const fs::path& p, bool live) {
            std::string data;
            try {
                data = detail::read_file(p, opts_.max_file_bytes);
            } catch (const Error& e) {
                rep.findings.push_back({Finding::severity::error, p.string(), e.what()});
                return;
            }
            auto sc = scan_bytes(data);
            if (!sc.header_problem.empty()) {
                rep.findings.push_back({Finding::severity::error, p.string() + " header", sc.header_problem});
                return;
            }
            std::size_t good = 0;
            for (const auto& r : sc.recs) {
                const std::string where = p.string() + " offset " + std::to_string(r.offset);
                if (!r.ok) {
                    rep.findings.push_back({Finding::severity::error, where, r.problem});
                    continue;
                }
                try {
                    (void)detail::binary_decode(decompress(data, r, 0, p.string(), opts_.max_file_bytes), where);
                    ++good;
                } catch (const Error& e) {
                    rep.findings.push_back({Finding::severity::error, where, e.what()});
                }
            }
            // A last record the live file ends inside is what a crash in the
            // middle of an append leaves: that save never returned. Whether an
            // acknowledged save is missing is the session's to say (its mark;
            // `tradestate verify` asks it), so here it is information. Other bad
            // tails (no record magic, a bad header checksum) are damage, and so
            // is any bad tail of a day archive, which is written whole.
            if (!sc.tail_problem.empty()) {
                const bool interrupted = live && sc.tail_cut_short;
                rep.findings.push_back({interrupted ? Finding::severity::info : Finding::severity::error,
                                        p.string() + " offset " + std::to_string(sc.tail_offset),
                                        sc.tail_problem +
                                            (interrupted ? " (an interrupted save leaves this; the next save moves these bytes aside)"
                                                         : " (the next save moves these bytes aside)")});
            }
            rep.findings.push_back({Finding::severity::info, p.string(),
                                    std::to_string(good) + " valid record(s) of " + std::to_string(sc.recs.size()) +
                                        ", " + std::to_string(data.size()) + " bytes"});
            if (live) {
                auto idx = read_index(session);
                struct stat st {};
                const bool fresh = idx && ::stat(p.c_str(), &st) == 0 && idx->ino == st.st_ino &&
                                   idx->covered == static_cast<std::uint64_t>(st.st_size);
                if (!fresh)
                    rep.findings.push_back({Finding::severity::info, index_of(session).string(),
                                            "index missing or stale; it is rebuilt by the next save"});
            }
        };
        const auto live = live_of(session);
        if (!fs::exists(live)) {
            rep.findings.push_back({Finding::severity::error, live.string(), "no such file: session was never saved"});
        } else {
            check_file(live, true);
        }
        for (const auto& [day, file] : archive_files(session)) check_file(file, false);
        return rep;
    }

    [[nodiscard]] std::unique_ptr<WriterLease> acquire_writer(const std::string& session) override {
        validate_session_name(session);
        ensure_dir();
        return detail::take_session_lease(opts_.state_dir, session, {archive_dir()});
    }

    /// Every record of the live file is a copy a fallback can load; the
    /// session layer keeps the journal behind the newest keep_backups + 1.
    [[nodiscard]] std::size_t fallback_depth() const override {
        return static_cast<std::size_t>(std::max(opts_.keep_backups, 1)) + 1;
    }

    /// The live file is still the one this process wrote (or found at its first check).
    [[nodiscard]] bool in_place(const std::string& session) override {
        const auto id = detail::file_id(live_of(session));
        if (!id) return false;
        std::lock_guard lk(known_mu_);
        auto& v = known_[session];
        if (v.empty()) {
            v.push_back(*id);
            return true;
        }
        return std::find(v.begin(), v.end(), *id) != v.end();
    }

    /// Rename the live file, its index, kept-aside copies and day archives.
    void rename(const std::string& from, const std::string& to) override {
        validate_session_name(from);
        validate_session_name(to);
        if (detail::file_id(live_of(to)))
            throw Error(errc::invalid_argument, "cannot rename session '" + from + "' to '" + to + "': it exists");
        FlockGuard lock(lock_of(from), true);
        auto mv = [&](const fs::path& a, const fs::path& b) {
            if (!detail::file_id(a)) return;
            if (::rename(a.c_str(), b.c_str()) != 0) detail::throw_io("rename " + a.string() + " to", b, errno);
        };
        const std::string stem_from = live_of(from).filename().string();
        std::vector<fs::path> aside;
        std::error_code ec;
        for (auto it = fs::directory_iterator(opts_.state_dir, ec); !ec && it != fs::directory_iterator(); it.increment(ec))
            if (it->path().filename().string().rfind(stem_from + ".corrupt-", 0) == 0) aside.push_back(it->path());
        mv(live_of(from), live_of(to));
        mv(index_of(from), index_of(to));
        for (const auto& a : aside)
            mv(a, opts_.state_dir / (live_of(to).filename().string() + a.filename().string().substr(stem_from.size())));
        for (const auto& [day, file] : archive_files(from)) mv(file, archive_dir() / (to + "-" + day + suffix));
        if (opts_.fsync) {
            detail::fsync_directory(opts_.state_dir);
            if (detail::file_id(archive_dir())) detail::fsync_directory(archive_dir());
        }
        std::lock_guard lk(known_mu_);
        known_.erase(from);
        known_.erase(to);
    }

    [[nodiscard]] std::vector<SnapshotInfo> history(const std::string& session) override {
        validate_session_name(session);
        FlockGuard lock(lock_of(session), false);
        std::map<std::uint64_t, SnapshotInfo> all;
        for_each_file(session, [&](const fs::path&, const std::string&, const Scan& sc) {
            for (const auto& r : sc.recs)
                if (r.ok) all.emplace(r.seq, SnapshotInfo{r.seq, r.meta, r.length});
            return false;
        });
        std::vector<SnapshotInfo> out;
        out.reserve(all.size());
        for (auto& [seq, info] : all) out.push_back(std::move(info));
        return out;
    }

    [[nodiscard]] std::optional<LoadResult> load_at(const std::string& session, std::uint64_t sequence) override {
        validate_session_name(session);
        FlockGuard lock(lock_of(session), false);
        std::optional<LoadResult> found;
        for_each_file(session, [&](const fs::path& p, const std::string& data, const Scan& sc) {
            for (const auto& r : sc.recs) {
                if (!r.ok || r.seq != sequence) continue;
                const std::string what = p.string() + " record at offset " + std::to_string(r.offset);
                LoadResult lr;
                lr.doc = detail::binary_decode(decompress(data, r, 0, p.string(), opts_.max_file_bytes), what);
                lr.meta = r.meta;
                lr.sequence = r.seq;
                lr.source = what;
                found = std::move(lr);
                return true;
            }
            return false;
        });
        return found;
    }

    std::string archive(const std::string& session) override {
        validate_session_name(session);
        if (!fs::exists(live_of(session)))
            throw Error(errc::not_found, "session '" + session + "' does not exist in " + opts_.state_dir.string());
        FlockGuard lock(lock_of(session), true);
        (void)prepare_live(session);
        return archive_locked(session, {});
    }

private:
    struct LiveState {
        std::uint64_t size = file_header_bytes;
        std::uint64_t last_seq = 0;
        std::string first_day; // day of the first good record
        std::vector<std::pair<std::uint64_t, std::uint64_t>> offsets; // (offset, sequence) of good records
    };

    struct Index {
        std::uint64_t ino = 0, covered = 0;
        std::vector<std::pair<std::uint64_t, std::uint64_t>> entries;
        std::string first_day;
    };

    template <typename... A>
    void log_warn(fmt::format_string<A...> f, A&&... a) const {
        if (opts_.logger) opts_.logger->warn(f, std::forward<A>(a)...);
    }

    [[nodiscard]] fs::path live_of(const std::string& s) const { return opts_.state_dir / (s + suffix); }
    [[nodiscard]] fs::path index_of(const std::string& s) const { return opts_.state_dir / (s + suffix + ".idx"); }
    [[nodiscard]] fs::path lock_of(const std::string& s) const { return opts_.state_dir / ("." + s + suffix + ".lock"); }
    [[nodiscard]] fs::path archive_dir() const { return opts_.state_dir / "archive"; }

    void ensure_dir() const {
        std::error_code ec;
        fs::create_directories(opts_.state_dir, ec);
        if (ec) throw Error(errc::io, "cannot create state directory " + opts_.state_dir.string() + ": " + ec.message());
    }

    /// Archive files of `session`, by day, oldest first.
    [[nodiscard]] std::vector<std::pair<std::string, fs::path>> archive_files(const std::string& session) const {
        std::vector<std::pair<std::string, fs::path>> out;
        std::error_code ec;
        const std::string prefix = session + "-";
        for (auto it = fs::directory_iterator(archive_dir(), ec); !ec && it != fs::directory_iterator();
             it.increment(ec)) {
            const auto f = it->path().filename().string();
            if (f.size() != prefix.size() + 10 + std::strlen(suffix) || f.compare(0, prefix.size(), prefix) != 0 ||
                f.compare(f.size() - std::strlen(suffix), std::strlen(suffix), suffix) != 0)
                continue;
            const auto day = f.substr(prefix.size(), 10);
            if (day_of(day) != day) continue;
            out.emplace_back(day, it->path());
        }
        std::sort(out.begin(), out.end());
        return out;
    }

    /// Call fn(path, bytes, scan) for the live file, then every archive
    /// file newest first, until it returns true. Unreadable files are skipped.
    template <typename Fn>
    void for_each_file(const std::string& session, Fn&& fn) const {
        std::vector<fs::path> files{live_of(session)};
        auto arch = archive_files(session);
        for (auto it = arch.rbegin(); it != arch.rend(); ++it) files.push_back(it->second);
        for (const auto& p : files) {
            std::string data;
            try {
                data = detail::read_file(p, opts_.max_file_bytes);
            } catch (const Error& e) {
                if (e.code() != errc::not_found) log_warn("{}", e.what());
                continue;
            }
            auto sc = scan_bytes(data);
            if (!sc.header_problem.empty()) {
                log_warn("{} is damaged: {}", p.string(), sc.header_problem);
                continue;
            }
            if (fn(p, data, sc)) return;
        }
    }

    // ---- index ----------------------------------------------------------------
    void write_index(const std::string& session, const std::vector<std::pair<std::uint64_t, std::uint64_t>>& entries,
                     std::uint64_t covered) const {
        struct stat st {};
        if (::stat(live_of(session).c_str(), &st) != 0) return;
        std::string b(40, '\0');
        std::memcpy(b.data(), index_magic, 8);
        put32(b.data() + 8, 1);
        put64(b.data() + 16, static_cast<std::uint64_t>(st.st_ino));
        put64(b.data() + 24, covered);
        put64(b.data() + 32, entries.size());
        for (const auto& [off, seq] : entries) {
            char e[16];
            put64(e, off);
            put64(e + 8, seq);
            b.append(e, 16);
        }
        char sum[8];
        put64(sum, detail::xxh3(b));
        b.append(sum, 8);
        try {
            // A cache: validated on every use, so it needs no fsync.
            detail::write_file_atomic(index_of(session), b, false);
        } catch (const Error& e) {
            log_warn("cannot update index {}: {} (it is rebuilt by the next save)", index_of(session).string(), e.what());
        }
    }

    [[nodiscard]] std::optional<Index> read_index(const std::string& session) const {
        std::string b;
        try {
            b = detail::read_file(index_of(session), opts_.max_file_bytes);
        } catch (const Error&) {
            return std::nullopt;
        }
        if (b.size() < 48 || std::memcmp(b.data(), index_magic, 8) != 0 || get32(b.data() + 8) != 1) return std::nullopt;
        if (get64(b.data() + b.size() - 8) != detail::xxh3(std::string_view(b.data(), b.size() - 8))) return std::nullopt;
        Index idx;
        idx.ino = get64(b.data() + 16);
        idx.covered = get64(b.data() + 24);
        const std::uint64_t n = get64(b.data() + 32);
        if (n != (b.size() - 48) / 16 || (b.size() - 48) % 16 != 0) return std::nullopt;
        for (std::uint64_t i = 0; i < n; ++i)
            idx.entries.emplace_back(get64(b.data() + 40 + 16 * i), get64(b.data() + 48 + 16 * i));
        return idx;
    }

    /// The index, if it describes the live file exactly as it is now.
    [[nodiscard]] std::optional<Index> fresh_index(const std::string& session, const struct stat& st) const {
        auto idx = read_index(session);
        if (!idx || idx->ino != static_cast<std::uint64_t>(st.st_ino) ||
            idx->covered != static_cast<std::uint64_t>(st.st_size))
            return std::nullopt;
        return idx;
    }

    /// Read and check the record at `off` (expected sequence `seq`) with pread.
    [[nodiscard]] std::optional<std::pair<std::string, Rec>> read_record_at(int fd, std::uint64_t size, std::uint64_t off,
                                                                           std::uint64_t seq) const {
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

    std::optional<LoadResult> load_via_index(const std::string& session) const {
        const auto path = live_of(session);
        detail::unique_fd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK));
        if (!fd) return std::nullopt;
        struct stat st {};
        if (::fstat(fd.get(), &st) != 0 || !S_ISREG(st.st_mode)) return std::nullopt;
        auto idx = fresh_index(session, st);
        if (!idx || idx->entries.empty()) return std::nullopt;
        const auto [off, seq] = idx->entries.back();
        auto rec = read_record_at(fd.get(), static_cast<std::uint64_t>(st.st_size), off, seq);
        if (!rec || rec->second.end() != static_cast<std::uint64_t>(st.st_size)) return std::nullopt;
        const std::string what = path.string() + " record at offset " + std::to_string(off);
        LoadResult r;
        try {
            r.doc = detail::binary_decode(decompress(rec->first, rec->second, off, path.string(), opts_.max_file_bytes),
                                          what);
        } catch (const Error&) {
            return std::nullopt; // the slow path reports it
        }
        r.meta = rec->second.meta;
        r.sequence = seq;
        r.source = what;
        return r;
    }

    /// Metadata of the newest good record (index first, else a scan).
    [[nodiscard]] std::optional<Rec> last_record_info(const std::string& session) const {
        const auto path = live_of(session);
        detail::unique_fd fd;
        try {
            fd = detail::open_regular(path);
        } catch (const Error& e) {
            if (e.code() == errc::not_found) return std::nullopt;
            throw;
        }
        struct stat st {};
        if (::fstat(fd.get(), &st) != 0) detail::throw_io("stat", path, errno);
        if (auto idx = fresh_index(session, st); idx && !idx->entries.empty()) {
            const auto [off, seq] = idx->entries.back();
            if (auto rec = read_record_at(fd.get(), static_cast<std::uint64_t>(st.st_size), off, seq)) return rec->second;
        }
        const auto data = detail::read_file(path, opts_.max_file_bytes);
        auto sc = scan_bytes(data);
        if (!sc.header_problem.empty())
            throw Error(errc::corrupt, path.string() + " is damaged: " + sc.header_problem);
        if (const Rec* r = sc.last_ok()) return *r;
        if (sc.recs.empty() && sc.tail_problem.empty()) return std::nullopt;
        throw Error(errc::corrupt, path.string() + " has no valid record");
    }

    /// With the writer lock held: make sure the live file exists with a good
    /// header, move a damaged tail aside, and describe what is there.
    LiveState prepare_live(const std::string& session) {
        const auto path = live_of(session);
        struct stat st {};
        if (::stat(path.c_str(), &st) != 0) {
            if (errno != ENOENT) detail::throw_io("stat", path, errno);
            detail::write_file_atomic(path, make_file_header(0), opts_.fsync,
                                      [&](const detail::FileId& id) { expect_live(session, id); });
            LiveState ls;
            write_index(session, {}, file_header_bytes);
            return ls;
        }
        LiveState ls;
        if (auto idx = fresh_index(session, st)) {
            ls.size = idx->covered;
            ls.offsets = idx->entries;
            bool last_ok = true;
            if (!ls.offsets.empty()) {
                ls.last_seq = ls.offsets.back().second;
                detail::unique_fd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK));
                if (fd) {
                    if (auto r = read_record_at(fd.get(), ls.size, ls.offsets.front().first, ls.offsets.front().second))
                        ls.first_day = day_of(r->second.meta.saved_at);
                    // A fresh index says nothing about bytes damaged in place:
                    // check the last record, else scan (and move damage aside).
                    last_ok = read_record_at(fd.get(), ls.size, ls.offsets.back().first, ls.offsets.back().second)
                                  .has_value();
                }
            }
            if (last_ok) return ls;
            ls = LiveState{};
        }
        const auto data = detail::read_file(path, opts_.max_file_bytes);
        auto sc = scan_bytes(data);
        if (!sc.header_problem.empty()) {
            const auto aside = path.string() + ".corrupt-" + now_stamp();
            log_warn("{} is damaged ({}); moved aside to {} and starting a new live file", path.string(),
                     sc.header_problem, aside);
            if (::rename(path.c_str(), aside.c_str()) != 0) detail::throw_io("move aside damaged file", path, errno);
            return prepare_live(session);
        }
        if (sc.valid_end < data.size()) {
            const auto aside = path.string() + ".corrupt-" + now_stamp();
            std::string why = sc.tail_problem;
            for (const auto& r : sc.recs)
                if (r.offset >= sc.valid_end && !r.ok) {
                    why = r.problem;
                    break;
                }
            log_warn("{}: damaged tail of {} bytes at offset {} ({}); copied to {} and cut off", path.string(),
                     data.size() - sc.valid_end, sc.valid_end, why, aside);
            detail::write_file_atomic(aside, std::string_view(data).substr(sc.valid_end), opts_.fsync);
            if (::truncate(path.c_str(), static_cast<off_t>(sc.valid_end)) != 0) detail::throw_io("truncate", path, errno);
            if (opts_.fsync) {
                detail::unique_fd fd(::open(path.c_str(), O_WRONLY | O_CLOEXEC));
                if (fd && ::fsync(fd.get()) != 0) detail::throw_io("fsync", path, errno);
            }
        }
        ls.size = sc.valid_end;
        for (const auto& r : sc.recs)
            if (r.ok && r.end() <= sc.valid_end) {
                ls.offsets.emplace_back(r.offset, r.seq);
                if (ls.first_day.empty()) ls.first_day = day_of(r.meta.saved_at);
                ls.last_seq = r.seq;
            }
        write_index(session, ls.offsets, ls.size);
        return ls;
    }

    /// Replace the live file by `header + records` atomically and re-index.
    void rewrite_live(const std::string& session, const std::string& data, const std::vector<const Rec*>& keep) {
        std::string out = make_file_header(0);
        std::vector<std::pair<std::uint64_t, std::uint64_t>> idx;
        for (const Rec* r : keep) {
            idx.emplace_back(out.size(), r->seq);
            out.append(data, r->offset, r->length);
        }
        detail::write_file_atomic(live_of(session), out, opts_.fsync,
                                  [&](const detail::FileId& id) { expect_live(session, id); });
        write_index(session, idx, out.size());
    }

    /// Thin the live history: keep every keep_every_nth record and the newest.
    void thin(const std::string& session) {
        const auto path = live_of(session);
        const auto data = detail::read_file(path, opts_.max_file_bytes);
        auto sc = scan_bytes(data);
        std::vector<const Rec*> good;
        for (const auto& r : sc.recs)
            if (r.ok) good.push_back(&r);
        std::vector<const Rec*> keep;
        for (std::size_t i = 0; i < good.size(); ++i)
            if (i + 1 == good.size() || i % static_cast<std::size_t>(cfg_.keep_every_nth) == 0) keep.push_back(good[i]);
        rewrite_live(session, data, keep);
        if (opts_.logger)
            opts_.logger->info("{}: thinned history from {} to {} records (max_live_records = {}, keep_every_nth = {})",
                               path.string(), good.size(), keep.size(), cfg_.max_live_records, cfg_.keep_every_nth);
    }

    /// With the writer lock held: move every record but the newest into
    /// archive/<session>-<day>.tsarc, restart the live file from the newest,
    /// and delete archives older than keep_archive_days.
    /// Move the snapshots of completed trading days — days before `today`
    /// (empty: the day of the newest snapshot, the session's current
    /// trading day) — into one archive file per day. The newest snapshot
    /// always stays in the live file.
    std::string archive_locked(const std::string& session, std::string today) {
        const auto path = live_of(session);
        const auto data = detail::read_file(path, opts_.max_file_bytes);
        auto sc = scan_bytes(data);
        std::vector<const Rec*> good;
        for (const auto& r : sc.recs)
            if (r.ok) good.push_back(&r);
        if (good.empty()) return "session '" + session + "': nothing to archive (the live file holds no snapshot)";
        if (today.empty()) today = day_of(good.back()->meta.saved_at);
        std::map<std::string, std::vector<const Rec*>> by_day;
        std::vector<const Rec*> keep;
        for (std::size_t i = 0; i < good.size(); ++i) {
            auto d = day_of(good[i]->meta.saved_at);
            if (d.empty()) d = "0000-00-00";
            if (i + 1 < good.size() && d < today) by_day[d].push_back(good[i]);
            else keep.push_back(good[i]);
        }
        if (by_day.empty())
            return "session '" + session + "': nothing to archive (the live file's " + std::to_string(good.size()) +
                   " snapshot(s) are of " + (today.empty() ? std::string("the current trading day") : today) +
                   ", the current trading day)";
        std::error_code ec;
        fs::create_directories(archive_dir(), ec);
        if (ec) throw Error(errc::io, "cannot create " + archive_dir().string() + ": " + ec.message());
        std::size_t moved = 0;
        for (const auto& [day, recs] : by_day) {
            const auto target = archive_dir() / (session + "-" + day + suffix);
            // Merge with what an earlier archive() of the same day wrote.
            std::map<std::uint64_t, std::string> merged;
            std::string old;
            try {
                old = detail::read_file(target, opts_.max_file_bytes);
            } catch (const Error& e) {
                if (e.code() != errc::not_found) throw;
            }
            if (!old.empty()) {
                auto osc = scan_bytes(old);
                for (const auto& r : osc.recs)
                    if (r.ok) merged.emplace(r.seq, old.substr(r.offset, r.length));
            }
            for (const Rec* r : recs) merged[r->seq] = data.substr(r->offset, r->length);
            std::string out = make_file_header(flag_closed);
            for (const auto& [seq, bytes] : merged) out += bytes;
            detail::write_file_atomic(target, out, opts_.fsync);
            moved += recs.size();
        }
        rewrite_live(session, data, keep);
        std::string summary = "session '" + session + "': archived " + std::to_string(moved) + " snapshot(s) of " +
                              std::to_string(by_day.size()) + " completed day(s) under " + archive_dir().string() +
                              "; the live file keeps " + std::to_string(keep.size()) + " snapshot(s), from sequence " +
                              std::to_string(keep.front()->seq);
        // Retention.
        const auto newest_day = day_of(good.back()->meta.saved_at);
        if (cfg_.keep_archive_days > 0 && !newest_day.empty()) {
            const long cutoff = day_number(newest_day) - cfg_.keep_archive_days;
            std::size_t deleted = 0;
            for (const auto& [day, file] : archive_files(session)) {
                if (day == "0000-00-00") continue;
                if (day_number(day) < cutoff && ::unlink(file.c_str()) == 0) ++deleted;
            }
            if (deleted)
                summary += "; deleted " + std::to_string(deleted) + " archive file(s) older than " +
                           std::to_string(cfg_.keep_archive_days) + " days";
        }
        if (opts_.logger) opts_.logger->info("{}", summary);
        return summary;
    }

    /// The live file a write is about to put in place (before its rename).
    void expect_live(const std::string& session, const detail::FileId& id) {
        std::lock_guard lk(known_mu_);
        auto& v = known_[session];
        v.push_back(id);
        if (v.size() > 4) v.erase(v.begin());
    }

    /// The newest snapshot in the session's day archives.
    [[nodiscard]] std::optional<LoadResult> load_newest_archived(const std::string& session) const {
        auto arch = archive_files(session);
        for (auto it = arch.rbegin(); it != arch.rend(); ++it) {
            std::string data;
            try {
                data = detail::read_file(it->second, opts_.max_file_bytes);
            } catch (const Error&) {
                continue;
            }
            auto sc = scan_bytes(data);
            if (!sc.header_problem.empty()) continue;
            for (auto r = sc.recs.rbegin(); r != sc.recs.rend(); ++r) {
                if (!r->ok) continue;
                const std::string what = it->second.string() + " record at offset " + std::to_string(r->offset);
                try {
                    LoadResult lr;
                    lr.doc = detail::binary_decode(decompress(data, *r, 0, it->second.string(), opts_.max_file_bytes), what);
                    lr.meta = r->meta;
                    lr.sequence = r->seq;
                    lr.source = what;
                    return lr;
                } catch (const Error&) {
                    continue;
                }
            }
        }
        return std::nullopt;
    }

    BackendOptions opts_;
    Settings cfg_;
    std::mutex known_mu_;
    std::map<std::string, std::vector<detail::FileId>> known_; ///< session -> live files this process wrote
};

} // namespace
} // namespace tradestate::compressed_archive

namespace tradestate_plugin_compressed_archive {
inline std::unique_ptr<tradestate::Backend> make(const tradestate::BackendOptions& opts) {
    return std::make_unique<tradestate::compressed_archive::ArchiveBackend>(opts);
}
} // namespace tradestate_plugin_compressed_archive

TRADESTATE_PLUGIN("compressed-archive", tradestate_plugin_compressed_archive::make, tradestate::plugin_storage::state_dir)
