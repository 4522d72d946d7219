// tradestate_bench — save/load of seed-layout sessions through every file
// backend plugin, with the baselines measured in the same process:
//   * the limit: the same system calls with plain code on the same number of
//     bytes (atomic replace for json-files, in-place write(+fsync) for
//     mmap-binary, append(+fsync) for compressed-archive), and a plain
//     write(+fsync) of those bytes into an existing file;
//   * the seed's path: /usr/bin/python3 `json.dump(state, f, indent=2)` (+fsync)
//     of the same document, timed inside one interpreter (start-up excluded);
//   * load: a Boost.JSON parse of the same bytes alone;
//   * the loop stall per auto-save through AsyncSaver.
// Limit and plain-write timings are taken interleaved with each measured
// save, so that their ratios hold on a noisy machine.
//
// Environment (defaults in brackets): TRADESTATE_BENCH_SIZES [10,1000,100000]
// open positions; TRADESTATE_BENCH_TRADES [10000] closed trades;
// TRADESTATE_BENCH_LOOP_POSITIONS [10000]; TRADESTATE_BENCH_LOOP_SAVES [300];
// TRADESTATE_BENCH_LOOP_INTERVAL_US [2000]; TRADESTATE_BENCH_PY_ITERS
// [auto]; TRADESTATE_BENCH_PLUGIN_DIR [the build's plugin dir];
// TRADESTATE_BENCH_BACKENDS [the file backends the tree builds; "+name" adds one];
// TRADESTATE_BENCH_PG_URL: a PostgreSQL server for the `postgres` backend
// (TRADESTATE_BENCH_PG_JSONB=0: its `jsonb = false` setting)
// (each benchmark works in a schema of its own; only fsync:1 runs, as the
// server's own settings decide durability; the limit is append + fdatasync
// of the document's bytes, what a write-ahead log must do at least).
#include <tradestate/async_saver.hpp>
#include <tradestate/detail/atomic_file.hpp>
#include <tradestate/detail/binary_doc.hpp>
#include <tradestate/persister.hpp>
#include <tradestate/plugin_loader.hpp>
#include <tradestate/session_state.hpp>

#include <benchmark/benchmark.h>

#include <boost/json.hpp>

#include <spdlog/sinks/null_sink.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <new>
#include <random>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <fcntl.h>
#include <malloc.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#ifndef TRADESTATE_BENCH_PLUGIN_DIR
#error "TRADESTATE_BENCH_PLUGIN_DIR must name the build's plugin directory"
#endif

// ---------------------------------------------------------------- memory
// Live and peak bytes allocated through operator new (the host, the plugins
// and Boost.JSON all allocate through it). Off under the sanitizers, which
// bring their own allocator.
#if defined(__SANITIZE_ADDRESS__)
#define TRADESTATE_BENCH_COUNT_ALLOC 0
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define TRADESTATE_BENCH_COUNT_ALLOC 0
#endif
#endif
#ifndef TRADESTATE_BENCH_COUNT_ALLOC
#define TRADESTATE_BENCH_COUNT_ALLOC 1
#endif

namespace memtrack {
std::atomic<std::int64_t> live{0};
std::atomic<std::int64_t> peak{0};
inline void add(std::int64_t n) {
    const auto now = live.fetch_add(n, std::memory_order_relaxed) + n;
    auto p = peak.load(std::memory_order_relaxed);
    while (now > p && !peak.compare_exchange_weak(p, now, std::memory_order_relaxed)) {
    }
}
inline void reset_peak() { peak.store(live.load()); }
} // namespace memtrack

#if TRADESTATE_BENCH_COUNT_ALLOC
void* operator new(std::size_t n) {
    void* p = std::malloc(n ? n : 1);
    if (!p) throw std::bad_alloc();
    memtrack::add(static_cast<std::int64_t>(::malloc_usable_size(p)));
    return p;
}
void* operator new[](std::size_t n) { return ::operator new(n); }
void* operator new(std::size_t n, const std::nothrow_t&) noexcept {
    void* p = std::malloc(n ? n : 1);
    if (p) memtrack::add(static_cast<std::int64_t>(::malloc_usable_size(p)));
    return p;
}
void* operator new[](std::size_t n, const std::nothrow_t& t) noexcept { return ::operator new(n, t); }
void operator delete(void* p) noexcept {
    if (!p) return;
    memtrack::add(-static_cast<std::int64_t>(::malloc_usable_size(p)));
    std::free(p);
}
void operator delete[](void* p) noexcept { ::operator delete(p); }
void operator delete(void* p, std::size_t) noexcept { ::operator delete(p); }
void operator delete[](void* p, std::size_t) noexcept { ::operator delete(p); }
#endif

namespace {

namespace fs = std::filesystem;
namespace json = boost::json;
using namespace tradestate;
using Persister = StatePersister<SessionState>;
using Clock = std::chrono::steady_clock;

// ---------------------------------------------------------------- settings
std::string env_or(const char* name, const std::string& def) {
    const char* v = std::getenv(name);
    return v && *v ? std::string(v) : def;
}
std::int64_t env_int(const char* name, std::int64_t def) {
    const char* v = std::getenv(name);
    return v && *v ? std::stoll(v) : def;
}
std::vector<std::string> split(const std::string& s) {
    std::vector<std::string> out;
    std::stringstream ss(s);
    for (std::string x; std::getline(ss, x, ',');)
        if (!x.empty()) out.push_back(x);
    return out;
}

std::shared_ptr<spdlog::logger> quiet() {
    static auto l = std::make_shared<spdlog::logger>("bench", std::make_shared<spdlog::sinks::null_sink_mt>());
    return l;
}

double peak_rss_mb() {
    rusage ru{};
    ::getrusage(RUSAGE_SELF, &ru);
    return static_cast<double>(ru.ru_maxrss) / 1024.0;
}

double seconds(Clock::duration d) { return std::chrono::duration<double>(d).count(); }

class TempDir {
public:
    TempDir() {
        std::string t = (fs::temp_directory_path() / "tradestate-bench-XXXXXX").string();
        if (!::mkdtemp(t.data())) throw std::runtime_error("mkdtemp failed");
        path_ = t;
    }
    ~TempDir() {
        std::error_code ec;
        fs::remove_all(path_, ec);
    }
    TempDir(const TempDir&) = delete;
    TempDir& operator=(const TempDir&) = delete;
    [[nodiscard]] const fs::path& path() const { return path_; }

private:
    fs::path path_;
};

// ---------------------------------------------------------------- states
const char* const underlyings[] = {"NIFTY", "BANKNIFTY", "FINNIFTY", "MIDCPNIFTY", "SENSEX"};
const char* const months[] = {"JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"};
const char* const strategies[] = {"straddle", "strangle", "iron_condor", "bull_call_spread", "momentum"};
const char* const reasons[] = {"stop_loss", "take_profit", "time_exit", "expiry"};

/// A unique NSE-style option symbol for index i, e.g. NIFTY25SEP24650CE.
std::string symbol_for(std::size_t i) {
    const std::size_t u = i % 5, m = (i / 5) % 12, cp = (i / 60) % 2, strike = 10000 + 50 * (i / 120);
    return std::string(underlyings[u]) + "25" + months[m] + std::to_string(strike) + (cp ? "PE" : "CE");
}

/// A seed-layout session: `positions` open positions and `trades` closed
/// trades, deterministic for given arguments.
SessionState make_state(std::size_t positions, std::size_t trades, std::uint64_t seed = 1) {
    std::mt19937_64 rng(seed);
    auto paise = [&](std::int64_t lo, std::int64_t hi) {
        return Money::from_paise(lo + static_cast<std::int64_t>(rng() % static_cast<std::uint64_t>(hi - lo)));
    };
    const Timestamp t0 = Timestamp::from_micros(1'759'130'950'204'428); // 2025-09-29, IST market hours
    SessionState s;
    s.iteration = static_cast<std::int64_t>(trades + positions);
    s.timestamp = t0 + std::chrono::microseconds(s.iteration * 300'000'000LL);
    s.portfolio = Portfolio(Money::from_rupees(100'000'000'000LL));
    const std::int64_t lots[] = {25, 35, 40, 75, 15};
    // closed trades first (each symbol opened and closed), then the open book
    for (std::size_t i = 0; i < trades; ++i) {
        Position p;
        p.symbol = symbol_for(i + 1'000'000);
        p.lot_size = lots[i % 5];
        p.shares = p.lot_size * static_cast<std::int64_t>(1 + rng() % 4);
        p.side = (i % 3 == 0) ? Side::short_ : Side::long_;
        p.entry_price = paise(500, 60'000);
        p.stop_loss = p.entry_price - Money::from_paise(300);
        p.take_profit = p.entry_price + Money::from_paise(900);
        p.entry_time = t0 + std::chrono::microseconds(static_cast<std::int64_t>(i) * 61'000'123LL);
        p.strategy = strategies[i % 5];
        s.portfolio.open(p, paise(2'000, 9'000));
        s.portfolio.close(p.symbol, paise(500, 60'000),
                          p.entry_time + std::chrono::microseconds(static_cast<std::int64_t>(rng() % 3'600'000'000ULL)),
                          reasons[i % 4], paise(2'000, 9'000));
    }
    for (std::size_t i = 0; i < positions; ++i) {
        Position p;
        p.symbol = symbol_for(i);
        p.lot_size = lots[i % 5];
        p.shares = p.lot_size * static_cast<std::int64_t>(1 + rng() % 4);
        p.side = (i % 3 == 0) ? Side::short_ : Side::long_;
        p.entry_price = paise(500, 60'000);
        p.stop_loss = p.entry_price - Money::from_paise(2'000);
        p.take_profit = p.entry_price + Money::from_paise(4'000);
        p.entry_time = t0 + std::chrono::microseconds(static_cast<std::int64_t>(i) * 1'000'007LL);
        p.strategy = strategies[i % 5];
        s.portfolio.open(p, paise(2'000, 9'000));
    }
    return s;
}

struct Fixture {
    std::shared_ptr<const SessionState> state;
    std::int64_t state_bytes = 0; ///< heap bytes the state itself occupies
    std::string json_text;         ///< compact JSON of the main document
};

const Fixture& fixture(std::size_t positions, std::size_t trades) {
    static std::map<std::pair<std::size_t, std::size_t>, Fixture> cache;
    auto& f = cache[{positions, trades}];
    if (!f.state) {
        const auto before = memtrack::live.load();
        auto st = std::make_shared<const SessionState>(make_state(positions, trades));
        f.state_bytes = memtrack::live.load() - before;
        f.state = st;
        f.json_text = json::serialize(Persister::to_document(*st).main);
    }
    return f;
}

// ---------------------------------------------------------------- backends
std::shared_ptr<Backend> open_backend(const std::string& name, const fs::path& dir, bool fsync) {
    BackendOptions o;
    o.state_dir = dir;
    o.fsync = fsync;
    o.keep_backups = 2;
    o.logger = quiet();
    if (name == "postgres") {
        static int n = 0;
        o.settings["url"] = env_or("TRADESTATE_BENCH_PG_URL", "");
        o.settings["schema"] = "bench_" + std::to_string(::getpid()) + "_" + std::to_string(++n);
        o.settings["keep_history"] = 2; // the table holds what a file backend holds
        o.settings["jsonb"] = env_int("TRADESTATE_BENCH_PG_JSONB", 1) != 0;
    }
    PluginLoader loader({fs::path(env_or("TRADESTATE_BENCH_PLUGIN_DIR", TRADESTATE_BENCH_PLUGIN_DIR))}, quiet());
    return loader.open(name, std::move(o));
}

std::uint64_t tree_bytes(const fs::path& dir) {
    std::uint64_t n = 0;
    std::error_code ec;
    for (auto it = fs::recursive_directory_iterator(dir, ec); !ec && it != fs::recursive_directory_iterator();
         it.increment(ec)) {
        std::error_code e2;
        if (it->is_regular_file(e2) && !it->is_symlink(e2)) n += it->file_size(e2);
    }
    return n;
}

/// The top-level *.json files json-files writes per save (main + views).
std::vector<std::uint64_t> json_files_written(const fs::path& dir) {
    std::vector<std::uint64_t> sizes;
    for (const auto& e : fs::directory_iterator(dir))
        if (e.is_regular_file() && e.path().extension() == ".json") sizes.push_back(e.file_size());
    return sizes;
}

// ---------------------------------------------------------------- the limit
void write_or_die(int fd, const std::string& bytes, std::size_t n) {
    std::size_t done = 0;
    while (done < n) {
        const std::size_t chunk = std::min(n - done, bytes.size());
        if (detail::write_all(fd, bytes.data(), chunk) != 0) throw std::runtime_error("write failed");
        done += chunk;
    }
}

/// tmp + write + fsync + rename + fsync(dir) of each size (no fsync: tmp + write + rename).
void limit_atomic_replace(const fs::path& dir, const std::vector<std::uint64_t>& sizes, const std::string& bytes,
                          bool fsync) {
    int k = 0;
    for (auto n : sizes) {
        const auto target = dir / ("limit-" + std::to_string(k++) + ".json");
        const auto tmp = dir / ("limit-" + std::to_string(k) + ".json.tmp");
        detail::unique_fd fd(::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644));
        if (fd.get() < 0) throw std::runtime_error("open failed");
        write_or_die(fd.get(), bytes, n);
        if (fsync && ::fsync(fd.get()) != 0) throw std::runtime_error("fsync failed");
        fd.reset();
        if (::rename(tmp.c_str(), target.c_str()) != 0) throw std::runtime_error("rename failed");
    }
    if (fsync) detail::fsync_directory(dir);
}

/// pwrite at offset 0 of an existing file (+ fdatasync): an in-place update.
void limit_in_place(const fs::path& file, std::uint64_t n, const std::string& bytes, bool fsync) {
    detail::unique_fd fd(::open(file.c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0644));
    if (fd.get() < 0) throw std::runtime_error("open failed");
    std::size_t done = 0;
    while (done < n) {
        const std::size_t chunk = std::min<std::size_t>(n - done, bytes.size());
        if (::pwrite(fd.get(), bytes.data(), chunk, static_cast<off_t>(done)) != static_cast<ssize_t>(chunk))
            throw std::runtime_error("pwrite failed");
        done += chunk;
    }
    if (fsync && ::fdatasync(fd.get()) != 0) throw std::runtime_error("fdatasync failed");
}

/// append n bytes (+ fdatasync).
void limit_append(const fs::path& file, std::uint64_t n, const std::string& bytes, bool fsync) {
    detail::unique_fd fd(::open(file.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644));
    if (fd.get() < 0) throw std::runtime_error("open failed");
    write_or_die(fd.get(), bytes, n);
    if (fsync && ::fdatasync(fd.get()) != 0) throw std::runtime_error("fdatasync failed");
}

/// The plain baseline: write n bytes over an existing file (+ fsync).
void plain_write(const fs::path& file, std::uint64_t n, const std::string& bytes, bool fsync) {
    detail::unique_fd fd(::open(file.c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0644));
    if (fd.get() < 0) throw std::runtime_error("open failed");
    write_or_die(fd.get(), bytes, n);
    if (fsync && ::fsync(fd.get()) != 0) throw std::runtime_error("fsync failed");
}

// ---------------------------------------------------------------- save
void BM_Save(benchmark::State& st, std::string backend, std::size_t positions, std::size_t trades, bool fsync) {
    const Fixture& fx = fixture(positions, trades);
    TempDir dir;
    const fs::path state_dir = dir.path() / "state", limit_dir = dir.path() / "limit";
    fs::create_directories(limit_dir);
    auto persister = std::make_shared<Persister>(open_backend(backend, state_dir, fsync), quiet());
    const std::string session = "bench";

    // First save, outside the timing: creates the files; measures memory.
    const auto live_before = memtrack::live.load();
    memtrack::reset_peak();
    persister->save(*fx.state, session);
    const auto extra_peak = memtrack::peak.load() - live_before;

    // The bytes one save writes, for the baselines.
    std::vector<std::uint64_t> sizes;
    std::uint64_t stored = 0;
    if (backend == "json-files") {
        sizes = json_files_written(state_dir / "sessions" / session);
        for (auto s : sizes) stored += s;
    } else if (backend == "compressed-archive") {
        const auto a = tree_bytes(state_dir);
        persister->save(*fx.state, session);
        stored = tree_bytes(state_dir) - a;
        sizes = {stored};
    } else if (backend == "postgres") {
        stored = fx.json_text.size(); // doc_text; the server also keeps its JSONB copy and WAL
        sizes = {stored};
    } else {
        stored = detail::binary_encode(Persister::to_document(*fx.state).main).size();
        sizes = {stored};
    }
    const std::string filler(std::min<std::uint64_t>(stored, 1 << 20), 'x');
    const fs::path plain_file = limit_dir / "plain.bin", place_file = limit_dir / "in-place.bin",
                   append_file = limit_dir / "append.bin";
    plain_write(plain_file, stored, filler, false);
    limit_in_place(place_file, stored, filler, false);

    Clock::duration ours{}, limit{}, plain{};
    std::int64_t n = 0;
    for (auto _ : st) {
        const auto t0 = Clock::now();
        persister->save(*fx.state, session);
        const auto t1 = Clock::now();
        st.SetIterationTime(seconds(t1 - t0));
        ours += t1 - t0;
        const auto t2 = Clock::now();
        if (backend == "json-files") limit_atomic_replace(limit_dir, sizes, filler, fsync);
        else if (backend == "mmap-binary") limit_in_place(place_file, stored, filler, fsync);
        else limit_append(append_file, stored, filler, fsync);
        const auto t3 = Clock::now();
        plain_write(plain_file, stored, filler, fsync);
        const auto t4 = Clock::now();
        limit += t3 - t2;
        plain += t4 - t3;
        ++n;
    }
    if (n == 0) return;
    const double doc = static_cast<double>(fx.json_text.size());
    const double o = seconds(ours) / static_cast<double>(n), l = seconds(limit) / static_cast<double>(n),
                 p = seconds(plain) / static_cast<double>(n);
    st.counters["doc_bytes"] = doc;
    st.counters["stored_bytes"] = static_cast<double>(stored);
    st.counters["doc_MBps"] = doc / o / 1e6;
    st.counters["stored_MBps"] = static_cast<double>(stored) / o / 1e6;
    st.counters["us_per_op"] = o * 1e6;
    st.counters["limit_us"] = l * 1e6;
    st.counters["plain_us"] = p * 1e6;
    st.counters["x_limit"] = o / l;
    st.counters["x_plain"] = o / p;
    st.counters["state_bytes"] = static_cast<double>(fx.state_bytes);
    st.counters["save_extra_peak_bytes"] = static_cast<double>(extra_peak);
    st.counters["mem_x_state"] = fx.state_bytes > 0 ? static_cast<double>(extra_peak) / static_cast<double>(fx.state_bytes) : 0;
    st.counters["peak_rss_MB"] = peak_rss_mb();
    if (backend == "compressed-archive") {
        st.counters["binary_bytes"] =
            static_cast<double>(detail::binary_encode(Persister::to_document(*fx.state).main).size());
        st.counters["compression_x_json"] = doc / static_cast<double>(stored);
        st.counters["compression_x_binary"] = st.counters["binary_bytes"] / static_cast<double>(stored);
    }
}

// ---------------------------------------------------------------- load
void BM_Load(benchmark::State& st, std::string backend, std::size_t positions, std::size_t trades) {
    const Fixture& fx = fixture(positions, trades);
    TempDir dir;
    auto persister = std::make_shared<Persister>(open_backend(backend, dir.path(), false), quiet());
    persister->save(*fx.state, "bench");
    std::uint64_t file_bytes = 0;
    if (backend == "json-files") {
        file_bytes = fs::file_size(dir.path() / "sessions" / "bench" / "fno_system_state.json");
    } else if (backend == "postgres") {
        file_bytes = fx.json_text.size();
    } else {
        file_bytes = tree_bytes(dir.path());
    }
    {
        auto check = persister->load("bench");
        if (!check || !(check->state == *fx.state)) {
            st.SkipWithError("load did not return the saved state");
            return;
        }
    }
    const auto live_before = memtrack::live.load();
    memtrack::reset_peak();
    for (auto _ : st) {
        auto r = persister->load("bench");
        benchmark::DoNotOptimize(r);
    }
    const double doc = static_cast<double>(fx.json_text.size());
    st.counters["doc_bytes"] = doc;
    st.counters["file_bytes"] = static_cast<double>(file_bytes);
    st.counters["doc_MBps"] = benchmark::Counter(doc / 1e6, benchmark::Counter::kIsIterationInvariantRate);
    st.counters["file_MBps"] =
        benchmark::Counter(static_cast<double>(file_bytes) / 1e6, benchmark::Counter::kIsIterationInvariantRate);
    st.counters["load_extra_peak_bytes"] = static_cast<double>(memtrack::peak.load() - live_before);
    st.counters["peak_rss_MB"] = peak_rss_mb();
}

/// Boost.JSON parse of the json-files main file bytes, nothing else.
void BM_ParseOnly(benchmark::State& st, std::size_t positions, std::size_t trades) {
    const Fixture& fx = fixture(positions, trades);
    TempDir dir;
    auto persister = std::make_shared<Persister>(open_backend("json-files", dir.path(), false), quiet());
    persister->save(*fx.state, "bench");
    const std::string text =
        detail::read_file(dir.path() / "sessions" / "bench" / "fno_system_state.json", std::uint64_t{1} << 32);
    for (auto _ : st) {
        auto v = json::parse(text);
        benchmark::DoNotOptimize(v);
    }
    st.counters["file_bytes"] = static_cast<double>(text.size());
    st.counters["file_MBps"] =
        benchmark::Counter(static_cast<double>(text.size()) / 1e6, benchmark::Counter::kIsIterationInvariantRate);
    st.counters["peak_rss_MB"] = peak_rss_mb();
}

// ---------------------------------------------------------------- the seed's path
const char* const python_script = R"PY(
import json, os, sys, time, resource
doc_path, out_dir, iters, do_fsync = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4] == "1"
with open(doc_path) as f:
    state = json.load(f)
target = os.path.join(out_dir, "trading_state.json")
def save():
    with open(target, "w") as f:
        json.dump(state, f, indent=2)
        f.flush()
        if do_fsync:
            os.fsync(f.fileno())
save()  # warm-up
t0 = time.perf_counter()
for _ in range(iters):
    save()
t1 = time.perf_counter()
print(t1 - t0, iters, os.path.getsize(target), resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
)PY";

void BM_SeedPython(benchmark::State& st, std::size_t positions, std::size_t trades, bool fsync) {
    const Fixture& fx = fixture(positions, trades);
    TempDir dir;
    const fs::path doc = dir.path() / "doc.json", script = dir.path() / "seed_save.py";
    detail::write_file_atomic(doc, fx.json_text, false);
    detail::write_file_atomic(script, python_script, false);
    std::int64_t iters = env_int("TRADESTATE_BENCH_PY_ITERS", 0);
    if (iters <= 0) iters = std::clamp<std::int64_t>(static_cast<std::int64_t>(40'000'000 / (fx.json_text.size() + 1)), 3, 200);
    double per_op = 0, py_rss = 0, bytes = 0;
    for (auto _ : st) {
        const std::string cmd = "/usr/bin/python3 " + script.string() + " " + doc.string() + " " + dir.path().string() +
                                " " + std::to_string(iters) + (fsync ? " 1" : " 0");
        FILE* p = ::popen(cmd.c_str(), "r");
        if (!p) {
            st.SkipWithError("cannot start /usr/bin/python3");
            return;
        }
        char line[256] = {};
        const bool got = std::fgets(line, sizeof line, p) != nullptr;
        const int rc = ::pclose(p);
        double total = 0, n = 0, size = 0, rss = 0;
        if (!got || rc != 0 || std::sscanf(line, "%lf %lf %lf %lf", &total, &n, &size, &rss) != 4 || n <= 0) {
            st.SkipWithError("the Python seed-path script failed");
            return;
        }
        per_op = total / n;
        py_rss = rss / 1024.0;
        bytes = size;
        st.SetIterationTime(per_op);
    }
    st.counters["us_per_op"] = per_op * 1e6;
    st.counters["file_bytes"] = bytes;
    st.counters["doc_bytes"] = static_cast<double>(fx.json_text.size());
    st.counters["doc_MBps"] = static_cast<double>(fx.json_text.size()) / per_op / 1e6;
    st.counters["python_iterations"] = static_cast<double>(iters);
    st.counters["peak_rss_MB"] = py_rss;
}

// ---------------------------------------------------------------- loop stall
/// A monitoring loop over `positions` open positions: every step moves one
/// position (close + reopen, as a strategy would), then auto-saves: the
/// measured stall is what the loop spends in the auto-save call.
/// `async`: through AsyncSaver (the runner's path); else a synchronous save.
void BM_LoopStall(benchmark::State& st, std::size_t positions, std::size_t trades, bool async) {
    SessionState state = *fixture(positions, trades).state;
    TempDir dir;
    auto persister = std::make_shared<Persister>(open_backend("json-files", dir.path(), true), quiet());
    const auto interval = std::chrono::microseconds(env_int("TRADESTATE_BENCH_LOOP_INTERVAL_US", 2000));
    std::unique_ptr<AsyncSaver<SessionState>> saver;
    if (async) saver = std::make_unique<AsyncSaver<SessionState>>(persister, "loop");
    std::vector<double> stalls;
    std::mt19937_64 rng(7);
    std::size_t next_symbol = 5'000'000;
    for (auto _ : st) {
        // one market step: a position closes, a new one opens
        const auto& book = state.portfolio.positions();
        auto it = book.begin();
        std::advance(it, static_cast<long>(rng() % book.size()));
        const std::string sym = it->first;
        const Money px = it->second.entry_price + Money::from_paise(static_cast<std::int64_t>(rng() % 500));
        state.timestamp = state.timestamp + std::chrono::microseconds(1'000'000);
        state.portfolio.close(sym, px, state.timestamp, "take_profit", Money::from_paise(2'000));
        Position p;
        p.symbol = symbol_for(next_symbol++);
        p.lot_size = 75;
        p.shares = 75;
        p.entry_price = px;
        p.entry_time = state.timestamp;
        p.strategy = "straddle";
        state.portfolio.open(p, Money::from_paise(2'000));
        ++state.iteration;

        const auto t0 = Clock::now();
        if (async) saver->submit_copy(state, state.iteration);
        else persister->save(state, "loop");
        const auto t1 = Clock::now();
        stalls.push_back(seconds(t1 - t0));
        st.SetIterationTime(seconds(t1 - t0));
        std::this_thread::sleep_for(interval); // the loop's own interval between steps
    }
    AsyncSaverStats stats;
    if (saver) {
        saver->flush();
        stats = saver->stats();
        saver.reset();
    }
    if (stalls.empty()) return;
    std::sort(stalls.begin(), stalls.end());
    auto pct = [&](double q) {
        return stalls[std::min(stalls.size() - 1, static_cast<std::size_t>(q * static_cast<double>(stalls.size())))] * 1e6;
    };
    st.counters["stall_p50_us"] = pct(0.50);
    st.counters["stall_p99_us"] = pct(0.99);
    st.counters["stall_max_us"] = stalls.back() * 1e6;
    st.counters["auto_saves"] = static_cast<double>(stalls.size());
    if (async) {
        st.counters["written"] = static_cast<double>(stats.written);
        st.counters["coalesced"] = static_cast<double>(stats.coalesced);
        st.counters["last_save_us"] = static_cast<double>(stats.last_save_time.count()) / 1e3;
    }
    st.counters["peak_rss_MB"] = peak_rss_mb();
}

/// The mmap-binary target case: 100 positions, no history, no fsync.
void BM_MmapSmall(benchmark::State& st, std::size_t positions) {
    BM_Save(st, "mmap-binary", positions, 0, false);
}

} // namespace

int main(int argc, char** argv) {
    auto sizes = split(env_or("TRADESTATE_BENCH_SIZES", "10,1000,100000"));
    if (sizes.size() == 1 && sizes.front() == "none") sizes.clear(); // only the loop stall
    const auto trades = static_cast<std::size_t>(env_int("TRADESTATE_BENCH_TRADES", 10'000));
    // The file backends this tree builds, unless TRADESTATE_BENCH_BACKENDS
    // names others ("+postgres": those and postgres).
    std::string backend_list = env_or("TRADESTATE_BENCH_BACKENDS", TRADESTATE_BENCH_FILE_BACKENDS);
    if (!backend_list.empty() && backend_list.front() == '+')
        backend_list = std::string(TRADESTATE_BENCH_FILE_BACKENDS) + "," + backend_list.substr(1);
    const auto backends = split(backend_list);
    const auto loop_positions = static_cast<std::size_t>(env_int("TRADESTATE_BENCH_LOOP_POSITIONS", 10'000));
    const auto loop_saves = env_int("TRADESTATE_BENCH_LOOP_SAVES", 300);
    const bool small_sizes_only = sizes.size() == 1 && std::stoll(sizes.front()) <= 100;
    // (the tiny ctest run: the loop over a small book too)

    for (const auto& s : sizes) {
        const auto n = static_cast<std::size_t>(std::stoll(s));
        const std::string tag = "/n:" + s + "/trades:" + std::to_string(trades);
        for (const auto& b : backends)
            for (bool fs_on : {true, false}) {
                if (b == "postgres" && !fs_on) continue;
                benchmark::RegisterBenchmark(("save/" + b + tag + "/fsync:" + (fs_on ? "1" : "0")).c_str(), BM_Save, b,
                                             n, trades, fs_on)
                    ->UseManualTime()
                    ->Unit(benchmark::kMicrosecond);
            }
        for (const auto& b : backends)
            benchmark::RegisterBenchmark(("load/" + b + tag).c_str(), BM_Load, b, n, trades)->Unit(benchmark::kMicrosecond);
        benchmark::RegisterBenchmark(("parse_only/boost-json" + tag).c_str(), BM_ParseOnly, n, trades)
            ->Unit(benchmark::kMicrosecond);
        for (bool fs_on : {true, false})
            benchmark::RegisterBenchmark(("seed_python/json.dump-indent2" + tag + "/fsync:" + (fs_on ? "1" : "0")).c_str(),
                                         BM_SeedPython, n, trades, fs_on)
                ->UseManualTime()
                ->Iterations(1)
                ->Unit(benchmark::kMicrosecond);
    }
    if (std::find(backends.begin(), backends.end(), "mmap-binary") != backends.end())
        benchmark::RegisterBenchmark("save/mmap-binary/n:100/trades:0/fsync:0", BM_MmapSmall, std::size_t{100})
            ->UseManualTime()
            ->Unit(benchmark::kMicrosecond);
    if (loop_saves > 0) {
        const auto lp = small_sizes_only ? std::min<std::size_t>(loop_positions, 50) : loop_positions;
        const std::string tag = "/n:" + std::to_string(lp) + "/trades:" + std::to_string(trades);
        benchmark::RegisterBenchmark(("loop_stall/async" + tag).c_str(), BM_LoopStall, lp, trades, true)
            ->UseManualTime()
            ->Iterations(loop_saves)
            ->Unit(benchmark::kMicrosecond);
        benchmark::RegisterBenchmark(("loop_stall/sync" + tag).c_str(), BM_LoopStall, lp, trades, false)
            ->UseManualTime()
            ->Iterations(std::max<std::int64_t>(5, loop_saves / 10))
            ->Unit(benchmark::kMicrosecond);
    }
    benchmark::Initialize(&argc, argv);
    if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
    benchmark::RunSpecifiedBenchmarks();
    benchmark::Shutdown();
    return 0;
}
