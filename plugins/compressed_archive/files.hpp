// The files of one compressed-archive session: the live file, its index
// and lock file under state_dir, and one archive file per completed day
// under state_dir/archive/. Private to the plugin.
#pragma once

#include "format.hpp"
#include "settings.hpp"

#include <tradestate/detail/atomic_file.hpp>
#include <tradestate/detail/file_lock.hpp>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <string>
#include <system_error>
#include <utility>
#include <vector>

#include <fcntl.h>
#include <sys/file.h>

namespace tradestate::compressed_archive {

namespace fs = std::filesystem;

inline constexpr const char* suffix = ".tsarc";

[[nodiscard]] inline fs::path archive_dir_of(const fs::path& state_dir) { return state_dir / "archive"; }

/// Where one session's files are.
struct SessionFiles {
    SessionFiles(const fs::path& state_dir, const std::string& session)
        : live(state_dir / (session + suffix)),
          index(state_dir / (session + suffix + ".idx")),
          lock(state_dir / ("." + session + suffix + ".lock")) {}
    fs::path live, index, lock;
};

/// Archive files of `session`, by day, oldest first.
[[nodiscard]] inline std::vector<std::pair<std::string, fs::path>> archive_files(const fs::path& state_dir, const std::string& session) {
    std::vector<std::pair<std::string, fs::path>> out;
    std::error_code ec;
    const std::string prefix = session + "-";
    for (auto it = fs::directory_iterator(archive_dir_of(state_dir), ec); !ec && it != fs::directory_iterator();
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

} // namespace tradestate::compressed_archive
