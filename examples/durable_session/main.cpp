// Example: a crash-safe session of your own state type, with nothing but the
// installed headers and tradestate::Session.
//
//   durable_session --state-dir DIR [--backend NAME] [--config FILE] [--session NAME] [--ops N]
//
// The state is a small ledger: operation n adds n to it. On start the
// program prints `resumed at <n>` (0 for a new session), then performs
// operations n+1, n+2, ..., printing `acknowledged <n>` only once operation
// n is durable (Session::record returns), and hands a checkpoint to the
// background writer every 25 operations. After --ops N operations, or on
// SIGINT/SIGTERM, it closes the session (final snapshot, lease released)
// and exits 0. Killed at any moment (kill -9), the next start resumes at or
// after the last `acknowledged` line — the torture test in CMakeLists.txt
// checks exactly that.
#include <tradestate/config.hpp>
#include <tradestate/open.hpp>
#include <tradestate/session.hpp>

#include <boost/json.hpp>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include <csignal>
#include <cstdint>
#include <cstdlib>
#include <iostream>
#include <string>
#include <vector>

namespace ledger {

/// The state: how many operations were applied, and their sum. After
/// operation n, count == n and total == n(n+1)/2 — any lost or doubled
/// operation shows.
struct Ledger {
    std::int64_t count = 0;
    std::int64_t total = 0;
    bool operator==(const Ledger&) const = default;
};

// Conversions beside the type (Boost.JSON's tag_invoke) ...
void tag_invoke(const boost::json::value_from_tag&, boost::json::value& jv, const Ledger& l) {
    jv = {{"count", l.count}, {"total", l.total}};
}
Ledger tag_invoke(const boost::json::value_to_tag<Ledger>&, const boost::json::value& jv) {
    return {jv.at("count").as_int64(), jv.at("total").as_int64()};
}

/// ... and the operations: {"op": "add", "n": k}.
boost::json::object add(std::int64_t k) { return {{"op", "add"}, {"n", k}}; }

/// How an operation changes the state (found by ADL; throws on what it cannot apply).
void tradestate_apply(Ledger& l, const boost::json::object& op, const std::string& where) {
    const auto* n = op.if_contains("n");
    if (op.at("op") != "add" || !n || !n->is_int64())
        throw tradestate::Error(tradestate::Errc::schema, where + ": not an \"add\" operation");
    ++l.count;
    l.total += n->as_int64();
}

/// The progress counter a loss is told in.
std::int64_t tradestate_progress(const Ledger& l) { return l.count; }

} // namespace ledger

namespace {

volatile std::sig_atomic_t g_stop = 0;
extern "C" void on_stop(int) { g_stop = 1; }

int usage() {
    std::cerr << "usage: durable_session --state-dir DIR [--backend NAME] [--config FILE] [--session NAME] [--ops N]\n"
                 "  --session NAME  session name (default: ledger)\n";
    return 2;
}

} // namespace

int main(int argc, char** argv) {
    std::string state_dir, backend, config, name = "ledger";
    std::int64_t ops = -1;
    for (int i = 1; i < argc; ++i) {
        const std::string a = argv[i];
        auto value = [&]() -> std::string {
            if (i + 1 >= argc) throw std::invalid_argument(a + " needs a value");
            return argv[++i];
        };
        try {
            if (a == "--state-dir") state_dir = value();
            else if (a == "--backend") backend = value();
            else if (a == "--config") config = value();
            else if (a == "--session") name = value();
            else if (a == "--ops") ops = std::stoll(value());
            else if (a == "--help" || a == "-h") return usage(), 0;
            else return usage();
        } catch (const std::exception& e) {
            std::cerr << "durable_session: " << e.what() << "\n";
            return usage();
        }
    }
    if (state_dir.empty()) return usage();
    std::signal(SIGINT, on_stop);
    std::signal(SIGTERM, on_stop);
    try {
        auto cfg = config.empty() ? tradestate::Config::defaults() : tradestate::Config::load(config);
        cfg.persistence.state_dir = state_dir;
        if (!backend.empty()) cfg.persistence.backend = backend;
        // The library logs through this logger (warnings and worse, on stderr); stdout is the program's.
        auto log = spdlog::stderr_color_mt("durable_session");
        log->set_level(spdlog::level::warn);
        auto session = tradestate::open_session<ledger::Ledger>(cfg, name, log);
        if (!session->resume().resumed) session->start_fresh(ledger::Ledger{});
        const ledger::Ledger& l = session->state();
        if (l.total != l.count * (l.count + 1) / 2) {
            std::cerr << "durable_session: the ledger is inconsistent: count " << l.count << ", total " << l.total << "\n";
            return 1;
        }
        std::cout << "resumed at " << l.count << std::endl;
        for (std::int64_t done = 0; !g_stop && (ops < 0 || done < ops); ++done) {
            const std::int64_t n = l.count + 1;
            session->record(ledger::add(n)); // returns once operation n is durable
            std::cout << "acknowledged " << n << std::endl;
            if (n % 25 == 0) session->checkpoint();
        }
        session->close();
        std::cout << "closed at " << l.count << std::endl;
        return 0;
    } catch (const tradestate::Error& e) {
        std::cerr << "durable_session: " << e.what() << "\n";
        return e.code() == tradestate::Errc::data_loss ? 5 : 1;
    }
}
