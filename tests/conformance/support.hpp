// Helpers shared by the conformance, crash and json-files tests: temp dirs,
// seed-shaped documents, loading backends from the build's plugin dir, child
// processes.
#pragma once

#include "backends.hpp"

#include <tradestate/backend.hpp>
#include <tradestate/detail/json.hpp>
#include <tradestate/plugin_loader.hpp>

#include <boost/json.hpp>

#include <spdlog/sinks/null_sink.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <optional>
#include <ostream>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include <fcntl.h>
#include <poll.h>
#include <sys/wait.h>
#include <unistd.h>

#ifndef TRADESTATE_TEST_PLUGIN_DIR
#error "TRADESTATE_TEST_PLUGIN_DIR must name the build's plugin directory"
#endif

namespace tradestate::testing {

namespace fs = std::filesystem;
namespace json = boost::json;

/// How gtest shows a parameter: the backend's name.
inline void PrintTo(const BackendEntry& e, std::ostream* os) { *os << e.name; }

inline fs::path plugin_dir() { return fs::path(TRADESTATE_TEST_PLUGIN_DIR); }

/// A fresh directory under /tmp, removed with everything in it.
class TempDir {
public:
    TempDir() {
        std::string tmpl = (fs::temp_directory_path() / "tradestate-test-XXXXXX").string();
        if (!::mkdtemp(tmpl.data())) throw std::runtime_error("mkdtemp failed");
        path_ = tmpl;
    }
    ~TempDir() {
        std::error_code ec;
        fs::permissions(path_, fs::perms::owner_all, fs::perm_options::add, ec);
        fs::remove_all(path_, ec);
    }
    TempDir(const TempDir&) = delete;
    TempDir& operator=(const TempDir&) = delete;
    [[nodiscard]] const fs::path& path() const { return path_; }

private:
    fs::path path_;
};

inline std::shared_ptr<spdlog::logger> quiet_logger() {
    static auto l = std::make_shared<spdlog::logger>("test", std::make_shared<spdlog::sinks::null_sink_mt>());
    return l;
}

/// Options for `entry` in `state_dir`; nullopt + `skip` set when the backend
/// cannot run here.
inline std::optional<BackendOptions> options_for(const BackendEntry& entry, const fs::path& state_dir,
                                                 std::string& skip) {
    BackendOptions o;
    o.state_dir = state_dir;
    o.fsync = false; // durability is not what these cases measure; the crash test turns it on
    o.keep_backups = 3;
    o.logger = quiet_logger();
    if (!fs::exists(plugin_dir() / plugin_file_name(entry.name))) {
        skip = "plugin " + plugin_file_name(entry.name) + " is not built in " + plugin_dir().string();
        return std::nullopt;
    }
    if (entry.configure) {
        if (auto why = entry.configure(o)) {
            skip = *why;
            return std::nullopt;
        }
    }
    return o;
}

inline std::shared_ptr<Backend> open_backend(const std::string& name, const BackendOptions& opts) {
    PluginLoader loader({plugin_dir()}, quiet_logger());
    return loader.open(name, opts);
}

inline const BackendEntry& entry_named(const std::string& name) {
    for (const auto& e : conformance_backends())
        if (name == e.name) return e;
    throw std::runtime_error("backend '" + name + "' is not in backends.hpp");
}

// --------------------------------------------------------------- documents

/// A seed-shaped state document: `positions` open positions, `trades`
/// closed trades, values derived from `seed` so that any two calls with the
/// same arguments give the same document.
inline json::value make_doc(std::size_t positions, std::size_t trades, std::uint64_t seed, std::int64_t iteration,
                            const std::string& strategy = "straddle") {
    std::mt19937_64 rng(seed);
    auto price = [&](int lo, int hi) {
        // whole paise, printed as rupees with up to two decimals
        const auto paise = lo * 100 + static_cast<int>(rng() % static_cast<std::uint64_t>((hi - lo) * 100));
        return static_cast<double>(paise) / 100.0;
    };
    json::object pos;
    pos.reserve(positions);
    static const char* unders[] = {"NIFTY", "BANKNIFTY", "FINNIFTY"};
    for (std::size_t i = 0; i < positions; ++i) {
        const auto strike = 20000 + static_cast<int>(i % 1000) * 50;
        std::string sym = std::string(unders[i % 3]) + "25SEP" + std::to_string(strike) + (i % 2 ? "PE" : "CE") +
                          (i >= 1000 ? "_" + std::to_string(i) : "");
        const double entry = price(50, 900);
        pos[sym] = {{"shares", static_cast<std::int64_t>(25 * (1 + rng() % 6))},
                    {"entry_price", entry},
                    {"stop_loss", price(10, 50)},
                    {"take_profit", price(900, 1200)},
                    {"entry_time", "2025-09-29T11:49:10." + std::to_string(100000 + rng() % 899999)},
                    {"strategy", strategy},
                    {"sector", "F&O"}};
    }
    json::array hist;
    hist.reserve(trades);
    for (std::size_t i = 0; i < trades; ++i) {
        hist.push_back(json::object{{"symbol", "NIFTY25SEP" + std::to_string(24000 + (i % 40) * 50) + "CE"},
                                    {"shares", 75},
                                    {"entry_price", price(100, 300)},
                                    {"exit_price", price(100, 300)},
                                    {"pnl", price(-500, 500)},
                                    {"exit_time", "2025-09-29T12:00:00.000001"},
                                    {"strategy", strategy}});
    }
    const double cash = static_cast<double>(50000000 + static_cast<std::int64_t>(rng() % 50000000)) / 100.0;
    json::object doc{{"timestamp", "2025-09-29T11:49:10.218268"},
                     {"trading_mode", "paper"},
                     {"iteration", iteration},
                     {"portfolio",
                      {{"initial_cash", 1000000.0},
                       {"cash", cash},
                       {"positions", std::move(pos)},
                       {"trades_count", static_cast<std::int64_t>(trades)},
                       {"total_pnl", 0.0},
                       {"trade_history", std::move(hist)}}},
                     {"configuration",
                      {{"min_confidence", 0.65}, {"check_interval", 300}, {"max_positions", 5},
                       {"capital_per_trade", 200000}}}};
    return doc;
}

/// The metadata a host would hand over with `doc`.
inline SaveMeta meta_of(const json::value& doc) {
    SaveMeta m;
    const auto& o = doc.as_object();
    m.saved_at = std::string(o.at("timestamp").as_string());
    m.iteration = o.at("iteration").as_int64();
    const auto& pf = o.at("portfolio").as_object();
    m.positions = static_cast<std::int64_t>(pf.at("positions").as_object().size());
    // cash was built from whole paise: recover them exactly through the shortest decimal
    std::string s;
    detail::append_double(s, pf.at("cash").as_double());
    const auto dot = s.find('.');
    std::string frac = dot == std::string::npos ? "" : s.substr(dot + 1);
    frac.resize(2, '0');
    m.cash_paise = std::stoll(s.substr(0, dot)) * 100 + std::stoll(frac);
    return m;
}

inline Document as_document(const json::value& doc) {
    Document d;
    d.main = doc;
    const auto& pf = doc.as_object().at("portfolio").as_object();
    d.views["shared_portfolio_state"] = {{"timestamp", doc.as_object().at("timestamp")},
                                         {"trading_mode", doc.as_object().at("trading_mode")},
                                         {"cash", pf.at("cash")},
                                         {"positions", pf.at("positions")}};
    d.views["current_state"] = {{"iteration", doc.as_object().at("iteration")},
                                {"trades_count", pf.at("trades_count")}};
    return d;
}

inline void save_doc(Backend& b, const std::string& session, const json::value& doc) {
    b.save(session, as_document(doc), meta_of(doc));
}

/// Byte-exact comparison (member order, number spelling) on top of value equality.
inline bool same_doc(const json::value& a, const json::value& b) {
    return a == b && detail::print(a) == detail::print(b);
}

// ------------------------------------------------------------ files on disk

/// Every regular file under `dir`, with its bytes.
inline std::map<fs::path, std::string> snapshot_files(const fs::path& dir) {
    std::map<fs::path, std::string> out;
    for (auto& e : fs::recursive_directory_iterator(dir)) {
        if (!e.is_regular_file()) continue;
        std::ifstream f(e.path(), std::ios::binary);
        std::ostringstream ss;
        ss << f.rdbuf();
        out[e.path()] = ss.str();
    }
    return out;
}

/// Make `dir` hold exactly `files` again: new files are removed, each file is
/// re-created (unlinked first, so hard links to it are not written through).
inline void restore_files(const fs::path& dir, const std::map<fs::path, std::string>& files) {
    std::vector<fs::path> extra;
    for (auto& e : fs::recursive_directory_iterator(dir))
        if (e.is_regular_file() && !files.count(e.path())) extra.push_back(e.path());
    for (const auto& p : extra) fs::remove(p);
    for (const auto& [p, bytes] : files) {
        fs::create_directories(p.parent_path());
        fs::remove(p);
        std::ofstream f(p, std::ios::binary | std::ios::trunc);
        f.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
    }
}

inline void write_bytes(const fs::path& p, const std::string& bytes) {
    fs::remove(p);
    std::ofstream f(p, std::ios::binary | std::ios::trunc);
    f.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

/// Every path under `root` (files and directories), for "nothing was created" checks.
inline std::vector<fs::path> all_paths(const fs::path& root) {
    std::vector<fs::path> out;
    for (auto& e : fs::recursive_directory_iterator(root)) out.push_back(e.path());
    std::sort(out.begin(), out.end());
    return out;
}

// -------------------------------------------------------------- processes

/// A child process running this test binary with `args`, its stdout on a pipe.
class Child {
public:
    explicit Child(const std::vector<std::string>& args) {
        int fds[2];
        if (::pipe2(fds, O_CLOEXEC) != 0) throw std::runtime_error("pipe failed");
        pid_ = ::fork();
        if (pid_ < 0) throw std::runtime_error("fork failed");
        if (pid_ == 0) {
            ::dup2(fds[1], 1);
            std::vector<char*> argv;
            std::string self = "/proc/self/exe";
            argv.push_back(self.data());
            std::vector<std::string> copy = args;
            for (auto& a : copy) argv.push_back(a.data());
            argv.push_back(nullptr);
            ::execv("/proc/self/exe", argv.data());
            ::_exit(127);
        }
        ::close(fds[1]);
        out_ = fds[0];
    }
    ~Child() {
        if (pid_ > 0 && !reaped_) {
            ::kill(pid_, SIGKILL);
            int st = 0;
            ::waitpid(pid_, &st, 0);
        }
        if (out_ >= 0) ::close(out_);
    }
    Child(const Child&) = delete;
    Child& operator=(const Child&) = delete;

    [[nodiscard]] pid_t pid() const { return pid_; }

    /// Read stdout until a full line arrives (or EOF / `timeout_ms`).
    std::optional<std::string> read_line(int timeout_ms = 30000) {
        while (true) {
            auto nl = buf_.find('\n');
            if (nl != std::string::npos) {
                std::string line = buf_.substr(0, nl);
                buf_.erase(0, nl + 1);
                return line;
            }
            pollfd p{out_, POLLIN, 0};
            if (::poll(&p, 1, timeout_ms) <= 0) return std::nullopt;
            char tmp[4096];
            ssize_t n = ::read(out_, tmp, sizeof tmp);
            if (n <= 0) return std::nullopt;
            buf_.append(tmp, static_cast<std::size_t>(n));
        }
    }

    /// Wait for the exit; returns the exit status (or 128+signal).
    int wait() {
        int st = 0;
        ::waitpid(pid_, &st, 0);
        reaped_ = true;
        return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
    }

private:
    pid_t pid_ = -1;
    int out_ = -1;
    bool reaped_ = false;
    std::string buf_;
};

} // namespace tradestate::testing
