// tradestate — durable file I/O: atomic replace, bounded reads.
//
// write_file_atomic: temp file in the same directory -> write -> fsync ->
// rename over the target -> fsync the directory. After a crash at any point
// the target holds either its old or its new content, never a mix. On any
// failure the temp file is removed and the target is untouched. A failed
// fsync is never retried on the same file descriptor (after a failed fsync
// the kernel may have dropped the dirty pages; the next save starts over
// with a fresh temp file).
#pragma once

#include <tradestate/error.hpp>
#include <tradestate/detail/session_name.hpp>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <system_error>
#include <utility>
#include <vector>

#include <csignal>
#include <cstdint>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

namespace tradestate::detail {

[[nodiscard]] inline std::string errno_text(int e) { return std::strerror(e); }

[[noreturn]] inline void throw_io(const std::string& what, const std::filesystem::path& p, int e) {
    throw Error(Errc::io, "cannot " + what + " " + p.string() + ": " + errno_text(e));
}

/// A file descriptor that closes itself.
class unique_fd {
public:
    unique_fd() = default;
    explicit unique_fd(int fd) noexcept : fd_(fd) {}
    unique_fd(unique_fd&& o) noexcept : fd_(o.release()) {}
    unique_fd& operator=(unique_fd&& o) noexcept {
        if (this != &o) { reset(); fd_ = o.release(); }
        return *this;
    }
    unique_fd(const unique_fd&) = delete;
    unique_fd& operator=(const unique_fd&) = delete;
    ~unique_fd() { reset(); }
    [[nodiscard]] int get() const noexcept { return fd_; }
    [[nodiscard]] explicit operator bool() const noexcept { return fd_ >= 0; }
    int release() noexcept { int f = fd_; fd_ = -1; return f; }
    void reset() noexcept { if (fd_ >= 0) ::close(fd_); fd_ = -1; }

private:
    int fd_ = -1;
};

/// write(2) all of `bytes`, retrying on EINTR and short writes; returns 0 or errno.
[[nodiscard]] inline int write_all(int fd, const char* data, std::size_t size) noexcept {
    while (size > 0) {
        ssize_t n = ::write(fd, data, size);
        if (n < 0) {
            if (errno == EINTR) continue;
            return errno;
        }
        if (n == 0) return EIO;
        data += n;
        size -= static_cast<std::size_t>(n);
    }
    return 0;
}

/// fsync the directory holding `p` so that a rename in it is durable.
inline void fsync_directory(const std::filesystem::path& dir) {
    unique_fd d(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    if (!d) throw_io("open directory", dir, errno);
    if (::fsync(d.get()) != 0) throw_io("fsync directory", dir, errno);
}

/// fsync a directory after a removal, when it may fail: the files are gone
/// either way, and a crash at worst brings back what was being removed.
inline void fsync_directory_after_remove(const std::filesystem::path& dir) noexcept {
    unique_fd d(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    if (d) (void)::fsync(d.get());
}

/// A unique temp-file name beside `target`: ".<name>.tmp.<pid>.<n>".
[[nodiscard]] inline std::filesystem::path temp_path_for(const std::filesystem::path& target) {
    static std::atomic<unsigned long> counter{0};
    auto name = "." + target.filename().string() + ".tmp." + std::to_string(::getpid()) + "." +
                std::to_string(counter.fetch_add(1));
    return target.parent_path() / name;
}

/// Identity of a file (device and inode).
struct FileId {
    dev_t dev = 0;
    ino_t ino = 0;
    bool operator==(const FileId&) const = default;
};

/// The identity of the file at `p`, if it exists.
[[nodiscard]] inline std::optional<FileId> file_id(const std::filesystem::path& p) noexcept {
    struct stat st {};
    if (::stat(p.c_str(), &st) != 0) return std::nullopt;
    return FileId{st.st_dev, st.st_ino};
}

/// Atomically replace `target` with `bytes` (see the file comment).
/// `before_rename` is told the new file's identity before it takes the
/// target's name (a writer that later checks the target is still its own).
inline void write_file_atomic(const std::filesystem::path& target, std::string_view bytes, bool durable = true,
                              const std::function<void(const FileId&)>& before_rename = {}) {
    const auto dir = target.has_parent_path() ? target.parent_path() : std::filesystem::path(".");
    const auto tmp = temp_path_for(dir / target.filename());
    unique_fd fd(::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644));
    if (!fd) throw_io("create temporary file", tmp, errno);
    auto fail = [&](const char* what, int e) {
        fd.reset();
        ::unlink(tmp.c_str());
        throw_io(std::string(what) + " (saving " + target.string() + ")", tmp, e);
    };
    if (int e = write_all(fd.get(), bytes.data(), bytes.size())) fail("write", e);
    if (durable && ::fsync(fd.get()) != 0) fail("fsync", errno);
    if (before_rename) {
        struct stat st {};
        if (::fstat(fd.get(), &st) != 0) fail("stat", errno);
        before_rename(FileId{st.st_dev, st.st_ino});
    }
    if (::close(fd.release()) != 0) {
        int e = errno;
        ::unlink(tmp.c_str());
        throw_io("close (saving " + target.string() + ")", tmp, e);
    }
    if (::rename(tmp.c_str(), target.c_str()) != 0) {
        int e = errno;
        ::unlink(tmp.c_str());
        throw_io("rename temporary file onto", target, e);
    }
    if (durable) fsync_directory(dir);
}

/// What kind of file `mode` is, for messages ("a FIFO", "a directory", ...).
[[nodiscard]] inline const char* file_kind(mode_t mode) noexcept {
    if (S_ISFIFO(mode)) return "a FIFO";
    if (S_ISSOCK(mode)) return "a socket";
    if (S_ISCHR(mode)) return "a character device";
    if (S_ISBLK(mode)) return "a block device";
    if (S_ISDIR(mode)) return "a directory";
    if (S_ISLNK(mode)) return "a symbolic link";
    return "not a regular file";
}

/// Throw Errc::io naming `p` unless the open `fd` is a regular file.
inline void require_regular(int fd, const std::filesystem::path& p) {
    struct stat st {};
    if (::fstat(fd, &st) != 0) throw_io("stat", p, errno);
    if (!S_ISREG(st.st_mode))
        throw Error(Errc::io, p.string() + " is " + file_kind(st.st_mode) +
                                  ", not a regular file; tradestate only reads and writes regular files there (move it away)");
}

/// Open an existing file for reading without ever blocking (a FIFO in the
/// state directory must not hang a reader) and refuse anything but a regular
/// file. Errc::not_found if it does not exist.
[[nodiscard]] inline unique_fd open_regular(const std::filesystem::path& p, int flags = O_RDONLY) {
    unique_fd fd(::open(p.c_str(), flags | O_CLOEXEC | O_NONBLOCK));
    if (!fd) {
        if (errno == ENOENT) throw Error(Errc::not_found, "file not found: " + p.string());
        if (errno == ENXIO) // a FIFO opened for writing with no reader
            throw Error(Errc::io, p.string() + " is a FIFO, not a regular file; move it away");
        throw_io("open", p, errno);
    }
    require_regular(fd.get(), p);
    return fd;
}

/// True when `fd` is still the file at `p` (neither was deleted or replaced).
[[nodiscard]] inline bool same_file(int fd, const std::filesystem::path& p) noexcept {
    struct stat a {}, b {};
    if (fd < 0 || ::fstat(fd, &a) != 0 || a.st_nlink == 0) return false;
    if (::stat(p.c_str(), &b) != 0) return false;
    return a.st_ino == b.st_ino && a.st_dev == b.st_dev;
}

/// Whether process `pid` exists (EPERM: it does, under another user).
[[nodiscard]] inline bool pid_alive(long pid) noexcept {
    return pid > 0 && (::kill(static_cast<pid_t>(pid), 0) == 0 || errno == EPERM);
}

/// Remove the temp files ".<name>.tmp.<pid>.<n>" in `dir` that
/// write_file_atomic left for a target called `name` (any target when
/// `name` is empty) when its process was killed: only those whose process
/// is gone. Returns how many were removed.
inline std::size_t remove_stale_temps(const std::filesystem::path& dir, const std::string& name = {}) {
    std::size_t removed = 0;
    std::error_code ec;
    for (auto it = std::filesystem::directory_iterator(dir, ec); !ec && it != std::filesystem::directory_iterator();
         it.increment(ec)) {
        const std::string f = it->path().filename().string();
        if (f.size() < 2 || f[0] != '.') continue;
        const auto t = f.rfind(".tmp.");
        if (t == std::string::npos || t < 1) continue;
        if (!name.empty() && f.compare(1, t - 1, name) != 0) continue;
        const std::string rest = f.substr(t + 5);
        const auto dot = rest.find('.');
        if (dot == std::string::npos || dot == 0) continue;
        long pid = 0;
        for (std::size_t i = 0; i < dot; ++i) {
            if (rest[i] < '0' || rest[i] > '9' || pid > 214'748'364) { pid = -1; break; }
            pid = pid * 10 + (rest[i] - '0');
        }
        if (pid <= 0 || pid_alive(pid)) continue;
        if (::unlink(it->path().c_str()) == 0) ++removed;
    }
    return removed;
}

/// Read a whole file, refusing files larger than `max_bytes` and anything
/// that is not a regular file.
[[nodiscard]] inline std::string read_file(const std::filesystem::path& p,
                                           std::uint64_t max_bytes = 1ull << 30) {
    unique_fd fd = open_regular(p);
    struct stat st {};
    if (::fstat(fd.get(), &st) != 0) throw_io("stat", p, errno);
    if (static_cast<std::uint64_t>(st.st_size) > max_bytes)
        throw Error(Errc::corrupt, p.string() + " is " + std::to_string(st.st_size) +
                                       " bytes, over the limit of " + std::to_string(max_bytes) +
                                       " bytes (persistence.max_file_bytes)");
    std::string out;
    out.resize(static_cast<std::size_t>(st.st_size));
    std::size_t got = 0;
    while (got < out.size()) {
        ssize_t n = ::read(fd.get(), out.data() + got, out.size() - got);
        if (n < 0) {
            if (errno == EINTR) continue;
            throw_io("read", p, errno);
        }
        if (n == 0) break;
        got += static_cast<std::size_t>(n);
    }
    out.resize(got);
    return out;
}

/// The current UTC time for file names ("20250929T061910Z" by default):
/// kept-aside copies, backups.
[[nodiscard]] inline std::string utc_stamp(const char* fmt = "%Y%m%dT%H%M%SZ") {
    const auto t = std::time(nullptr);
    struct tm tm {};
    ::gmtime_r(&t, &tm);
    char buf[64];
    std::strftime(buf, sizeof buf, fmt, &tm);
    return buf;
}

/// The files a backend wrote for each session, for Backend::in_place():
/// a file is in place while it is one of the last `keep` this process put
/// there, or the one it found at its first check. Thread-safe.
class WrittenFiles {
public:
    explicit WrittenFiles(std::size_t keep = 4) : keep_(keep) {}

    /// `id` is about to become the session's file (call before the rename).
    void expect(const std::string& session, const FileId& id) {
        std::lock_guard lk(mu_);
        auto& v = ids_[session];
        v.push_back(id);
        if (v.size() > keep_) v.erase(v.begin());
    }

    /// Is `file` (the session's file now) one this process wrote?
    [[nodiscard]] bool in_place(const std::string& session, const std::filesystem::path& file) {
        const auto id = file_id(file);
        if (!id) return false;
        std::lock_guard lk(mu_);
        auto& v = ids_[session];
        if (v.empty()) {
            v.push_back(*id);
            return true;
        }
        return std::find(v.begin(), v.end(), *id) != v.end();
    }

    /// The session was renamed or removed.
    void forget(const std::string& session) {
        std::lock_guard lk(mu_);
        ids_.erase(session);
    }

private:
    std::size_t keep_;
    std::mutex mu_;
    std::map<std::string, std::vector<FileId>> ids_;
};

/// Sessions stored one file each as `<dir>/<session><suffix>`: (session,
/// path) of every entry with that suffix and a valid session name, by
/// session name. A missing directory has none.
[[nodiscard]] inline std::vector<std::pair<std::string, std::filesystem::path>> session_files(
    const std::filesystem::path& dir, std::string_view suffix) {
    std::vector<std::pair<std::string, std::filesystem::path>> out;
    std::error_code ec;
    if (!std::filesystem::is_directory(dir, ec)) return out;
    for (auto it = std::filesystem::directory_iterator(dir, ec); !ec && it != std::filesystem::directory_iterator();
         it.increment(ec)) {
        const auto& p = it->path();
        if (p.extension() != suffix) continue;
        auto session = p.stem().string();
        if (!is_valid_session_name(session)) continue;
        out.emplace_back(std::move(session), p);
    }
    std::sort(out.begin(), out.end());
    return out;
}

} // namespace tradestate::detail
