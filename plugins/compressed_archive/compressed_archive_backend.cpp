// tradestate backend plugin "compressed-archive": per session an append-only
// file of zstd-compressed snapshots with full history, an index for fast
// seek, time travel (load_at), daily archiving into state/archive/ and
// compaction. File layout and policy: docs/format-compressed-archive.md.
//
// The record format is format.hpp, the session's files files.hpp, the index
// index.hpp, the live file's upkeep (damage, thinning, archiving, retention)
// live_file.hpp, the settings settings.hpp; this file is the backend.
#include "files.hpp"
#include "format.hpp"
#include "index.hpp"
#include "live_file.hpp"
#include "settings.hpp"

#include <tradestate/backend.hpp>
#include <tradestate/detail/atomic_file.hpp>
#include <tradestate/detail/binary_doc.hpp>
#include <tradestate/detail/file_lock.hpp>
#include <tradestate/detail/session_name.hpp>
#include <tradestate/plugin.hpp>

#include <spdlog/spdlog.h>
#include <zstd.h>

#include <algorithm>
#include <cstring>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

namespace tradestate::compressed_archive {
namespace {

class CompressedArchiveBackend final : public Backend {
public:
    explicit CompressedArchiveBackend(const BackendOptions& o) : opts_(o), cfg_(parse_settings(o.settings)) {}

    [[nodiscard]] std::string name() const override { return "compressed-archive"; }

    [[nodiscard]] bool stores_views() const override { return false; } // the host skips building them
    [[nodiscard]] bool has_history() const override { return true; }

    std::uint64_t save(const std::string& session, const Document& doc, const SaveMeta& meta) override {
        validate_session_name(session);
        if (meta.saved_at.size() > 4096)
            throw Error(Errc::invalid_argument, "saved_at of session '" + session + "' is longer than 4096 bytes");
        const std::string raw = detail::binary_encode(doc.main);
        std::string comp(ZSTD_compressBound(raw.size()), '\0');
        const std::size_t n = ZSTD_compress(comp.data(), comp.size(), raw.data(), raw.size(), cfg_.compression_level);
        if (ZSTD_isError(n))
            throw Error(Errc::io, "cannot compress session '" + session + "': " + ZSTD_getErrorName(n));
        comp.resize(n);

        ensure_dir();
        const auto path = live_of(session);
        FlockGuard lock(lock_of(session), true);
        auto st = live_file(session).prepare();

        std::uint64_t last_seq = st.last_seq;
        if (cfg_.archive_daily && !st.first_day.empty()) {
            const auto d = day_of(meta.saved_at);
            if (!d.empty() && d > st.first_day) {
                (void)live_file(session).archive(d); // every earlier day is complete now
                st = live_file(session).prepare();
            }
        }
        const std::string rec = make_record(last_seq + 1, meta, comp, raw.size());
        if (st.size + rec.size() > opts_.max_file_bytes)
            throw Error(Errc::io, "cannot save session '" + session + "': " + path.string() + " would grow to " +
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
        if (cfg_.max_live_records > 0 && static_cast<std::int64_t>(st.offsets.size()) > cfg_.max_live_records) live_file(session).thin();
        else write_index(files(session), st.offsets, st.size, opts_.logger.get());
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
            if (e.code() == Errc::not_found) return std::nullopt;
            throw;
        }
        auto sc = scan_bytes(data);
        if (!sc.header_problem.empty())
            throw Error(Errc::corrupt, path.string() + " is damaged: " + sc.header_problem +
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
            const auto idx = read_index(index_of(session), opts_.max_file_bytes);
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
            throw Error(Errc::corrupt, path.string() + " has no valid record (" + all +
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
        for (const auto& [session, p] : detail::session_files(opts_.state_dir, suffix)) {
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
        return out; // by session name, as session_files() gives them
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
        if (opts_.fsync) detail::fsync_directory_after_remove(opts_.state_dir);
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
                rep.findings.push_back({Finding::Severity::error, p.string(), e.what()});
                return;
            }
            auto sc = scan_bytes(data);
            if (!sc.header_problem.empty()) {
                rep.findings.push_back({Finding::Severity::error, p.string() + " header", sc.header_problem});
                return;
            }
            std::size_t good = 0;
            for (const auto& r : sc.recs) {
                const std::string where = p.string() + " offset " + std::to_string(r.offset);
                if (!r.ok) {
                    rep.findings.push_back({Finding::Severity::error, where, r.problem});
                    continue;
                }
                try {
                    (void)detail::binary_decode(decompress(data, r, 0, p.string(), opts_.max_file_bytes), where);
                    ++good;
                } catch (const Error& e) {
                    rep.findings.push_back({Finding::Severity::error, where, e.what()});
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
                rep.findings.push_back({interrupted ? Finding::Severity::info : Finding::Severity::error,
                                        p.string() + " offset " + std::to_string(sc.tail_offset),
                                        sc.tail_problem +
                                            (interrupted ? " (an interrupted save leaves this; the next save moves these bytes aside)"
                                                         : " (the next save moves these bytes aside)")});
            }
            rep.findings.push_back({Finding::Severity::info, p.string(),
                                    std::to_string(good) + " valid record(s) of " + std::to_string(sc.recs.size()) +
                                        ", " + std::to_string(data.size()) + " bytes"});
            if (live) {
                auto idx = read_index(index_of(session), opts_.max_file_bytes);
                struct stat st {};
                const bool fresh = idx && ::stat(p.c_str(), &st) == 0 && idx->ino == st.st_ino &&
                                   idx->covered == static_cast<std::uint64_t>(st.st_size);
                if (!fresh)
                    rep.findings.push_back({Finding::Severity::info, index_of(session).string(),
                                            "index missing or stale; it is rebuilt by the next save"});
            }
        };
        const auto live = live_of(session);
        if (!fs::exists(live)) {
            rep.findings.push_back({Finding::Severity::error, live.string(), "no such file: session was never saved"});
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
    [[nodiscard]] bool in_place(const std::string& session) override { return written_.in_place(session, live_of(session)); }

    /// Rename the live file, its index, kept-aside copies and day archives.
    void rename(const std::string& from, const std::string& to) override {
        validate_session_name(from);
        validate_session_name(to);
        if (detail::file_id(live_of(to)))
            throw Error(Errc::invalid_argument, "cannot rename session '" + from + "' to '" + to + "': it exists");
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
        written_.forget(from);
        written_.forget(to);
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
            throw Error(Errc::not_found, "session '" + session + "' does not exist in " + opts_.state_dir.string());
        FlockGuard lock(lock_of(session), true);
        (void)live_file(session).prepare();
        return live_file(session).archive({});
    }

private:
    template <typename... A>
    void log_warn(fmt::format_string<A...> f, A&&... a) const {
        if (opts_.logger) opts_.logger->warn(f, std::forward<A>(a)...);
    }

    [[nodiscard]] SessionFiles files(const std::string& s) const { return {opts_.state_dir, s}; }
    [[nodiscard]] fs::path live_of(const std::string& s) const { return files(s).live; }
    [[nodiscard]] fs::path index_of(const std::string& s) const { return files(s).index; }
    [[nodiscard]] fs::path lock_of(const std::string& s) const { return files(s).lock; }
    [[nodiscard]] fs::path archive_dir() const { return archive_dir_of(opts_.state_dir); }
    [[nodiscard]] std::vector<std::pair<std::string, fs::path>> archive_files(const std::string& s) const {
        return compressed_archive::archive_files(opts_.state_dir, s);
    }

    /// The live file of `session`, for a caller that holds its writer lock.
    [[nodiscard]] LiveFile live_file(const std::string& session) {
        return LiveFile(opts_, cfg_, session, [this, session](const detail::FileId& id) { written_.expect(session, id); });
    }

    void ensure_dir() const {
        std::error_code ec;
        fs::create_directories(opts_.state_dir, ec);
        if (ec) throw Error(Errc::io, "cannot create state directory " + opts_.state_dir.string() + ": " + ec.message());
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
                if (e.code() != Errc::not_found) log_warn("{}", e.what());
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

    std::optional<LoadResult> load_via_index(const std::string& session) const {
        const auto path = live_of(session);
        detail::unique_fd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK));
        if (!fd) return std::nullopt;
        struct stat st {};
        if (::fstat(fd.get(), &st) != 0 || !S_ISREG(st.st_mode)) return std::nullopt;
        auto idx = fresh_index(index_of(session), st, opts_.max_file_bytes);
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
            if (e.code() == Errc::not_found) return std::nullopt;
            throw;
        }
        struct stat st {};
        if (::fstat(fd.get(), &st) != 0) detail::throw_io("stat", path, errno);
        if (auto idx = fresh_index(index_of(session), st, opts_.max_file_bytes); idx && !idx->entries.empty()) {
            const auto [off, seq] = idx->entries.back();
            if (auto rec = read_record_at(fd.get(), static_cast<std::uint64_t>(st.st_size), off, seq)) return rec->second;
        }
        const auto data = detail::read_file(path, opts_.max_file_bytes);
        auto sc = scan_bytes(data);
        if (!sc.header_problem.empty())
            throw Error(Errc::corrupt, path.string() + " is damaged: " + sc.header_problem);
        if (const Rec* r = sc.last_ok()) return *r;
        if (sc.recs.empty() && sc.tail_problem.empty()) return std::nullopt;
        throw Error(Errc::corrupt, path.string() + " has no valid record");
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
    detail::WrittenFiles written_; ///< live files this process wrote
};


std::unique_ptr<Backend> create_backend(const BackendOptions& opts) {
    return std::make_unique<CompressedArchiveBackend>(opts);
}

} // namespace
} // namespace tradestate::compressed_archive

TRADESTATE_PLUGIN("compressed-archive", tradestate::compressed_archive::create_backend, tradestate::PluginStorage::state_dir)
