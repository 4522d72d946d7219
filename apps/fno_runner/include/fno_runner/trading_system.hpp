// fno_runner — the seed's programmatic API in C++: a paper-trading system
// whose whole state lives in a tradestate::Session (snapshots, journal,
// lease and recovery are the library's), driven by the continuous
// monitoring loop with auto-save.
//
//   auto sys = fno::create_fno_trading_system("paper", config);
//   sys->load_system_state();            // "default", or a name
//   sys->run_continuous_monitoring();    // until request_stop() / limits; saves on exit
//   sys->save_system_state("my_session");
//   sys->auto_save_state();
#pragma once

#include <fno_runner/settings.hpp>
#include <fno_runner/simulation.hpp>

#include <tradestate/config.hpp>
#include <tradestate/persister.hpp>
#include <tradestate/session.hpp>
#include <tradestate/session_state.hpp>

#include <atomic>
#include <filesystem>
#include <functional>
#include <iosfwd>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace spdlog {
class logger;
}

namespace fno {

/// Console + rotating file `<state_dir>/logs/fno_runner.log` (created on demand).
[[nodiscard]] std::shared_ptr<spdlog::logger> make_runner_logger(const std::filesystem::path& state_dir,
                                                                 bool console = true);

struct SystemOptions {
    tradestate::Config config = tradestate::Config::defaults(); ///< load with runner_config_schema()
    std::string trading_mode = "paper";
    std::string session = tradestate::default_session;
    std::optional<std::uint64_t> seed;       ///< overrides [runner] seed
    std::optional<bool> sim_clock;           ///< overrides [runner] sim_clock
    std::optional<std::int64_t> interval_ms; ///< wall-clock pause between iterations; default check_interval s
    std::optional<std::int64_t> max_iterations;  ///< stop after this many iterations of this run (none: no limit; 0: none)
    std::optional<std::int64_t> until_iteration; ///< stop once the session's iteration reaches this (none: no limit)
    bool accept_loss = false;                ///< resume even when acknowledged operations are gone (named)
    std::shared_ptr<spdlog::logger> logger;  ///< default: make_runner_logger(state_dir)
    std::ostream* out = nullptr;             ///< seed-style messages; default std::cout
};

class TradingSystem {
public:
    using Persister = tradestate::StatePersister<tradestate::SessionState>;
    using Session = tradestate::Session<tradestate::SessionState>;

    /// Opens the configured backend (plugin) unless `persister` is given.
    explicit TradingSystem(SystemOptions opts, std::shared_ptr<Persister> persister = nullptr);
    ~TradingSystem();
    TradingSystem(const TradingSystem&) = delete;
    TradingSystem& operator=(const TradingSystem&) = delete;

    // ---- the seed's API ------------------------------------------------
    /// Load `session` (default: the system's own): resume it, journal
    /// included. Another session's state is taken over as a fresh start of
    /// this system's session (the previous one is kept as a backup session).
    /// Prints the seed's loading lines. False if it was never saved; throws
    /// tradestate::Error on unreadable state or a loss not accepted.
    bool load_system_state(const std::string& session = "");
    /// Save now under `session` (default: the system's own, a snapshot of
    /// the running session). Throws tradestate::Error on failure.
    void save_system_state(const std::string& session = "");
    /// Hand a snapshot to the background writer, which logs "💾 Auto-saved
    /// (iteration N)" when it is on disk or "❌ AUTO-SAVE FAILED" loudly;
    /// false when no snapshot could be handed over.
    bool auto_save_state();
    /// The monitoring loop: iterate, auto-save every `auto_save_every`
    /// iterations, stop on request_stop() or the iteration limits, then
    /// save and print the final summary. Returns a process exit code: 0, or
    /// 3 when the final save failed, 4 when the writer lease was lost.
    int run_continuous_monitoring();

    // ---- more ----------------------------------------------------------
    /// Claim the single-writer role for the session (throws Errc::locked naming the holder).
    void claim_session();
    /// Whether anything of the system's session is stored (even damaged).
    [[nodiscard]] bool session_exists();
    /// Begin a new session (empty portfolio, market at its start), saved at
    /// once; a previous one is kept as a backup session, whose name is returned.
    std::string start_fresh();
    /// One iteration, acknowledged (journaled) before it returns.
    StepReport iterate();
    /// Ask the loop to stop after the current step. Async-signal-safe.
    void request_stop() noexcept;
    [[nodiscard]] bool stop_requested() const noexcept { return stop_.load(); }
    /// Ask the loop for a snapshot after the current step, as an auto-save
    /// (SIGUSR1). Async-signal-safe.
    void request_snapshot() noexcept { snapshot_.store(true); }
    /// Called with the current state after every iteration, load and start (e.g. a dashboard).
    void on_iteration(std::function<void(const tradestate::SessionState&)> hook);
    /// The seed's "📊 Final Portfolio Summary" and "📋 Open Positions" blocks.
    void print_summary();

    [[nodiscard]] const tradestate::SessionState& state() const noexcept;
    [[nodiscard]] Simulation& simulation() noexcept { return *sim_; }
    [[nodiscard]] Persister& persister() noexcept { return *persister_; }
    [[nodiscard]] const std::shared_ptr<Persister>& persister_ptr() const noexcept { return persister_; }
    [[nodiscard]] const std::string& session() const noexcept { return opts_.session; }
    [[nodiscard]] const std::shared_ptr<spdlog::logger>& logger() const noexcept { return log_; }
    [[nodiscard]] std::int64_t interval_ms() const noexcept;
    [[nodiscard]] std::int64_t auto_save_every() const noexcept { return opts_.config.persistence.auto_save_every; }

private:
    void say(const std::string& line);
    void publish();
    /// config.toml wins over the saved configuration: the differences as a
    /// `configure` operation (logged one by one).
    void apply_config(bool log_changes);
    [[nodiscard]] tradestate::SessionSettings configured(const tradestate::SessionSettings& saved) const;
    void ensure_started();
    void wait_interval();

    SystemOptions opts_;
    std::shared_ptr<spdlog::logger> log_;
    std::shared_ptr<Persister> persister_;
    std::unique_ptr<Simulation> sim_;
    tradestate::SessionState draft_;    ///< the state before the session is started
    std::unique_ptr<Session> session_;  ///< our session: lease, journal, checkpoints
    std::vector<std::function<void(const tradestate::SessionState&)>> hooks_;
    std::atomic<bool> stop_{false};
    std::atomic<bool> stopped_by_signal_{false};
    std::atomic<bool> snapshot_{false};
    int wake_[2] = {-1, -1};
    std::ostream* out_;
};

/// The seed's factory: a paper-trading system with `config` (defaults when omitted).
[[nodiscard]] std::unique_ptr<TradingSystem> create_fno_trading_system(
    const std::string& trading_mode = "paper", tradestate::Config config = tradestate::Config::defaults());

/// The runner's signals (docs/runner.md): SIGINT, SIGTERM, SIGHUP and
/// SIGQUIT stop `sys` (request_stop: the seed's stop sequence and a save);
/// SIGUSR1 asks for a snapshot; SIGPIPE is ignored, so that a closed console
/// pipe never stops trading (console writes then fail quietly, the log file
/// goes on; it stays ignored). nullptr restores the other defaults.
void install_stop_signals(TradingSystem* sys);

} // namespace fno
