#include <tradestate_test/files.hpp>
#include <tradestate_test/process.hpp>

#include <algorithm>
#include <cerrno>
#include <csignal>
#include <cstring>
#include <stdexcept>
#include <thread>

#include <fcntl.h>
#include <poll.h>
#include <pty.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

namespace tradestate::testing {

namespace {

std::vector<char*> argv_of(std::vector<std::string>& args) {
    std::vector<char*> v;
    for (auto& a : args) v.push_back(a.data());
    v.push_back(nullptr);
    return v;
}

int decode(int status) { return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status); }

} // namespace

Process::Process(std::vector<std::string> argv, ProcessOptions opts) : file_(opts.output_file) {
    if (argv.empty()) throw std::invalid_argument("Process: no program");
    int fds[2] = {-1, -1};
    if (file_.empty() && ::pipe2(fds, O_CLOEXEC) != 0) throw std::runtime_error("pipe failed");
    pid_ = ::fork();
    if (pid_ < 0) throw std::runtime_error("fork failed");
    if (pid_ == 0) {
        int out = -1;
        if (!file_.empty()) out = ::open(file_.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        else out = fds[1];
        if (out < 0) ::_exit(126);
        ::dup2(out, 1);
        ::dup2(out, 2);
        if (opts.stdin_null) {
            const int in = ::open("/dev/null", O_RDONLY);
            ::dup2(in, 0);
        }
        if (opts.fsize_limit) {
            ::signal(SIGXFSZ, SIG_IGN);
            rlimit rl{*opts.fsize_limit, *opts.fsize_limit};
            ::setrlimit(RLIMIT_FSIZE, &rl);
        }
        if (!opts.cwd.empty() && ::chdir(opts.cwd.c_str()) != 0) ::_exit(126);
        for (auto& e : opts.env) ::putenv(e.data());
        auto av = argv_of(argv);
        ::execv(av[0], av.data());
        ::_exit(127);
    }
    if (file_.empty()) {
        ::close(fds[1]);
        pipe_ = fds[0];
    }
}

ForkedChild::ForkedChild(const std::function<void(int)>& body) {
    int fds[2];
    if (::pipe2(fds, O_CLOEXEC) != 0) throw std::runtime_error(std::string("pipe2: ") + std::strerror(errno));
    pid_ = ::fork();
    if (pid_ < 0) {
        const int e = errno;
        ::close(fds[0]);
        ::close(fds[1]);
        throw std::runtime_error(std::string("fork: ") + std::strerror(e));
    }
    if (pid_ == 0) {
        ::close(fds[0]);
        body(fds[1]);
        ::_exit(0);
    }
    ::close(fds[1]);
    fd_ = fds[0];
}

ForkedChild::~ForkedChild() {
    if (!reaped_) (void)kill();
    if (fd_ >= 0) ::close(fd_);
}

bool ForkedChild::read_some(std::string& out, int timeout_ms) {
    pollfd p{fd_, POLLIN, 0};
    if (::poll(&p, 1, timeout_ms) <= 0) return false;
    char buf[4096];
    const ssize_t n = ::read(fd_, buf, sizeof buf);
    if (n <= 0) return false;
    out.append(buf, static_cast<std::size_t>(n));
    return true;
}

int ForkedChild::kill() {
    int st = 0;
    if (reaped_) return st;
    ::kill(pid_, SIGKILL);
    while (::waitpid(pid_, &st, 0) < 0 && errno == EINTR) {
    }
    reaped_ = true;
    return st;
}

Process::~Process() {
    if (pid_ > 0 && !reaped_) {
        ::kill(pid_, SIGKILL);
        (void)wait();
    }
    if (pipe_ >= 0) ::close(pipe_);
}

bool Process::running() {
    if (reaped_) return false;
    int st = 0;
    const pid_t r = ::waitpid(pid_, &st, WNOHANG);
    if (r == pid_) {
        status_ = st;
        reaped_ = true;
        return false;
    }
    return true;
}

void Process::signal(int sig) {
    if (!reaped_) ::kill(pid_, sig);
}

int Process::wait() {
    if (!reaped_) {
        int st = 0;
        while (::waitpid(pid_, &st, 0) < 0 && errno == EINTR) {
        }
        status_ = st;
        reaped_ = true;
    }
    return decode(status_);
}

std::optional<int> Process::wait_for(std::chrono::milliseconds limit) {
    const auto end = std::chrono::steady_clock::now() + limit;
    while (running()) {
        if (std::chrono::steady_clock::now() >= end) return std::nullopt;
        if (pipe_ >= 0) drain(5);
        else std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    return decode(status_);
}

void Process::drain(int timeout_ms) {
    if (pipe_ < 0) return;
    pollfd p{pipe_, POLLIN, 0};
    if (::poll(&p, 1, timeout_ms) <= 0) return;
    char tmp[65536];
    const ssize_t n = ::read(pipe_, tmp, sizeof tmp);
    if (n > 0) buf_.append(tmp, static_cast<std::size_t>(n));
}

std::string Process::output() {
    if (!file_.empty()) return slurp(file_);
    drain(0);
    return all_ + buf_;
}

std::optional<std::string> Process::read_line(std::chrono::milliseconds timeout) {
    const auto end = std::chrono::steady_clock::now() + timeout;
    for (;;) {
        const auto nl = buf_.find('\n');
        if (nl != std::string::npos) {
            std::string line = buf_.substr(0, nl);
            buf_.erase(0, nl + 1);
            all_ += line + "\n";
            return line;
        }
        if (pipe_ < 0) return std::nullopt;
        const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(end - std::chrono::steady_clock::now());
        pollfd p{pipe_, POLLIN, 0};
        // A zero timeout still takes what is already in the pipe.
        if (::poll(&p, 1, static_cast<int>(std::max<long long>(left.count(), 0))) <= 0) return std::nullopt;
        char tmp[65536];
        const ssize_t n = ::read(pipe_, tmp, sizeof tmp);
        if (n <= 0) return std::nullopt;
        buf_.append(tmp, static_cast<std::size_t>(n));
    }
}

std::optional<std::string> Process::until(const std::string& needle, std::chrono::milliseconds timeout) {
    const auto end = std::chrono::steady_clock::now() + timeout;
    for (;;) {
        const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(end - std::chrono::steady_clock::now());
        if (left.count() <= 0) return std::nullopt;
        auto l = read_line(left);
        if (!l) return std::nullopt;
        if (l->find(needle) != std::string::npos) return l;
    }
}

bool Process::wait_for_output(const std::function<bool(const std::string&)>& pred, std::chrono::milliseconds limit) {
    const auto end = std::chrono::steady_clock::now() + limit;
    while (std::chrono::steady_clock::now() < end) {
        if (pred(output())) return true;
        if (!running()) return pred(output());
        if (pipe_ >= 0) drain(5);
        else std::this_thread::sleep_for(std::chrono::milliseconds(5)); // polling interval, not a wait for an event
    }
    return false;
}

void Process::close_output() {
    if (pipe_ >= 0) ::close(pipe_);
    pipe_ = -1;
}

int run(std::vector<std::string> argv, std::string* output, ProcessOptions opts) {
    Process p(std::move(argv), std::move(opts));
    if (!output) return p.wait();
    std::string text;
    while (auto l = p.read_line(std::chrono::hours(1))) {
    }
    const int rc = p.wait();
    *output = p.output();
    return rc;
}

Captured capture(std::vector<std::string> argv) {
    int out[2], err[2];
    if (::pipe2(out, O_CLOEXEC) != 0 || ::pipe2(err, O_CLOEXEC) != 0) throw std::runtime_error("pipe failed");
    const pid_t pid = ::fork();
    if (pid < 0) throw std::runtime_error("fork failed");
    if (pid == 0) {
        ::dup2(out[1], 1);
        ::dup2(err[1], 2);
        const int in = ::open("/dev/null", O_RDONLY);
        ::dup2(in, 0);
        auto av = argv_of(argv);
        ::execv(av[0], av.data());
        ::_exit(127);
    }
    ::close(out[1]);
    ::close(err[1]);
    Captured c;
    pollfd fds[2] = {{out[0], POLLIN, 0}, {err[0], POLLIN, 0}};
    int open_fds = 2;
    while (open_fds > 0) {
        if (::poll(fds, 2, -1) < 0 && errno != EINTR) break;
        for (int i = 0; i < 2; ++i) {
            if (fds[i].fd < 0 || !(fds[i].revents & (POLLIN | POLLHUP | POLLERR))) continue;
            char buf[65536];
            const ssize_t n = ::read(fds[i].fd, buf, sizeof buf);
            if (n > 0) (i == 0 ? c.out : c.err).append(buf, static_cast<std::size_t>(n));
            else {
                ::close(fds[i].fd);
                fds[i].fd = -1;
                --open_fds;
            }
        }
    }
    int st = 0;
    while (::waitpid(pid, &st, 0) < 0 && errno == EINTR) {
    }
    c.code = decode(st);
    return c;
}

int run_pty(std::vector<std::string> argv, const std::string& prompt, const std::string& answer, std::string& text,
            std::chrono::seconds limit) {
    int master = -1;
    const pid_t pid = ::forkpty(&master, nullptr, nullptr, nullptr);
    if (pid == 0) {
        auto av = argv_of(argv);
        ::execv(av[0], av.data());
        ::_exit(127);
    }
    if (pid < 0) return -1;
    bool answered = false;
    const auto end = std::chrono::steady_clock::now() + limit;
    for (;;) {
        pollfd pfd{master, POLLIN, 0};
        if (::poll(&pfd, 1, 200) > 0) {
            char buf[4096];
            const ssize_t n = ::read(master, buf, sizeof buf);
            if (n <= 0) break; // EIO once the child has exited
            text.append(buf, static_cast<std::size_t>(n));
            if (!answered && text.find(prompt) != std::string::npos) {
                answered = true;
                [[maybe_unused]] auto w = ::write(master, answer.data(), answer.size());
            }
        }
        if (std::chrono::steady_clock::now() > end) {
            ::kill(pid, SIGKILL);
            break;
        }
    }
    ::close(master);
    int st = 0;
    ::waitpid(pid, &st, 0);
    return decode(st);
}

bool eventually(const std::function<bool()>& cond, std::chrono::milliseconds limit) {
    const auto end = std::chrono::steady_clock::now() + limit;
    while (std::chrono::steady_clock::now() < end) {
        if (cond()) return true;
        std::this_thread::sleep_for(std::chrono::milliseconds(10)); // polling interval, not a wait for an event
    }
    return cond();
}

std::string missing_in_order(const std::string& text, const std::vector<std::string>& lines) {
    std::size_t pos = 0;
    for (const auto& l : lines) {
        const auto at = text.find(l, pos);
        if (at == std::string::npos) return "missing (in order) '" + l + "' in:\n" + text.substr(0, 6000);
        pos = at + l.size();
    }
    return {};
}

std::vector<std::pair<std::size_t, long long>> numbers_after(const std::string& text, const std::string& prefix) {
    std::vector<std::pair<std::size_t, long long>> out;
    for (auto at = text.find(prefix); at != std::string::npos; at = text.find(prefix, at + 1)) {
        const std::size_t first = at + prefix.size();
        std::size_t last = first;
        while (last < text.size() && text[last] >= '0' && text[last] <= '9') ++last;
        if (last > first) out.emplace_back(at, std::stoll(text.substr(first, last - first)));
    }
    return out;
}

} // namespace tradestate::testing
