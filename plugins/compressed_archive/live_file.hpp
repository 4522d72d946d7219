// The compressed-archive plugin's live file: with the session's writer
// lock held, bring it to a known state (create it, move damage aside),
// rewrite it, thin its history and move completed days into archive files
// (with retention). Private to the plugin.
#pragma once

#include "files.hpp"
#include "format.hpp"
#include "index.hpp"
#include "settings.hpp"

#include <tradestate/backend.hpp>
#include <tradestate/detail/atomic_file.hpp>
#include <tradestate/detail/file_lock.hpp>

#include <spdlog/logger.h>

#include <cerrno>
#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <string_view>
#include <system_error>
#include <utility>
#include <vector>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

namespace tradestate::compressed_archive {

/// What prepare() found in the live file.
struct LiveState {
    std::uint64_t size = file_header_bytes;
    std::uint64_t last_seq = 0;
    std::string first_day; // day of the first good record
    std::vector<std::pair<std::uint64_t, std::uint64_t>> offsets; // (offset, sequence) of good records
};


/// One session's live file, for a writer that holds its lock.
class LiveFile {
public:
    /// `expect` is told of every live file this writes, before it is
    /// renamed into place (the backend's check for a replaced file).
    LiveFile(const BackendOptions& opts, const Settings& cfg, std::string session,
             std::function<void(const detail::FileId&)> expect)
        : opts_(opts), cfg_(cfg), session_(std::move(session)), files_(opts.state_dir, session_),
          expect_(std::move(expect)) {}

    /// With the writer lock held: make sure the live file exists with a good
    /// header, move a damaged tail aside, and describe what is there.
    LiveState prepare() {
        const auto path = files_.live;
        struct stat st {};
        if (::stat(path.c_str(), &st) != 0) {
            if (errno != ENOENT) detail::throw_io("stat", path, errno);
            detail::write_file_atomic(path, make_file_header(0), opts_.fsync,
                                      expect_);
            LiveState ls;
            write_index(files_, {}, file_header_bytes, opts_.logger.get());
            return ls;
        }
        LiveState ls;
        if (auto idx = fresh_index(files_.index, st, opts_.max_file_bytes)) {
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
            const auto aside = path.string() + ".corrupt-" + detail::utc_stamp();
            log_warn("{} is damaged ({}); moved aside to {} and starting a new live file", path.string(),
                     sc.header_problem, aside);
            if (::rename(path.c_str(), aside.c_str()) != 0) detail::throw_io("move aside damaged file", path, errno);
            return prepare();
        }
        if (sc.valid_end < data.size()) {
            const auto aside = path.string() + ".corrupt-" + detail::utc_stamp();
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
        write_index(files_, ls.offsets, ls.size, opts_.logger.get());
        return ls;
    }

    /// Replace the live file by `header + records` atomically and re-index.
    void rewrite(const std::string& data, const std::vector<const Rec*>& keep) {
        std::string out = make_file_header(0);
        std::vector<std::pair<std::uint64_t, std::uint64_t>> idx;
        for (const Rec* r : keep) {
            idx.emplace_back(out.size(), r->seq);
            out.append(data, r->offset, r->length);
        }
        detail::write_file_atomic(files_.live, out, opts_.fsync,
                                  expect_);
        write_index(files_, idx, out.size(), opts_.logger.get());
    }

    /// Thin the live history: keep every keep_every_nth record and the newest.
    void thin() {
        const auto path = files_.live;
        const auto data = detail::read_file(path, opts_.max_file_bytes);
        const auto sc = scan_bytes(data);
        const auto good = sc.good();
        std::vector<const Rec*> keep;
        for (std::size_t i = 0; i < good.size(); ++i)
            if (i + 1 == good.size() || i % static_cast<std::size_t>(cfg_.keep_every_nth) == 0) keep.push_back(good[i]);
        rewrite(data, keep);
        if (opts_.logger)
            opts_.logger->info("{}: thinned history from {} to {} records (max_live_records = {}, keep_every_nth = {})",
                               path.string(), good.size(), keep.size(), cfg_.max_live_records, cfg_.keep_every_nth);
    }

    /// Move the snapshots of completed trading days — days before `today`
    /// (empty: the day of the newest snapshot, the session's current
    /// trading day) — into one archive file per day. The newest snapshot
    /// always stays in the live file. Then delete archive files older than
    /// keep_archive_days. Returns a summary for the operator.
    std::string archive(std::string today) {
        const auto path = files_.live;
        const auto data = detail::read_file(path, opts_.max_file_bytes);
        const auto sc = scan_bytes(data);
        const auto good = sc.good();
        if (good.empty()) return "session '" + session_ + "': nothing to archive (the live file holds no snapshot)";
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
            return "session '" + session_ + "': nothing to archive (the live file's " + std::to_string(good.size()) +
                   " snapshot(s) are of " + (today.empty() ? std::string("the current trading day") : today) +
                   ", the current trading day)";
        std::error_code ec;
        fs::create_directories(archive_dir_of(opts_.state_dir), ec);
        if (ec) throw Error(Errc::io, "cannot create " + archive_dir_of(opts_.state_dir).string() + ": " + ec.message());
        std::size_t moved = 0;
        for (const auto& [day, recs] : by_day) {
            const auto target = archive_dir_of(opts_.state_dir) / (session_ + "-" + day + suffix);
            // Merge with what an earlier archive() of the same day wrote.
            std::map<std::uint64_t, std::string> merged;
            std::string old;
            try {
                old = detail::read_file(target, opts_.max_file_bytes);
            } catch (const Error& e) {
                if (e.code() != Errc::not_found) throw;
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
        rewrite(data, keep);
        std::string summary = "session '" + session_ + "': archived " + std::to_string(moved) + " snapshot(s) of " +
                              std::to_string(by_day.size()) + " completed day(s) under " + archive_dir_of(opts_.state_dir).string() +
                              "; the live file keeps " + std::to_string(keep.size()) + " snapshot(s), from sequence " +
                              std::to_string(keep.front()->seq);
        // Retention.
        const auto newest_day = day_of(good.back()->meta.saved_at);
        if (cfg_.keep_archive_days > 0 && !newest_day.empty()) {
            const long cutoff = day_number(newest_day) - cfg_.keep_archive_days;
            std::size_t deleted = 0;
            for (const auto& [day, file] : archive_files(opts_.state_dir, session_)) {
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

private:
    template <typename... A>
    void log_warn(fmt::format_string<A...> f, A&&... a) const {
        if (opts_.logger) opts_.logger->warn(f, std::forward<A>(a)...);
    }

    const BackendOptions& opts_;
    const Settings& cfg_;
    std::string session_;
    SessionFiles files_;
    std::function<void(const detail::FileId&)> expect_;
};

} // namespace tradestate::compressed_archive
