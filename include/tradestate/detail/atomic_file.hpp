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

#include <atomic>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <string>
#include <string_view>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

namespace tradestate::detail {

[[nodiscard]] inline std::string errno_text(int e) { return std::strerror(e); }

[[noreturn]] inline void throw_io(const std::string& what, const std::filesystem::path& p, int e) {
    throw Error(errc::io, "cannot " + what + " " + p.string() + ": " + errno_text(e));
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

/// A unique temp-file name beside `target`: ".<name>.tmp.<pid>.<n>".
[[nodiscard]] inline std::filesystem::path temp_path_for(const std::filesystem::path& target) {
    static std::atomic<unsigned long> counter{0};
    auto name = "." + target.filename().string() + ".tmp." + std::to_string(::getpid()) + "." +
                std::to_string(counter.fetch_add(1));
    return target.parent_path() / name;
}

/// Atomically replace `target` with `bytes` (see the file comment).
inline void write_file_atomic(const std::filesystem::path& target, std::string_view bytes, bool durable = true) {
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

/// Read a whole file, refusing files larger than `max_bytes`.
[[nodiscard]] inline std::string read_file(const std::filesystem::path& p,
                                           std::uint64_t max_bytes = 1ull << 30) {
    unique_fd fd(::open(p.c_str(), O_RDONLY | O_CLOEXEC));
    if (!fd) {
        if (errno == ENOENT) throw Error(errc::not_found, "file not found: " + p.string());
        throw_io("open", p, errno);
    }
    struct stat st {};
    if (::fstat(fd.get(), &st) != 0) throw_io("stat", p, errno);
    if (static_cast<std::uint64_t>(st.st_size) > max_bytes)
        throw Error(errc::corrupt, p.string() + " is " + std::to_string(st.st_size) +
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

} // namespace tradestate::detail
