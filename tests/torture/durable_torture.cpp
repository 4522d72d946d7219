// durable_torture — kill -9 torture of the durable_session example, the
// outside proof of Session<State>: start it, read its `acknowledged <n>`
// lines, SIGKILL it at a random moment (after a random number of
// acknowledgements, sometimes a few hundred microseconds later), start it
// again and require `resumed at <m>` with m >= the last acknowledged n (and
// m <= n + 1: at most the one operation in flight), never an unloadable
// state, never a reported loss.
//
//   durable_torture --program PATH --backend NAME --kills N [--state-dir DIR] [--config FILE]
#include <tradestate_test/process.hpp>
#include <tradestate_test/temp_dir.hpp>

#include <CLI/CLI.hpp>

#include <chrono>
#include <csignal>
#include <iostream>
#include <optional>
#include <random>
#include <string>

#include <unistd.h>

using namespace tradestate::testing;

namespace {

std::optional<long long> number_after(const std::string& line, const std::string& prefix) {
    if (line.rfind(prefix, 0) != 0) return std::nullopt;
    try {
        return std::stoll(line.substr(prefix.size()));
    } catch (const std::exception&) {
        return std::nullopt;
    }
}

} // namespace

int main(int argc, char** argv) {
    CLI::App app{"durable_torture: kill -9 torture of examples/durable_session"};
    std::string program, backend = "json-files", state_dir, config;
    long kills = 100;
    std::uint64_t seed = 1;
    app.add_option("--program", program, "the durable_session binary")->required();
    app.add_option("--backend", backend, "backend to run it on");
    app.add_option("--kills", kills, "number of SIGKILLs");
    app.add_option("--state-dir", state_dir, "state directory (default: a fresh temporary one, removed afterwards)");
    app.add_option("--config", config, "config.toml for the program (e.g. [persistence.postgres] settings)");
    app.add_option("--seed", seed, "random seed of the kill moments");
    CLI11_PARSE(app, argc, argv);

    std::optional<TempDir> tmp;
    if (state_dir.empty()) {
        tmp.emplace("durable-torture");
        state_dir = tmp->str();
    }
    // A session name of this run's own, so that a server-side backend
    // (postgres) holding sessions of earlier runs cannot confuse round 1.
    const std::string session = "torture-" + std::to_string(::getpid()) + "-" +
                                std::to_string(std::chrono::system_clock::now().time_since_epoch().count());
    std::vector<std::string> cmd{program, "--state-dir", state_dir, "--backend", backend, "--session", session};
    if (!config.empty()) cmd.insert(cmd.end(), {"--config", config});
    std::mt19937_64 rng(seed);
    long long acked = 0, total_acks = 0;
    long in_flight_landed = 0, late_kills = 0;
    const auto t0 = std::chrono::steady_clock::now();
    std::cout << "durable_torture: " << program << " on " << backend << ", " << kills << " kills, state dir "
              << state_dir << std::endl;
    for (long round = 1; round <= kills; ++round) {
        Process p(cmd);
        const auto first = p.until("resumed at ", std::chrono::seconds(120));
        const auto resumed = first ? number_after(*first, "resumed at ") : std::nullopt;
        if (!resumed) {
            p.signal(SIGKILL);
            std::cerr << "round " << round << ": FAILED: no 'resumed at' line (the state does not load):\n"
                      << p.output() << std::endl;
            return 1;
        }
        if (*resumed < acked) {
            std::cerr << "round " << round << ": FAILED: resumed at " << *resumed << " but operation " << acked
                      << " was acknowledged: " << acked - *resumed << " lost" << std::endl;
            return 1;
        }
        if (*resumed > acked + 1) {
            std::cerr << "round " << round << ": FAILED: resumed at " << *resumed << " after " << acked
                      << " acknowledged operations: more than the one in flight" << std::endl;
            return 1;
        }
        if (*resumed == acked + 1) ++in_flight_landed;
        acked = *resumed;
        const long want = static_cast<long>(rng() % 40);
        for (long got = 0; got < want;) {
            const auto l = p.read_line(std::chrono::seconds(120));
            if (!l) break;
            if (const auto n = number_after(*l, "acknowledged ")) {
                if (*n != acked + 1) {
                    std::cerr << "round " << round << ": FAILED: acknowledged " << *n << " after " << acked << std::endl;
                    return 1;
                }
                acked = *n;
                ++total_acks;
                ++got;
            }
        }
        if (rng() % 2) {
            ++late_kills;
            const auto until = std::chrono::steady_clock::now() + std::chrono::microseconds(rng() % 1500);
            while (std::chrono::steady_clock::now() < until) {
            }
        }
        p.signal(SIGKILL);
        const int rc = p.wait();
        // Acknowledgements printed before death count.
        for (const auto& line : [&] {
                 std::vector<std::string> v;
                 while (auto l = p.read_line(std::chrono::milliseconds(0))) v.push_back(*l);
                 return v;
             }())
            if (const auto n = number_after(line, "acknowledged ")) {
                acked = *n;
                ++total_acks;
            }
        if (rc != 128 + SIGKILL && rc != 0) {
            std::cerr << "round " << round << ": FAILED: the program exited with " << rc << ":\n"
                      << p.output() << std::endl;
            return 1;
        }
        if (round % 100 == 0)
            std::cout << "  " << round << " kills, " << total_acks << " acknowledged, at operation " << acked << std::endl;
    }
    // A clean end: the last start resumes, closes and says so.
    std::string out;
    auto last = cmd;
    last.insert(last.end(), {"--ops", "3"});
    const int rc = run(last, &out);
    const auto secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    if (rc != 0 || out.find("resumed at ") == std::string::npos) {
        std::cerr << "FAILED: the final run exited with " << rc << ":\n" << out << std::endl;
        return 1;
    }
    std::cout << "durable_torture: " << backend << ": " << kills << " kills, " << total_acks
              << " acknowledged operations, 0 lost, 0 unloadable; " << late_kills
              << " kills at random moments after an acknowledgement, " << in_flight_landed
              << " in-flight operations landed; " << secs << " s" << std::endl;
    return 0;
}
