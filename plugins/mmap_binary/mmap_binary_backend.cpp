// tradestate backend plugin "mmap-binary": one memory-mapped file per
// session with two slots A/B (the LMDB idea). A save writes the slot that
// does not hold the newest valid state, flushes it, then writes that slot's
// descriptor with a higher sequence number. A load takes the valid slot with
// the highest sequence. File layout: docs/format-mmap-binary.md.
#include <tradestate/backend.hpp>
#include <tradestate/detail/atomic_file.hpp>
#include <tradestate/detail/binary_doc.hpp>
#include <tradestate/detail/checksum.hpp>
#include <tradestate/detail/endian.hpp>
#include <tradestate/detail/file_lock.hpp>
#include <tradestate/detail/session_name.hpp>
#include <tradestate/plugin.hpp>

#include <spdlog/spdlog.h>

#include <algorithm>
#include <array>
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
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

namespace tradestate::mmap_binary {
namespace {

namespace fs = std::filesystem;

// ---- layout (all integers little-endian) ------------------------------------
constexpr char file_magic[8] = {'T', 'S', 'M', 'M', 'A', 'P', '0', '1'};
constexpr std::uint32_t format_version = 1;
constexpr std::uint64_t header_bytes = 4096;     // page 0: file header + both descriptors
constexpr std::size_t file_header_used = 64;     // checksum at 56 covers [0, 56)
constexpr std::size_t desc_bytes = 512;          // one descriptor, one 512-byte sector
constexpr std::size_t desc_offset[2] = {512, 1024};
constexpr std::size_t desc_saved_at_at_v1 = 72;
// Descriptor variant 2 (tradestate 0.3): the session envelope (lineage,
// journal id, journal seq) at 72..96, saved_at from 96. Marked by '2' in
// byte 1 of the slot word, so older readers see "another slot" and never
// misread it.
constexpr std::size_t desc_envelope_at = 72;
constexpr std::size_t desc_saved_at_at = 96;
constexpr std::uint32_t desc_variant2 = 0x3200; // '2' << 8
constexpr std::size_t desc_checksum_at = desc_bytes - 8; // covers [0, 504)
constexpr std::size_t max_saved_at = desc_checksum_at - desc_saved_at_at;
constexpr std::uint64_t region_align = 4096;
constexpr const char* suffix = ".tsmm";

void put32(unsigned char* p, std::uint32_t v) { detail::store_le(p, v); }
void put64(unsigned char* p, std::uint64_t v) { detail::store_le(p, v); }
std::uint32_t get32(const unsigned char* p) { return detail::get_u32(p); }
std::uint64_t get64(const unsigned char* p) { return detail::get_u64(p); }
std::uint64_t align_up(std::uint64_t v) { return (v + region_align - 1) / region_align * region_align; }
char slot_name(int s) { return s == 0 ? 'A' : 'B'; }

std::string file_header_bytes() {
    std::string h(header_bytes, '\0');
    auto* p = reinterpret_cast<unsigned char*>(h.data());
    std::memcpy(p, file_magic, 8);
    put32(p + 8, format_version);
    put32(p + 12, plugin_abi_version);
    put32(p + 16, static_cast<std::uint32_t>(header_bytes));
    put32(p + 20, static_cast<std::uint32_t>(desc_bytes));
    put32(p + 24, static_cast<std::uint32_t>(desc_offset[0]));
    put32(p + 28, static_cast<std::uint32_t>(desc_offset[1]));
    put64(p + 56, detail::xxh3(p, 56));
    return h;
}

/// Why the file header is unusable, or empty if it is fine.
std::string check_file_header(const unsigned char* p, std::uint64_t size) {
    if (size < header_bytes)
        return "the file is " + std::to_string(size) + " bytes, shorter than its " + std::to_string(header_bytes) +
               "-byte header (truncated)";
    if (std::memcmp(p, file_magic, 8) != 0) return "bad magic (not an mmap-binary state file)";
    if (get64(p + 56) != detail::xxh3(p, 56)) return "file header checksum mismatch";
    if (get32(p + 8) != format_version)
        return "format version " + std::to_string(get32(p + 8)) + " is not supported (this plugin reads version " +
               std::to_string(format_version) + ")";
    if (get32(p + 16) != header_bytes || get32(p + 20) != desc_bytes || get32(p + 24) != desc_offset[0] ||
        get32(p + 28) != desc_offset[1])
        return "unexpected header geometry";
    return {};
}

/// One slot descriptor, decoded.
struct Slot {
    enum class State { empty, valid, bad } st = State::empty;
    std::string reason;           // when bad
    bool desc_ok = false;         // descriptor checksum verified (its fields are trustworthy)
    std::uint64_t sequence = 0, offset = 0, capacity = 0, length = 0, payload_hash = 0;
    SaveMeta meta;
};

Slot parse_desc(const unsigned char* d, int s, std::uint64_t file_size) {
    Slot r;
    bool all_zero = true;
    for (std::size_t i = 0; i < desc_bytes; ++i)
        if (d[i] != 0) { all_zero = false; break; }
    if (all_zero) return r; // never written
    auto bad = [&](std::string why) {
        r.st = Slot::State::bad;
        r.reason = std::move(why);
        return r;
    };
    if (get64(d + desc_checksum_at) != detail::xxh3(d, desc_checksum_at)) return bad("descriptor checksum mismatch");
    const std::uint32_t word = get32(d);
    const bool v2 = word == (static_cast<std::uint32_t>(slot_name(s)) | desc_variant2);
    if (!v2 && word != static_cast<std::uint32_t>(slot_name(s))) return bad("descriptor names another slot");
    r.desc_ok = true;
    const std::uint32_t sl = get32(d + 4);
    r.sequence = get64(d + 8);
    r.offset = get64(d + 16);
    r.capacity = get64(d + 24);
    r.length = get64(d + 32);
    r.meta.iteration = static_cast<std::int64_t>(get64(d + 40));
    r.meta.positions = static_cast<std::int64_t>(get64(d + 48));
    r.meta.cash_paise = static_cast<std::int64_t>(get64(d + 56));
    r.payload_hash = get64(d + 64);
    const std::size_t at = v2 ? desc_saved_at_at : desc_saved_at_at_v1;
    if (sl > desc_checksum_at - at) return bad("saved_at length out of range");
    r.meta.saved_at.assign(reinterpret_cast<const char*>(d + at), sl);
    if (v2) {
        r.meta.lineage = get64(d + desc_envelope_at);
        r.meta.journal_id = get64(d + desc_envelope_at + 8);
        r.meta.journal_seq = get64(d + desc_envelope_at + 16);
    }
    if (r.sequence == 0) return bad("sequence number 0");
    if (r.offset < header_bytes || r.length > r.capacity || r.capacity > UINT64_MAX - r.offset)
        return bad("payload region out of range (offset " + std::to_string(r.offset) + ", length " +
                   std::to_string(r.length) + ")");
    if (r.offset + r.length > file_size)
        return bad("payload at offset " + std::to_string(r.offset) + " of " + std::to_string(r.length) +
                   " bytes extends beyond the end of the " + std::to_string(file_size) + "-byte file (truncated)");
    r.st = Slot::State::valid; // payload still to be checked
    return r;
}

std::string encode_desc(int s, std::uint64_t seq, std::uint64_t off, std::uint64_t cap, std::uint64_t len,
                        std::uint64_t payload_hash, const SaveMeta& m) {
    std::string out(desc_bytes, '\0');
    auto* d = reinterpret_cast<unsigned char*>(out.data());
    put32(d, static_cast<std::uint32_t>(slot_name(s)) | desc_variant2);
    put32(d + 4, static_cast<std::uint32_t>(m.saved_at.size()));
    put64(d + 8, seq);
    put64(d + 16, off);
    put64(d + 24, cap);
    put64(d + 32, len);
    put64(d + 40, static_cast<std::uint64_t>(m.iteration));
    put64(d + 48, static_cast<std::uint64_t>(m.positions));
    put64(d + 56, static_cast<std::uint64_t>(m.cash_paise));
    put64(d + 64, payload_hash);
    put64(d + desc_envelope_at, m.lineage);
    put64(d + desc_envelope_at + 8, m.journal_id);
    put64(d + desc_envelope_at + 16, m.journal_seq);
    std::memcpy(d + desc_saved_at_at, m.saved_at.data(), m.saved_at.size());
    put64(d + desc_checksum_at, detail::xxh3(d, desc_checksum_at));
    return out;
}

/// A read-only or read-write MAP_SHARED mapping of a whole file.
class Mapping {
public:
    Mapping() = default;
    Mapping(int fd, std::uint64_t size, bool writable, const fs::path& p) : size_(size) {
        if (size == 0) return;
        void* m = ::mmap(nullptr, size, writable ? PROT_READ | PROT_WRITE : PROT_READ, MAP_SHARED, fd, 0);
        if (m == MAP_FAILED) detail::throw_io("memory-map", p, errno);
        p_ = static_cast<unsigned char*>(m);
    }
    Mapping(Mapping&& o) noexcept : p_(std::exchange(o.p_, nullptr)), size_(std::exchange(o.size_, 0)) {}
    Mapping& operator=(Mapping&& o) noexcept {
        if (this != &o) {
            reset();
            p_ = std::exchange(o.p_, nullptr);
            size_ = std::exchange(o.size_, 0);
        }
        return *this;
    }
    Mapping(const Mapping&) = delete;
    Mapping& operator=(const Mapping&) = delete;
    ~Mapping() { reset(); }
    void reset() noexcept {
        if (p_) ::munmap(p_, size_);
        p_ = nullptr;
        size_ = 0;
    }
    [[nodiscard]] unsigned char* data() const noexcept { return p_; }
    [[nodiscard]] std::uint64_t size() const noexcept { return size_; }
    /// msync(MS_SYNC) of [off, off+len), widened to whole pages.
    void sync(std::uint64_t off, std::uint64_t len, const fs::path& p) const {
        if (len == 0) return;
        const auto page = static_cast<std::uint64_t>(::sysconf(_SC_PAGESIZE));
        const std::uint64_t start = off / page * page;
        if (::msync(p_ + start, off + len - start, MS_SYNC) != 0) detail::throw_io("msync", p, errno);
    }

private:
    unsigned char* p_ = nullptr;
    std::uint64_t size_ = 0;
};

/// The outcome of examining a file: both slots, payloads checked, newest chosen.
struct Examined {
    std::string header_problem; // non-empty: nothing in the file is trustworthy
    std::uint64_t file_size = 0;
    std::array<Slot, 2> slots;
    int newest = -1;            // index of the newest valid slot, -1 if none
    std::string payload;        // a private copy of the newest valid slot's payload (if wanted)
};

class MmapBinaryBackend final : public Backend {
public:
    explicit MmapBinaryBackend(const BackendOptions& o) : opts_(o) {}

    [[nodiscard]] std::string name() const override { return "mmap-binary"; }

    [[nodiscard]] bool stores_views() const override { return false; } // the host skips building them

    std::uint64_t save(const std::string& session, const Document& doc, const SaveMeta& meta) override {
        validate_session_name(session);
        if (meta.saved_at.size() > max_saved_at)
            throw Error(Errc::invalid_argument, "saved_at of session '" + session + "' is longer than " +
                                                    std::to_string(max_saved_at) + " bytes");
        const std::string payload = detail::binary_encode(doc.main);
        const auto path = file_of(session);
        ensure_dir();
        detail::unique_fd fd = open_for_write(path);
        // Serialise savers of this file (readers never lock).
        while (::flock(fd.get(), LOCK_EX) != 0)
            if (errno != EINTR) detail::throw_io("lock", path, errno);
        struct stat st {};
        if (::fstat(fd.get(), &st) != 0) detail::throw_io("stat", path, errno);
        auto size = static_cast<std::uint64_t>(st.st_size);

        Examined ex;
        {
            Mapping m(fd.get(), size, false, path);
            ex = examine_mapped(m, size, path, false);
        }
        if (!ex.header_problem.empty()) {
            // Nothing in this file can be trusted: keep it aside, start afresh.
            const auto aside = path.string() + ".corrupt-" + detail::utc_stamp();
            log_warn("{}: {}; moved aside to {} and starting a new file", path.string(), ex.header_problem, aside);
            if (::rename(path.c_str(), aside.c_str()) != 0) detail::throw_io("move aside damaged file", path, errno);
            fd.reset();
            forget(session);
            return save(session, doc, meta);
        }
        const int keep = ex.newest;                  // must stay intact
        // The slot about to be overwritten holds a state newer than the one
        // kept (or one whose descriptor is unreadable): that is damage, not an
        // interrupted save. Keep a copy of the whole file for inspection.
        for (const auto& s : ex.slots) {
            if (s.st != Slot::State::bad || (s.desc_ok && keep >= 0 && s.sequence <= ex.slots[static_cast<std::size_t>(keep)].sequence))
                continue;
            const auto aside = path.string() + ".corrupt-" + detail::utc_stamp();
            Mapping m(fd.get(), size, false, path);
            detail::write_file_atomic(aside, std::string_view(reinterpret_cast<const char*>(m.data()), size), opts_.fsync);
            log_warn("{}: a damaged slot ({}) is about to be overwritten; the file as it was is kept as {}", path.string(),
                     s.reason, aside);
            break;
        }
        const int w = keep < 0 ? 0 : 1 - keep;       // slot to write
        std::uint64_t seq = 0;
        for (const auto& s : ex.slots)
            if (s.desc_ok) seq = std::max(seq, s.sequence);
        ++seq;

        // Choose the region for slot w: reuse it if it fits and does not touch
        // the slot we keep, else place it where it overlaps nothing valid.
        const std::uint64_t need = payload.size();
        std::uint64_t off = 0, cap = 0;
        const Slot& ws = ex.slots[static_cast<std::size_t>(w)];
        const Slot* ks = keep >= 0 ? &ex.slots[static_cast<std::size_t>(keep)] : nullptr;
        auto overlaps_keep = [&](std::uint64_t o, std::uint64_t c) {
            return ks && o < ks->offset + ks->capacity && ks->offset < o + c;
        };
        if (ws.desc_ok && ws.capacity >= need && ws.offset >= header_bytes && !overlaps_keep(ws.offset, ws.capacity)) {
            off = ws.offset;
            cap = ws.capacity;
        } else {
            cap = align_up(std::max<std::uint64_t>(need + need / 2, region_align));
            if (!ks || ks->offset >= header_bytes + cap) off = header_bytes;
            else off = align_up(ks->offset + ks->capacity);
        }
        const std::uint64_t new_size = std::max(size, off + cap);
        if (new_size > opts_.max_file_bytes)
            throw Error(Errc::io, "cannot save session '" + session + "': " + path.string() + " would grow to " +
                                      std::to_string(new_size) + " bytes, over the limit of " +
                                      std::to_string(opts_.max_file_bytes) +
                                      " bytes (persistence.max_file_bytes); the previous state is unchanged");
        const bool grew = new_size > size;
        if (grew) {
            if (int e = ::posix_fallocate(fd.get(), 0, static_cast<off_t>(new_size)); e != 0) {
                if (e != EOPNOTSUPP && e != EINVAL) detail::throw_io("grow (posix_fallocate)", path, e);
                if (::ftruncate(fd.get(), static_cast<off_t>(new_size)) != 0) detail::throw_io("grow", path, errno);
            }
            size = new_size;
        }
        Mapping m(fd.get(), size, true, path);
        if (need) std::memcpy(m.data() + off, payload.data(), need);
        if (opts_.fsync) {
            m.sync(off, need, path);
            if (grew && ::fsync(fd.get()) != 0) detail::throw_io("fsync", path, errno);
        }
        // Publish: the descriptor of slot w, now with the highest sequence.
        const auto desc = encode_desc(w, seq, off, cap, need, detail::xxh3(payload), meta);
        std::memcpy(m.data() + desc_offset[w], desc.data(), desc_bytes);
        if (opts_.fsync) m.sync(desc_offset[w], desc_bytes, path);
        return seq;
    }

    [[nodiscard]] std::optional<LoadResult> load(const std::string& session) override {
        validate_session_name(session);
        const auto path = file_of(session);
        auto ex = examine(path, true);
        if (!ex) return std::nullopt;
        if (!ex->header_problem.empty())
            throw Error(Errc::corrupt, path.string() + " is damaged: " + ex->header_problem +
                                           "; no state can be read from it (restore it from a backup or move it aside)");
        LoadResult r;
        // A slot whose checksum held but whose payload does not decode is a
        // bad slot too: try the newest, then the other.
        for (int attempt = 0; attempt < 2 && ex->newest >= 0; ++attempt) {
            const int n = ex->newest;
            auto& s = ex->slots[static_cast<std::size_t>(n)];
            try {
                r.doc = detail::binary_decode(ex->payload, path.string() + " slot " + slot_name(n));
                r.meta = s.meta;
                r.sequence = s.sequence;
                r.source = path.string() + " slot " + slot_name(n);
                break;
            } catch (const Error& e) {
                s.st = Slot::State::bad;
                s.reason = e.what();
                ex->newest = -1;
                auto& o = ex->slots[static_cast<std::size_t>(1 - n)];
                if (o.st == Slot::State::valid) {
                    ex = examine(path, true, 1 - n);
                    if (!ex) return std::nullopt;
                    ex->slots[static_cast<std::size_t>(n)].st = Slot::State::bad;
                    ex->slots[static_cast<std::size_t>(n)].reason = e.what();
                }
            }
        }
        std::string reasons;
        for (int i = 0; i < 2; ++i) {
            const auto& s = ex->slots[static_cast<std::size_t>(i)];
            if (s.st != Slot::State::bad) continue;
            reasons += std::string(reasons.empty() ? "" : "; ") + "slot " + slot_name(i) + ": " + s.reason;
        }
        if (ex->newest < 0) {
            if (reasons.empty()) return std::nullopt; // created, never completed a save
            throw Error(Errc::corrupt, path.string() + " has no valid slot (" + reasons +
                                           "); the state cannot be loaded (restore it from a backup)");
        }
        const auto& chosen = ex->slots[static_cast<std::size_t>(ex->newest)];
        for (int i = 0; i < 2; ++i) {
            const auto& s = ex->slots[static_cast<std::size_t>(i)];
            if (s.st != Slot::State::bad) continue;
            const bool newer = !s.desc_ok || s.sequence > chosen.sequence;
            if (newer) r.recovered = true;
            std::string w = path.string() + ": slot " + slot_name(i) + " is unusable (" + s.reason + "); loaded slot " +
                            slot_name(ex->newest) + " (sequence " + std::to_string(chosen.sequence) + ")";
            r.warnings.push_back(std::move(w)); // the host reports it (once)
        }
        return r;
    }

    [[nodiscard]] std::vector<SessionInfo> list() override {
        std::vector<SessionInfo> out;
        for (const auto& [session, p] : detail::session_files(opts_.state_dir, suffix)) {
            std::optional<Examined> ex;
            try {
                ex = examine(p, false);
            } catch (const Error& e) {
                log_warn("{}", e.what());
                continue;
            }
            if (!ex) continue;
            SessionInfo si;
            si.session = session;
            si.location = p.string();
            if (!ex->header_problem.empty()) {
                log_warn("{} is damaged: {}", p.string(), ex->header_problem);
            } else if (ex->newest >= 0) {
                const auto& s = ex->slots[static_cast<std::size_t>(ex->newest)];
                si.meta = s.meta;
                si.sequence = s.sequence;
            } else {
                bool any_bad = false;
                for (const auto& s : ex->slots) any_bad = any_bad || s.st == Slot::State::bad;
                if (!any_bad) continue; // never saved
                log_warn("{} has no valid slot", p.string());
            }
            out.push_back(std::move(si));
        }
        return out; // by session name, as session_files() gives them
    }

    [[nodiscard]] bool exists(const std::string& session) override {
        validate_session_name(session);
        auto ex = examine(file_of(session), false);
        if (!ex) return false;
        if (!ex->header_problem.empty()) return true;
        for (const auto& s : ex->slots)
            if (s.st != Slot::State::empty) return true;
        return false;
    }

    bool remove(const std::string& session) override {
        validate_session_name(session);
        const auto path = file_of(session);
        if (::unlink(path.c_str()) != 0) {
            if (errno == ENOENT) return false;
            detail::throw_io("remove", path, errno);
        }
        if (opts_.fsync) detail::fsync_directory_after_remove(opts_.state_dir);
        return true;
    }

    [[nodiscard]] VerifyReport verify(const std::string& session) override {
        validate_session_name(session);
        VerifyReport rep;
        rep.session = session;
        const auto path = file_of(session);
        std::optional<Examined> ex;
        try {
            ex = examine(path, true);
        } catch (const Error& e) {
            rep.findings.push_back({Finding::Severity::error, path.string(), e.what()});
            return rep;
        }
        if (!ex) {
            rep.findings.push_back({Finding::Severity::error, path.string(), "no such file: session was never saved"});
            return rep;
        }
        if (!ex->header_problem.empty()) {
            rep.findings.push_back({Finding::Severity::error, path.string() + " header", ex->header_problem});
            return rep;
        }
        // A payload that passed its checksum must also decode.
        if (ex->newest >= 0) {
            const int n = ex->newest;
            try {
                (void)detail::binary_decode(ex->payload, path.string() + " slot " + slot_name(n));
            } catch (const Error& e) {
                ex->slots[static_cast<std::size_t>(n)].st = Slot::State::bad;
                ex->slots[static_cast<std::size_t>(n)].reason = e.what();
            }
        }
        // Check the other valid slot too (decode included).
        for (int i = 0; i < 2; ++i) {
            if (i == ex->newest || ex->slots[static_cast<std::size_t>(i)].st != Slot::State::valid) continue;
            auto other = examine(path, true, i);
            if (!other) break;
            auto& s = ex->slots[static_cast<std::size_t>(i)];
            s = other->slots[static_cast<std::size_t>(i)];
            if (other->newest == i) {
                try {
                    (void)detail::binary_decode(other->payload, path.string() + " slot " + slot_name(i));
                } catch (const Error& e) {
                    s.st = Slot::State::bad;
                    s.reason = e.what();
                }
            }
        }
        int valid = 0;
        for (const auto& s : ex->slots) valid += s.st == Slot::State::valid;
        for (int i = 0; i < 2; ++i) {
            const auto& s = ex->slots[static_cast<std::size_t>(i)];
            const std::string where = path.string() + " slot " + slot_name(i) + " (descriptor at offset " +
                                      std::to_string(desc_offset[i]) + ")";
            switch (s.st) {
            case Slot::State::empty:
                rep.findings.push_back({Finding::Severity::info, where, "empty (never written)"});
                break;
            case Slot::State::valid:
                rep.findings.push_back({Finding::Severity::info, where,
                                        "valid: sequence " + std::to_string(s.sequence) + ", " +
                                            std::to_string(s.length) + " payload bytes at offset " +
                                            std::to_string(s.offset) + ", saved_at " + s.meta.saved_at});
                break;
            case Slot::State::bad:
                rep.findings.push_back(
                    {valid > 0 ? Finding::Severity::warning : Finding::Severity::error, where, s.reason});
                break;
            }
        }
        if (valid == 0) {
            bool any_bad = false;
            for (const auto& s : ex->slots) any_bad = any_bad || s.st == Slot::State::bad;
            if (!any_bad)
                rep.findings.push_back({Finding::Severity::error, path.string(), "no state was ever saved in this file"});
        }
        return rep;
    }

    [[nodiscard]] std::unique_ptr<WriterLease> acquire_writer(const std::string& session) override {
        validate_session_name(session);
        ensure_dir();
        return detail::take_session_lease(opts_.state_dir, session);
    }

    [[nodiscard]] std::size_t fallback_depth() const override { return 2; } // the two slots

    /// The file is still the one this process wrote (or found at its first check).
    [[nodiscard]] bool in_place(const std::string& session) override {
        return written_.in_place(session, file_of(session));
    }

    void rename(const std::string& from, const std::string& to) override {
        validate_session_name(from);
        validate_session_name(to);
        const auto a = file_of(from), b = file_of(to);
        if (detail::file_id(b))
            throw Error(Errc::invalid_argument, "cannot rename session '" + from + "' to '" + to + "': " + b.string() +
                                                    " exists");
        std::vector<fs::path> aside;
        std::error_code ec;
        const std::string prefix = a.filename().string() + ".corrupt-";
        for (auto it = fs::directory_iterator(opts_.state_dir, ec); !ec && it != fs::directory_iterator(); it.increment(ec))
            if (it->path().filename().string().rfind(prefix, 0) == 0) aside.push_back(it->path());
        if (detail::file_id(a) && ::rename(a.c_str(), b.c_str()) != 0) detail::throw_io("rename " + a.string() + " to", b, errno);
        for (const auto& x : aside) {
            const auto to_name = opts_.state_dir / (b.filename().string() + x.filename().string().substr(a.filename().string().size()));
            if (::rename(x.c_str(), to_name.c_str()) != 0) detail::throw_io("rename " + x.string() + " to", to_name, errno);
        }
        if (opts_.fsync) detail::fsync_directory(opts_.state_dir);
        forget(from);
        forget(to);
    }

private:
    template <typename... A>
    void log_warn(fmt::format_string<A...> f, A&&... a) const {
        if (opts_.logger) opts_.logger->warn(f, std::forward<A>(a)...);
    }

    [[nodiscard]] fs::path file_of(const std::string& session) const { return opts_.state_dir / (session + suffix); }

    void forget(const std::string& session) { written_.forget(session); }
    void know(const fs::path& path, const detail::FileId& id) { written_.expect(path.stem().string(), id); }

    void ensure_dir() const {
        std::error_code ec;
        fs::create_directories(opts_.state_dir, ec);
        if (ec) throw Error(Errc::io, "cannot create state directory " + opts_.state_dir.string() + ": " + ec.message());
    }

    /// Open the session file for writing, creating it (header only) if absent.
    /// The new file is made complete under a temporary name and linked into
    /// place, so no one ever sees a file without its header.
    detail::unique_fd open_for_write(const fs::path& path) {
        for (int round = 0; round < 3; ++round) {
            detail::unique_fd fd(::open(path.c_str(), O_RDWR | O_CLOEXEC | O_NONBLOCK));
            if (fd) {
                detail::require_regular(fd.get(), path);
                return fd;
            }
            if (errno != ENOENT) detail::throw_io("open", path, errno);
            const auto tmp = detail::temp_path_for(path);
            {
                detail::unique_fd t(::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644));
                if (!t) detail::throw_io("create", tmp, errno);
                const auto h = file_header_bytes();
                int e = detail::write_all(t.get(), h.data(), h.size());
                if (!e && opts_.fsync && ::fsync(t.get()) != 0) e = errno;
                if (e) {
                    ::unlink(tmp.c_str());
                    detail::throw_io("write", tmp, e);
                }
                struct stat st {};
                if (::fstat(t.get(), &st) == 0) know(path, detail::FileId{st.st_dev, st.st_ino}); // before it takes the name
            }
            const int rc = ::link(tmp.c_str(), path.c_str());
            const int e = errno;
            ::unlink(tmp.c_str());
            if (rc != 0 && e != EEXIST) detail::throw_io("create", path, e);
            if (rc == 0 && opts_.fsync) detail::fsync_directory(path.parent_path());
        }
        detail::throw_io("open", path, ENOENT);
    }

    /// Examine a mapped file: header, both descriptors, and (if `copy`) a
    /// verified private copy of the newest valid payload. `only` >= 0 limits
    /// the candidate slots to that one.
    static Examined examine_mapped(const Mapping& m, std::uint64_t size, const fs::path& path, bool copy,
                                   int only = -1) {
        (void)path;
        Examined ex;
        ex.file_size = size;
        ex.header_problem = check_file_header(m.data(), size);
        if (!ex.header_problem.empty()) return ex;
        for (int i = 0; i < 2; ++i) ex.slots[static_cast<std::size_t>(i)] = parse_desc(m.data() + desc_offset[i], i, size);
        // Candidates, newest first.
        std::array<int, 2> order{0, 1};
        if (ex.slots[1].sequence > ex.slots[0].sequence) order = {1, 0};
        for (int i : order) {
            auto& s = ex.slots[static_cast<std::size_t>(i)];
            if (s.st != Slot::State::valid) continue;
            if (only >= 0 && i != only) continue;
            if (ex.newest >= 0) continue; // older valid slot: payload checked only when asked for
            const unsigned char* p = m.data() + s.offset;
            if (copy) {
                std::string buf(reinterpret_cast<const char*>(p), s.length);
                if (detail::xxh3(buf) != s.payload_hash) {
                    s.st = Slot::State::bad;
                    s.reason = "payload checksum mismatch (" + std::to_string(s.length) + " bytes at offset " +
                               std::to_string(s.offset) + ")";
                    continue;
                }
                ex.payload = std::move(buf);
            } else if (detail::xxh3(p, s.length) != s.payload_hash) {
                s.st = Slot::State::bad;
                s.reason = "payload checksum mismatch (" + std::to_string(s.length) + " bytes at offset " +
                           std::to_string(s.offset) + ")";
                continue;
            }
            ex.newest = i;
        }
        return ex;
    }

    /// Examine the file at `path` without locking. A writer may be saving at
    /// the same time: the result is accepted only when both descriptors and the
    /// file size were the same before and after (a writer always rewrites a
    /// descriptor after the payload it covers), otherwise it is retried.
    /// nullopt if the file does not exist.
    std::optional<Examined> examine(const fs::path& path, bool copy, int only = -1) const {
        detail::unique_fd fd;
        try {
            fd = detail::open_regular(path);
        } catch (const Error& e) {
            if (e.code() == Errc::not_found) return std::nullopt;
            throw;
        }
        Examined ex;
        for (int attempt = 0; attempt < 1000; ++attempt) {
            struct stat st {};
            if (::fstat(fd.get(), &st) != 0) detail::throw_io("stat", path, errno);
            const auto size = static_cast<std::uint64_t>(st.st_size);
            if (size > opts_.max_file_bytes)
                throw Error(Errc::corrupt, path.string() + " is " + std::to_string(size) +
                                               " bytes, over the limit of " + std::to_string(opts_.max_file_bytes) +
                                               " bytes (persistence.max_file_bytes)");
            Mapping m(fd.get(), size, false, path);
            std::string before;
            if (size >= header_bytes) before.assign(reinterpret_cast<const char*>(m.data()) + desc_offset[0], 2 * desc_bytes);
            ex = examine_mapped(m, size, path, copy, only);
            struct stat st2 {};
            if (::fstat(fd.get(), &st2) != 0) detail::throw_io("stat", path, errno);
            const bool stable = st2.st_size == st.st_size &&
                                (size < header_bytes ||
                                 std::memcmp(before.data(), m.data() + desc_offset[0], 2 * desc_bytes) == 0);
            if (stable) return ex;
            ::sched_yield();
        }
        return ex;
    }

    BackendOptions opts_;
    detail::WrittenFiles written_{1}; ///< the file this process writes, per session
};

std::unique_ptr<Backend> create_backend(const BackendOptions& opts) { return std::make_unique<MmapBinaryBackend>(opts); }

} // namespace
} // namespace tradestate::mmap_binary

TRADESTATE_PLUGIN("mmap-binary", tradestate::mmap_binary::create_backend, tradestate::PluginStorage::state_dir)
