// tradestate — one writer per session, with flock(2).
//
// The lock file holds the holder's pid and program name so that a refused
// second writer can say who holds it. flock locks die with their process,
// so a stale lock file left by a killed process never blocks anyone.
// Readers never take this lock.
#pragma once

#include <tradestate/backend.hpp>
#include <tradestate/detail/atomic_file.hpp>

#include <filesystem>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include <sys/file.h>
#include <unistd.h>

namespace tradestate::detail {

[[nodiscard]] inline std::string current_program_name() {
    std::ifstream f("/proc/self/comm");
    std::string s;
    std::getline(f, s);
    return s.empty() ? "unknown" : s;
}

class FileLease final : public WriterLease {
public:
    /// Take the lock at `lock_path` for `session`, or throw Errc::locked.
    FileLease(const std::filesystem::path& lock_path, const std::string& session) : path_(lock_path) {
        fd_ = unique_fd(::open(lock_path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644));
        if (!fd_) throw_io("open lock file", lock_path, errno);
        require_regular(fd_.get(), lock_path); // a FIFO there would take no lock and keep no holder
        if (::flock(fd_.get(), LOCK_EX | LOCK_NB) != 0) {
            int e = errno;
            if (e == EWOULDBLOCK) {
                std::string holder = read_holder();
                throw Error(Errc::locked, "session '" + session + "' is already being written by " +
                                              (holder.empty() ? std::string("another process") : holder) +
                                              " (lock " + lock_path.string() +
                                              "); stop that process or use another --session/--state-dir");
            }
            throw_io("lock", lock_path, e);
        }
        std::string me = "process " + std::to_string(::getpid()) + " (" + current_program_name() + ")";
        if (::ftruncate(fd_.get(), 0) == 0) {
            (void)::pwrite(fd_.get(), me.data(), me.size(), 0);
        }
    }
    ~FileLease() override {
        if (fd_) {
            (void)::ftruncate(fd_.get(), 0);
            ::flock(fd_.get(), LOCK_UN);
        }
    }
    /// False once the lock file was deleted or replaced: another process
    /// could then take a lock of its own on the new file.
    [[nodiscard]] bool valid() const override { return fd_ && same_file(fd_.get(), path_); }

private:
    /// The holder's "process <pid> (<program>)", read through our own
    /// descriptor (never a second open of a path that may have changed).
    [[nodiscard]] std::string read_holder() const {
        char buf[256];
        const ssize_t n = ::pread(fd_.get(), buf, sizeof buf, 0);
        if (n <= 0) return {};
        std::string s(buf, static_cast<std::size_t>(n));
        if (const auto nl = s.find('\n'); nl != std::string::npos) s.resize(nl);
        return s;
    }
    std::filesystem::path path_;
    unique_fd fd_;
};

/// The writer lease of `session` (the lock `.<session>.lock` in `dir`).
/// Once it is held no other writer is at work, so the temp files that
/// interrupted writers left in `dir` and `more_dirs` (write_file_atomic's
/// `.<name>.tmp.<pid>.<n>` of processes that are gone) are removed.
[[nodiscard]] inline std::unique_ptr<WriterLease> take_session_lease(const std::filesystem::path& dir,
                                                                     const std::string& session,
                                                                     const std::vector<std::filesystem::path>& more_dirs = {}) {
    auto lease = std::make_unique<FileLease>(dir / ("." + session + ".lock"), session);
    (void)remove_stale_temps(dir);
    for (const auto& d : more_dirs) (void)remove_stale_temps(d);
    return lease;
}

} // namespace tradestate::detail
