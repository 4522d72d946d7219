// torture — SIGKILL torture of a storage backend.
//
// A child process saves a growing, changing session state in a loop through
// the real plugin and reports on a pipe "B k" before and "E k" after each
// save of iteration k (the "E" line is written only after save() returned).
// The parent SIGKILLs the child at random moments (random delays scaled to
// the measured save time, so kills land before, inside and after writes of
// small and large states), then loads the session with a fresh backend and
// checks that it is exactly the document of the last acknowledged save or
// of the save in flight: never older, never a mix, never unloadable. The
// next child resumes from what was loaded, so the state keeps growing over
// the whole run.
//
//   torture --backend mmap-binary --kills 10000 --state-dir /tmp/x
#include "../conformance/support.hpp"

#include <CLI/CLI.hpp>

#include <chrono>
#include <csignal>
#include <cstdio>
#include <iostream>
#include <random>
#include <thread>

#include <fcntl.h>
#include <poll.h>
#include <sys/wait.h>
#include <unistd.h>

using namespace tradestate;
using namespace tradestate::testing;

namespace {

struct Settings {
    std::string backend;
    long kills = 2000;
    fs::path state_dir;
    std::size_t max_positions = 600;  ///< size of the occasional large state
    std::uint64_t seed = 1;
    long progress = 500;
    bool fsync = true;
    bool keep = false;
    std::string plugin_dir = tradestate::testing::plugin_dir().string();
};

const std::string session = "torture";

/// The state of iteration k: positions and trade history change every
/// iteration; the history grows with k (capped), and every 13th iteration is
/// a large state so that kills also land in the middle of long writes.
json::value torture_doc(std::int64_t k, std::size_t max_positions) {
    const auto uk = static_cast<std::size_t>(k);
    std::size_t positions = 3 + (uk * 7) % 40;
    if (k % 13 == 0) positions = max_positions / 2 + (uk * 31) % (max_positions / 2 + 1);
    const std::size_t trades = std::min<std::size_t>(uk / 3, 400) + uk % 5;
    return make_doc(positions, trades, static_cast<std::uint64_t>(k) * 2654435761u, k,
                    k % 2 ? "straddle" : "iron_condor");
}

[[noreturn]] void child_main(const Settings& s, const BackendOptions& opts, int out_fd) {
    auto say = [&](char tag, std::int64_t k) {
        char line[64];
        const int n = std::snprintf(line, sizeof line, "%c %lld\n", tag, static_cast<long long>(k));
        if (::write(out_fd, line, static_cast<std::size_t>(n)) != n) ::_exit(3);
    };
    try {
        PluginLoader loader({fs::path(s.plugin_dir)}, quiet_logger());
        auto b = loader.open(s.backend, opts);
        auto lease = b->acquire_writer(session);
        std::int64_t k = 0;
        if (auto r = b->load(session)) k = r->doc.as_object().at("iteration").as_int64();
        for (;;) {
            ++k;
            const auto doc = torture_doc(k, s.max_positions);
            const auto d = as_document(doc);
            const auto m = meta_of(doc);
            say('B', k);
            b->save(session, d, m);
            say('E', k);
        }
    } catch (const std::exception& e) {
        std::string msg = std::string("X ") + e.what() + "\n";
        (void)!::write(out_fd, msg.data(), msg.size());
        ::_exit(2);
    }
}

int run(const Settings& s) {
    BackendOptions opts;
    opts.state_dir = s.state_dir;
    opts.fsync = s.fsync;
    opts.keep_backups = 3;
    opts.logger = quiet_logger();
    PluginLoader loader({fs::path(s.plugin_dir)}, quiet_logger());
    (void)loader.open(s.backend, opts); // fail early on an unknown backend

    std::mt19937_64 rng(s.seed);
    std::int64_t acked = 0;          // highest iteration whose save() returned, over all rounds
    long mid_save = 0, loaded_in_flight = 0, recovered = 0, saves_total = 0;
    double save_avg_us = 2000;       // running mean of one save's duration (B to E)
    const auto t0 = std::chrono::steady_clock::now();

    std::cout << "torture: backend " << s.backend << ", " << s.kills << " kills, state dir " << s.state_dir.string()
              << ", fsync " << (s.fsync ? "on" : "off") << ", large state every 13th save (" << s.max_positions / 2
              << ".." << s.max_positions << " positions)" << std::endl;
    for (long round = 1; round <= s.kills; ++round) {
        ForkedChild child([&](int fd) { child_main(s, opts, fd); });
        std::string out;
        std::int64_t begun = 0, ended = acked;
        std::size_t parsed = 0;
        auto last_b = std::chrono::steady_clock::now();
        long round_saves = 0;
        auto parse_lines = [&] {
            std::size_t nl;
            while ((nl = out.find('\n', parsed)) != std::string::npos) {
                const std::string line = out.substr(parsed, nl - parsed);
                parsed = nl + 1;
                if (line.size() < 3) continue;
                if (line[0] == 'X') throw std::runtime_error("round " + std::to_string(round) +
                                                             ": the saving child failed: " + line.substr(2));
                const std::int64_t k = std::stoll(line.substr(2));
                const auto now = std::chrono::steady_clock::now();
                if (line[0] == 'B') {
                    begun = std::max(begun, k);
                    last_b = now;
                }
                if (line[0] == 'E') {
                    ended = std::max(ended, k);
                    ++saves_total;
                    ++round_saves;
                    const double us = std::chrono::duration<double, std::micro>(now - last_b).count();
                    save_avg_us = 0.9 * save_avg_us + 0.1 * us;
                }
            }
        };
        auto read_some = [&](int timeout_ms) {
            if (!child.read_some(out, timeout_ms)) return false;
            parse_lines();
            return true;
        };
        // Wait until the child began its first save, then kill it after a
        // random delay of 0 to ~4 save durations (1 in 8 rounds: 0 to 20).
        while (begun == 0)
            if (!read_some(60000))
                throw std::runtime_error("round " + std::to_string(round) + ": the saving child did not start");
        const double span = save_avg_us * ((rng() % 8 == 0) ? 20.0 : 4.0);
        const auto delay = std::chrono::microseconds(static_cast<long>(static_cast<double>(rng() % 1000000) / 1e6 * span));
        const auto deadline = std::chrono::steady_clock::now() + delay;
        while (std::chrono::steady_clock::now() < deadline) {
            const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
            if (left.count() >= 1) read_some(static_cast<int>(left.count()));
            else std::this_thread::sleep_for(deadline - std::chrono::steady_clock::now());
        }
        const int st = child.kill();
        while (read_some(0)) {
        }
        if (!WIFSIGNALED(st))
            throw std::runtime_error("round " + std::to_string(round) + ": the child exited on its own: " + out);
        // No save finished in this round: the estimate of a save's duration
        // is too short (the first save of a child also loads the plugin).
        if (round_saves == 0) save_avg_us = std::min(save_avg_us * 1.25, 2e6);
        const bool in_flight = begun > ended;
        if (in_flight) ++mid_save;

        auto b = loader.open(s.backend, opts);
        std::optional<LoadResult> r;
        try {
            r = b->load(session);
        } catch (const std::exception& e) {
            throw std::runtime_error("round " + std::to_string(round) + ": the state does not load after SIGKILL " +
                                     "(last acknowledged " + std::to_string(ended) + ", in flight " +
                                     std::to_string(begun) + "): " + e.what());
        }
        if (!r) {
            if (ended != 0)
                throw std::runtime_error("round " + std::to_string(round) + ": the session vanished after save " +
                                         std::to_string(ended) + " was acknowledged");
            continue;
        }
        const auto got = r->doc.as_object().at("iteration").as_int64();
        if (got != ended && !(in_flight && got == begun))
            throw std::runtime_error("round " + std::to_string(round) + ": loaded iteration " + std::to_string(got) +
                                     ", expected " + std::to_string(ended) + " (last acknowledged)" +
                                     (in_flight ? " or " + std::to_string(begun) + " (in flight)" : std::string()) +
                                     " from " + r->source);
        if (!same_doc(r->doc, torture_doc(got, s.max_positions)))
            throw std::runtime_error("round " + std::to_string(round) + ": the document of iteration " +
                                     std::to_string(got) + " loaded from " + r->source +
                                     " differs from what was saved (a mix of two saves?)");
        const auto m = meta_of(r->doc);
        if (r->meta.iteration != m.iteration || r->meta.cash_paise != m.cash_paise || r->sequence == 0)
            throw std::runtime_error("round " + std::to_string(round) + ": metadata of iteration " +
                                     std::to_string(got) + " does not match its document");
        if (got == begun && in_flight) ++loaded_in_flight;
        if (r->recovered) ++recovered;
        acked = got;
        if (s.progress > 0 && (round % s.progress == 0 || round == s.kills)) {
            const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
            std::cout << "  " << round << " kills, " << mid_save << " during a save (" << loaded_in_flight
                      << " loaded the in-flight save), " << recovered << " recovered loads, iteration " << acked
                      << ", mean save " << static_cast<long>(save_avg_us) << " us, " << static_cast<long>(secs)
                      << " s" << std::endl;
        }
    }
    const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    std::cout << "RESULT backend=" << s.backend << " kills=" << s.kills << " survived=" << s.kills
              << " during_save=" << mid_save << " loaded_in_flight=" << loaded_in_flight << " recovered=" << recovered
              << " saves=" << saves_total << " final_iteration=" << acked << " seconds=" << static_cast<long>(secs)
              << std::endl;
    if (mid_save < s.kills / 10) {
        std::cerr << "torture: only " << mid_save << " of " << s.kills
                  << " kills landed inside a save; that proves too little (raise the state size)\n";
        return 1;
    }
    return 0;
}

} // namespace

int main(int argc, char** argv) {
    Settings s;
    CLI::App app{"torture: SIGKILL a process saving through a tradestate backend, at random moments, and check "
                 "after every kill that the state loads as the last acknowledged save or the one in flight"};
    app.add_option("--backend", s.backend, "backend to torture (json-files, mmap-binary, compressed-archive)")
        ->required();
    app.add_option("--kills", s.kills, "number of SIGKILLs")->check(CLI::Range(1L, 100000000L));
    app.add_option("--state-dir", s.state_dir,
                   "state directory (default: a new directory under /tmp, removed after a passing run)");
    app.add_option("--max-positions", s.max_positions, "open positions of the largest state (every 13th save is large)")
        ->check(CLI::Range(std::size_t{2}, std::size_t{100000}));
    app.add_option("--seed", s.seed, "random seed of the kill moments");
    app.add_option("--progress", s.progress, "print a progress line every N kills (0: only the result)");
    app.add_flag("!--no-fsync", s.fsync, "save with fsync off (default on)");
    app.add_flag("--keep", s.keep, "keep the state directory after a passing run");
    app.add_option("--plugin-dir", s.plugin_dir, "directory holding the backend plugins");
    CLI11_PARSE(app, argc, argv);

    bool made = false;
    if (s.state_dir.empty()) {
        std::string tmpl = (fs::temp_directory_path() / "tradestate-torture-XXXXXX").string();
        if (!::mkdtemp(tmpl.data())) {
            std::perror("mkdtemp");
            return 1;
        }
        s.state_dir = tmpl;
        made = true;
    }
    try {
        const int rc = run(s);
        if (rc == 0 && made && !s.keep) fs::remove_all(s.state_dir);
        return rc;
    } catch (const std::exception& e) {
        std::cerr << "torture: FAILED: " << e.what() << "\n(state kept in " << s.state_dir.string() << ")\n";
        return 1;
    }
}
