// fno_dashboard — serves the web dashboard from saved state, through the
// persister, so it works with every backend and while no runner is up. It
// shows what a resume would give: the newest snapshot rolled forward by the
// session's journal (tradestate::Session::inspect), so it agrees with the
// runner and `tradestate export` after a kill.
//
//   fno_dashboard [--config FILE] [--state-dir DIR] [--session NAME] [--bind ADDR] [--port N]
#include <tradestate_dashboard/dashboard.hpp>
#include <tradestate_dashboard/session_view.hpp>

#include <tradestate/config.hpp>
#include <tradestate/listing.hpp>
#include <tradestate/log_time.hpp>
#include <tradestate/open.hpp>
#include <tradestate/persister.hpp>
#include <tradestate/session.hpp>
#include <tradestate/session_state.hpp>
#include <tradestate/version.hpp>

#include <CLI/CLI.hpp>
#include <spdlog/spdlog.h>

#include <atomic>
#include <chrono>
#include <csignal>
#include <condition_variable>
#include <mutex>
#include <optional>
#include <string>
#include <thread>

#include <sys/stat.h>

namespace td = tradestate::dashboard;
using tradestate::SessionState;
using Persister = tradestate::StatePersister<SessionState>;
using Session = tradestate::Session<SessionState>;
using Clock = std::chrono::steady_clock;

namespace {

std::atomic<bool> g_stop{false};
std::mutex g_mu;
std::condition_variable g_cv;

extern "C" void on_signal(int) { g_stop.store(true); }

/// The session to show: the one asked for, else "default" if saved, else
/// the most recently saved one.
std::string pick_session(const std::vector<tradestate::SessionInfo>& list, const std::string& wanted) {
    if (!wanted.empty()) return wanted;
    std::string best;
    std::string best_time;
    for (const auto& i : list) {
        if (i.session == tradestate::default_session) return i.session;
        if (best.empty() || i.meta.saved_at > best_time) {
            best = i.session;
            best_time = i.meta.saved_at;
        }
    }
    return best.empty() ? std::string(tradestate::default_session) : best;
}

/// What changes when the session moves on: its newest snapshot and, for a
/// journal kept in a file, that file's size and modification time.
std::string change_key(const tradestate::SessionInfo& info, Persister& p, const tradestate::SessionOptions& o) {
    std::string key = std::to_string(info.sequence);
    if (p.backend().has_journal()) return key + "/" + std::to_string(Clock::now().time_since_epoch().count());
    struct stat st {};
    if (::stat(Session::journal_path(o).c_str(), &st) == 0)
        key += "/" + std::to_string(st.st_size) + "/" + std::to_string(st.st_mtim.tv_sec) + "." +
               std::to_string(st.st_mtim.tv_nsec) + "/" + std::to_string(st.st_ino);
    return key;
}

} // namespace

int main(int argc, char** argv) {
    CLI::App app{"fno_dashboard: the tradestate web dashboard, reading saved state through the configured backend"};
    std::string config_file, state_dir, session, bind;
    app.set_version_flag("--version", tradestate::version_line("fno_dashboard"), "print the version and the plugin ABI, and exit");
    int port = -1;
    double offline_after_s = 0;
    app.add_option("--config", config_file, "config.toml to read (default: ./config.toml if present, else built-in defaults)");
    app.add_option("--state-dir", state_dir, "state directory (overrides [persistence] state_dir)");
    app.add_option("--session", session, "session to show (default: 'default', else the most recently saved)");
    app.add_option("--bind", bind, "address to listen on (overrides [dashboard] bind)");
    app.add_option("--port", port, "port to listen on, 0 = any free port (overrides [dashboard] port)")->check(CLI::Range(0, 65535));
    app.add_option("--offline-after", offline_after_s,
                   "seconds without a new save after which the runner is shown as offline "
                   "(default: two auto-save periods, at least 10)");
    CLI11_PARSE(app, argc, argv);

    auto log = spdlog::default_logger();
    log->set_formatter(tradestate::ist_log_formatter("[%*] [%^%l%$] %v"));
    tradestate::Config cfg;
    try {
        cfg = tradestate::Config::discover(config_file);
        tradestate::set_money_grouping(cfg.display.money_grouping);
    } catch (const std::exception& e) {
        log->error("{}", e.what());
        return 2;
    }
    if (!state_dir.empty()) cfg.persistence.state_dir = state_dir;
    if (!bind.empty()) cfg.dashboard.bind = bind;
    if (port >= 0) cfg.dashboard.port = port;
    if (offline_after_s <= 0) {
        offline_after_s = std::max(10.0, 2.0 * static_cast<double>(cfg.persistence.auto_save_every) *
                                             static_cast<double>(cfg.trading.settings.check_interval));
    }

    std::shared_ptr<Persister> persister;
    try {
        persister = tradestate::open_persister<SessionState>(cfg, log);
    } catch (const std::exception& e) {
        log->error("cannot open the '{}' store in {}: {}", cfg.persistence.backend, cfg.persistence.state_dir.string(),
                   e.what());
        return 2;
    }

    const int refresh_ms = static_cast<int>(cfg.dashboard.refresh_ms);
    auto hub = std::make_shared<td::SnapshotHub>(2000, refresh_ms);
    hub->set_backend(cfg.persistence.backend);

    td::ServerOptions so;
    so.bind = cfg.dashboard.bind;
    so.port = static_cast<int>(cfg.dashboard.port);
    so.logger = log;
    td::Server server(hub, so);
    try {
        server.start();
    } catch (const std::exception& e) {
        log->error("{}", e.what());
        return 3;
    }
    // Handlers first: whoever reads the line below may signal at once.
    std::signal(SIGINT, on_signal);
    std::signal(SIGTERM, on_signal);
    // Scripts and tests read the port from this line (useful with --port 0).
    std::printf("fno_dashboard: listening on %s (state: %s, backend: %s)\n", server.url().c_str(),
                cfg.persistence.state_dir.string().c_str(), cfg.persistence.backend.c_str());
    std::fflush(stdout);

    std::string shown;                 // session currently shown
    std::string shown_key;             // its change_key when last loaded
    bool loaded_once = false;
    Clock::time_point last_change{}; // when we saw a new save
    bool seen_change = false;
    std::optional<td::StateView> view;
    std::string last_error;
    std::string published_notice;
    bool first_publish = true;
    const auto poll = std::chrono::milliseconds(std::clamp(refresh_ms / 2, 100, 1000));

    while (!g_stop.load()) {
        std::string notice;
        bool changed = false;
        try {
            auto list = persister->list();
            hub->set_sessions(td::session_rows(list));
            const std::string name = pick_session(list, session);
            const tradestate::SessionInfo* info = nullptr;
            for (const auto& i : list)
                if (i.session == name) info = &i;
            if (name != shown) {
                shown = name;
                loaded_once = false;
                view.reset();
                seen_change = false;
                changed = true;
            }
            const auto sopts = tradestate::session_options(cfg, name);
            const std::string key = info ? change_key(*info, *persister, sopts) : std::string();
            if (info && (!loaded_once || key != shown_key)) {
                auto ins = Session::inspect(*persister, sopts);
                if (ins.state) {
                    if (!loaded_once) ins.report.log_to(*log, name, "The page shows the newest state that loads.");
                    auto next = td::make_view(*ins.state, {}, ins.state->timestamp.to_iso());
                    const bool moved = !view || next.iteration != view->iteration || next.timestamp != view->timestamp;
                    if (loaded_once && moved) {
                        last_change = Clock::now();
                        seen_change = true;
                    }
                    if (moved || !loaded_once) {
                        changed = true;
                        // The chart: the equity curve saved with the session
                        // (so it survives restarts of the runner and of this
                        // program), else the points seen since this started.
                        auto curve = td::saved_history(*ins.state);
                        if (!curve.empty() || !loaded_once) hub->reset_history(std::move(curve));
                    }
                    view = std::move(next);
                    shown_key = key;
                    loaded_once = true;
                }
            }
            if (!info && view) {
                view.reset();
                changed = true;
            }
            last_error.clear();
        } catch (const std::exception& e) {
            // Keep showing the last good state; say why it may be old.
            if (last_error != e.what()) log->warn("reading saved state: {}", e.what());
            last_error = e.what();
        }

        td::Source source = view ? td::Source::saved : td::Source::waiting;
        if (!last_error.empty()) {
            notice = "Could not read the saved state (" + last_error + "); showing the last good copy.";
        } else if (!view) {
            notice = "No saved state for session '" + shown + "' in " + cfg.persistence.state_dir.string() +
                     " (" + cfg.persistence.backend + "). Start fno_runner to create it.";
        } else {
            const bool active = seen_change && std::chrono::duration<double>(Clock::now() - last_change).count() <
                                                   offline_after_s;
            notice = active ? "Showing saved state: the runner is saving; the page updates with each save — last saved " +
                                  tradestate::display_time(view->last_saved)
                            : "Runner offline — last saved " + tradestate::display_time(view->last_saved);
        }
        // Publish only what changed, so the page refetches history only then.
        if (changed || first_publish || notice != published_notice) {
            hub->publish(source, shown, view, notice);
            published_notice = notice;
            first_publish = false;
        }

        std::unique_lock lk(g_mu);
        g_cv.wait_for(lk, poll, [] { return g_stop.load(); });
    }
    log->info("fno_dashboard: stopping");
    server.stop();
    return 0;
}
