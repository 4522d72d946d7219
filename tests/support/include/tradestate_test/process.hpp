// tradestate tests — real child processes: the runner, the tool, the
// dashboard, this test binary re-executed, or any program.
#pragma once

#include <chrono>
#include <filesystem>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include <sys/types.h>

namespace tradestate::testing {

struct ProcessOptions {
    std::vector<std::string> env;           ///< extra "NAME=value" entries
    /// Where stdout and stderr go: a file (read with output()), or a pipe
    /// read line by line (read_line(), until()) when empty.
    std::filesystem::path output_file;
    bool stdin_null = true;                 ///< stdin from /dev/null (no terminal)
    std::optional<std::uint64_t> fsize_limit; ///< RLIMIT_FSIZE for the child (SIGXFSZ ignored)
    std::filesystem::path cwd;              ///< working directory (empty: the test's)
};

/// This test process forked: the child runs `body(write_fd)` and must end
/// with _exit(); the parent reads what it writes to the pipe. For crash
/// tests that kill a writer at a random moment. Killed (SIGKILL) and reaped
/// when the object goes.
class ForkedChild {
public:
    explicit ForkedChild(const std::function<void(int write_fd)>& body);
    ~ForkedChild();
    ForkedChild(const ForkedChild&) = delete;
    ForkedChild& operator=(const ForkedChild&) = delete;

    [[nodiscard]] pid_t pid() const noexcept { return pid_; }
    /// The reading end of the pipe (for a test that reads records itself).
    [[nodiscard]] int fd() const noexcept { return fd_; }
    /// Wait up to `timeout_ms` for bytes from the child and append them to
    /// `out`; false at EOF or on timeout.
    bool read_some(std::string& out, int timeout_ms);
    /// SIGKILL the child now and reap it: its wait status.
    int kill();

private:
    pid_t pid_ = -1;
    int fd_ = -1;
    bool reaped_ = false;
};

/// A running program. Killed (SIGKILL) and reaped when the object goes.
class Process {
public:
    explicit Process(std::vector<std::string> argv, ProcessOptions opts = {});
    ~Process();
    Process(const Process&) = delete;
    Process& operator=(const Process&) = delete;

    [[nodiscard]] pid_t pid() const noexcept { return pid_; }
    /// Still running (reaps it if it has exited).
    [[nodiscard]] bool running();
    void signal(int sig);
    /// Wait for the exit: the exit status, or 128 + the signal.
    int wait();
    /// wait() with a limit; nullopt if it is still running after `limit`.
    std::optional<int> wait_for(std::chrono::milliseconds limit);

    /// All output so far (file mode: the file; pipe mode: what was read plus what is there now).
    [[nodiscard]] std::string output();
    /// Pipe mode: the next line, or nullopt at EOF / after `timeout`.
    std::optional<std::string> read_line(std::chrono::milliseconds timeout = std::chrono::seconds(60));
    /// Pipe mode: read lines until one contains `needle`; nullopt if the output ends first.
    std::optional<std::string> until(const std::string& needle,
                                     std::chrono::milliseconds timeout = std::chrono::seconds(60));
    /// Pipe mode: close the reading end, as `program | head -1` does once
    /// it has its line; the program's next writes get EPIPE (and SIGPIPE).
    void close_output();
    /// Poll output() until `pred` holds (true), the process exits (then pred of the final output), or `limit`.
    bool wait_for_output(const std::function<bool(const std::string&)>& pred,
                         std::chrono::milliseconds limit = std::chrono::seconds(60));

private:
    void drain(int timeout_ms);
    pid_t pid_ = -1;
    int status_ = -1;
    bool reaped_ = false;
    int pipe_ = -1;
    std::filesystem::path file_;
    std::string buf_, all_;
};

/// Run to the end; returns the exit code and (if asked) everything it printed.
int run(std::vector<std::string> argv, std::string* output = nullptr, ProcessOptions opts = {});

/// What a program printed, stdout and stderr apart.
struct Captured {
    int code = -1;
    std::string out; ///< stdout
    std::string err; ///< stderr
    [[nodiscard]] std::string all() const { return out + err; }
};
/// Run to the end with stdout and stderr captured apart (stdin from /dev/null).
Captured capture(std::vector<std::string> argv);

/// Run under a pseudo-terminal; when `prompt` appears, type `answer`.
/// Returns the exit code; `text` gets everything the terminal showed.
int run_pty(std::vector<std::string> argv, const std::string& prompt, const std::string& answer, std::string& text,
            std::chrono::seconds limit = std::chrono::seconds(60));

/// Poll `cond` every 10 ms until it holds or `limit` passes.
bool eventually(const std::function<bool()>& cond, std::chrono::milliseconds limit = std::chrono::seconds(60));

/// Lines in order: each must appear after the previous one (empty: they do; else what is missing).
[[nodiscard]] std::string missing_in_order(const std::string& text, const std::vector<std::string>& lines);

/// Every integer that directly follows `prefix` in `text`, with the prefix's offset.
[[nodiscard]] std::vector<std::pair<std::size_t, long long>> numbers_after(const std::string& text,
                                                                          const std::string& prefix);

} // namespace tradestate::testing
