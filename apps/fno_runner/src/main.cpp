// fno_runner — the reference runner: simulated NIFTY/BANKNIFTY options paper
// trading with auto-save, Ctrl+C save and exact resume.
#include <fno_runner/trading_system.hpp>
#include <tradestate/open.hpp>
#include <tradestate/version.hpp>
#include <tradestate_dashboard/live.hpp>

#include <tradestate/detail/session_name.hpp>
#include <tradestate/listing.hpp>
#include <tradestate/timestamp.hpp>

#include <CLI/CLI.hpp>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <cctype>
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <iostream>
#include <optional>
#include <string>

#include <sys/stat.h>
#include <unistd.h>

namespace {

using tradestate::Error;

/// A file's modification time, as a person reads times here (IST).
std::string file_time(const std::filesystem::path& p) {
    struct stat st {};
    if (::stat(p.c_str(), &st) != 0) return {};
    return tradestate::Timestamp::from_timespec(st.st_mtim).to_display();
}

void show_sessions(tradestate::StatePersister<tradestate::SessionState>& persister) {
    std::cout << tradestate::format_sessions(persister.list()) << std::flush;
}

/// Ask on the terminal; true = resume.
bool ask_resume() {
    for (;;) {
        std::cout << "\n🔄 Resume from previous session? (y/n) [y]: " << std::flush;
        std::string line;
        if (!std::getline(std::cin, line)) {
            std::cout << '\n';
            return true; // EOF: the default
        }
        while (!line.empty() && (line.back() == '\r' || line.back() == ' ')) line.pop_back();
        while (!line.empty() && line.front() == ' ') line.erase(0, 1);
        for (auto& c : line) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
        if (line.empty() || line == "y" || line == "yes") return true; // any case: YES, Yes, y
        if (line == "n" || line == "no") return false;
        std::cout << "   Please answer y or n.";
    }
}

} // namespace

int main(int argc, char** argv) {
    CLI::App app{"fno_runner — simulated NIFTY/BANKNIFTY options paper trading with auto-save and exact resume.\n"
                 "Ctrl+C (or SIGTERM, SIGHUP, SIGQUIT) finishes the current step, saves the session and prints a summary;\n"
                 "SIGUSR1 saves a snapshot and trading goes on.\n"
                 "With a saved session and no --resume/--fresh, asks on a terminal and resumes without one."};
    std::string config_path, state_dir, session = tradestate::default_session;
    app.set_version_flag("--version", tradestate::version_line("fno_runner"), "print the version and the plugin ABI, and exit");
    bool resume = false, fresh = false, list = false, no_dashboard = false, sim_clock = false, accept_loss = false;
    std::optional<std::int64_t> iterations, until;
    std::int64_t interval_ms = -1;
    std::optional<std::uint64_t> seed;
    app.add_option("--config", config_path, "config.toml to use (default: ./config.toml if present, else built-in defaults)");
    app.add_option("--state-dir", state_dir, "state directory (overrides persistence.state_dir)");
    app.add_option("--session", session, "session name (default: \"default\", the seed's state/fno_system_state.json)");
    auto* r = app.add_flag("--resume", resume, "resume the saved session without asking");
    auto* f = app.add_flag("--fresh", fresh, "start a new session; a saved one is kept as <session>-backup-<time>");
    r->excludes(f);
    app.add_flag("--accept-loss", accept_loss,
                 "resume even when acknowledged operations are gone (the loss is named and logged); without it such a "
                 "resume stops with exit code 5 and changes nothing");
    app.add_flag("--show-sessions", list, "list the saved sessions in the state directory and exit");
    app.add_option("--iterations", iterations, "stop cleanly (saving, as on Ctrl+C) after N iterations of this run (0: none; default: run until stopped)")
        ->check(CLI::NonNegativeNumber);
    app.add_option("--until-iteration", until, "stop cleanly once the session's iteration counter reaches N")
        ->check(CLI::NonNegativeNumber);
    app.add_option("--interval-ms", interval_ms,
                   "wall-clock pause between iterations in ms (overrides trading.check_interval seconds; the simulated "
                   "market still advances check_interval per iteration)")
        ->check(CLI::NonNegativeNumber);
    app.add_option("--seed", seed, "random seed of a new session's market (overrides runner.seed)");
    app.add_flag("--sim-clock", sim_clock,
                 "stamp saved states with the simulated market clock instead of the wall clock (runner.sim_clock), so "
                 "runs with the same seed export byte-identical files");
    app.add_flag("--no-dashboard", no_dashboard, "do not start the web dashboard");
    CLI11_PARSE(app, argc, argv);

    try {
        auto cfg = tradestate::Config::discover(config_path, fno::runner_config_schema());
        tradestate::set_money_grouping(cfg.display.money_grouping);
        if (!state_dir.empty()) cfg.persistence.state_dir = state_dir;
        tradestate::validate_session_name(session);
        std::filesystem::create_directories(cfg.persistence.state_dir);
        auto log = fno::make_runner_logger(cfg.persistence.state_dir, !list);
        auto persister = tradestate::open_persister<tradestate::SessionState>(cfg, log);
        if (list) {
            show_sessions(*persister);
            return 0;
        }

        fno::SystemOptions o;
        o.config = cfg;
        o.trading_mode = cfg.trading.mode;
        o.session = session;
        o.seed = seed;
        if (sim_clock) o.sim_clock = true;
        if (interval_ms >= 0) o.interval_ms = interval_ms;
        o.max_iterations = iterations;
        o.until_iteration = until;
        o.accept_loss = accept_loss;
        o.logger = log;
        fno::TradingSystem sys(std::move(o), persister);
        try {
            sys.claim_session();
        } catch (const Error& e) {
            std::cerr << "❌ " << e.what() << '\n';
            return 2;
        }
        // The web dashboard: fed after every iteration; a busy port only turns it off.
        std::unique_ptr<tradestate::dashboard::LiveDashboard> dashboard;
        if (!no_dashboard && cfg.dashboard.enabled)
            dashboard = tradestate::dashboard::LiveDashboard::start(
                cfg, session, [&sys](const std::string& sym) { return sys.simulation().price(sym); }, persister, log);
        if (dashboard) {
            sys.on_iteration([d = dashboard.get()](const tradestate::SessionState& s) { d->publish(s); });
            std::cout << "🌐 Dashboard: " << dashboard->url() << '\n' << std::flush;
        }

        bool resumed = false;
        std::string backup;
        if (sys.session_exists()) {
            std::string where = session, modified;
            for (const auto& s : persister->list())
                if (s.session == session) {
                    where = s.location.empty() ? session : s.location;
                    modified = file_time(s.location);
                    // not a file (postgres): when its views were last written, else the snapshot's time
                    if (modified.empty())
                        for (const auto& [name, when] : s.companions)
                            modified = std::max(modified, tradestate::display_time(when));
                    if (modified.empty()) modified = tradestate::display_time(s.meta.saved_at);
                }
            std::cout << "📂 Found previous trading session: " << where << '\n'
                      << "   Last modified: " << modified << '\n';
            bool want = true;
            if (resume) want = true;
            else if (fresh) want = false;
            else if (::isatty(STDIN_FILENO)) want = ask_resume();
            else std::cout << "   (no terminal to ask: resuming; pass --fresh to start a new session)\n";
            if (want) {
                std::cout << "✅ Will resume from previous session\n\n" << std::flush;
                resumed = sys.load_system_state(session);
            }
        }
        if (!resumed) {
            backup = sys.start_fresh(); // a previous session (even a damaged one) is kept under this name
            if (!backup.empty()) {
                std::cout << "🆕 Starting a fresh session (the previous one is kept as session '" << backup << "')\n";
                log->info("previous session '{}' kept as '{}'", session, backup);
            }
            std::cout << "🆕 New paper-trading session '" << session << "' with "
                      << cfg.trading.initial_cash.format() << " (market time "
                      << sys.simulation().market_time().to_display() << ")\n";
        }
        std::cout << "\n🚀 Continuous F&O monitoring: one iteration every " << sys.interval_ms() << " ms, auto-save every "
                  << sys.auto_save_every() << " iterations, backend " << cfg.persistence.backend << " in "
                  << cfg.persistence.state_dir.string() << "\n   Press Ctrl+C to stop and save.\n\n"
                  << std::flush;
        fno::install_stop_signals(&sys);
        const int rc = sys.run_continuous_monitoring();
        fno::install_stop_signals(nullptr);
        return rc;
    } catch (const Error& e) {
        std::cerr << "❌ " << e.what() << '\n';
        if (e.code() == tradestate::Errc::data_loss) return 5;
        return e.code() == tradestate::Errc::locked ? 2 : 1;
    } catch (const std::exception& e) {
        std::cerr << "❌ " << e.what() << '\n';
        return 1;
    }
}
