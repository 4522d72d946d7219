// fno_runner — the seed's programmatic API in C++: a paper-trading system
// that loads and saves its whole state through a tradestate backend and
// runs the continuous monitoring loop with auto-save.
//
//   auto sys = fno::create_fno_trading_system("paper", config);
//   sys->load_system_state();            // "default", or a name
//   sys->run_continuous_monitoring();    // until request_stop() / limits; saves on exit
//   sys->save_system_state("my_session");
//   sys->auto_save_state();
#pragma once

#include <fno_runner/settings.hpp>
#include <fno_runner/simulation.hpp>

#include <tradestate/async_saver.hpp>
#include <tradestate/config.hpp>
#include <tradestate/journal.hpp>
#include <tradestate/persister.hpp>
#include <tradestate/session.hpp>

#include <atomic>
#include <filesystem>
#include <functional>
#include <iosfwd>
#include <map>
#include <memory>
#include <mutex>
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
    std::int64_t max_iterations = 0;         ///< stop after this many iterations of this run (0: no limit)
    std::int64_t until_iteration = 0;        ///< stop once the session's iteration reaches this (0: no limit)
    std::shared_ptr<spdlog::logger> logger;  ///< default: make_runner_logger(state_dir)
    std::ostream* out = nullptr;             ///< seed-style messages; default std::cout
};

class TradingSystem {
public:
    /// Opens the configured backend (plugin) unless `persister` is given.
    explicit TradingSystem(SystemOptions opts,
                           std::shared_ptr<tradestate::StatePersister<tradestate::SessionState>> persister = nullptr);
    ~TradingSystem();
    TradingSystem(const TradingSystem&) = delete;
    TradingSystem& operator=(const TradingSystem&) = delete;

    // ---- the seed's API ------------------------------------------------
    /// Load `session` (default: the system's session). Prints the seed's
    /// loading lines. False if it was never saved; throws on unreadable state.
    bool load_system_state(const std::string& session = "");
    /// Save under `session` (default: the system's session). Throws tradestate::Error on failure.
    void save_system_state(const std::string& session = "");
    /// Hand a snapshot to the background writer, which logs "💾 Auto-saved
    /// (iteration N)" when it is on disk or "❌ AUTO-SAVE FAILED" loudly;
    /// false when no snapshot could be handed over (lease lost).
    bool auto_save_state();
    /// The monitoring loop: iterate, auto-save every `auto_save_every`
    /// iterations, stop on request_stop() or the iteration limits, then
    /// save and print the final summary. Returns a process exit code: 0, or
    /// 3 when the final save failed, 4 when the writer lease was lost.
    int run_continuous_monitoring();

    // ---- more ----------------------------------------------------------
    /// Begin a new session (empty portfolio, market at its start).
    void start_fresh();
    /// One iteration (no save).
    StepReport iterate();
    /// Ask the loop to stop after the current step. Async-signal-safe.
    void request_stop() noexcept;
    [[nodiscard]] bool stop_requested() const noexcept { return stop_.load(); }
    /// Claim the single-writer role for the session (throws errc::locked naming the holder).
    void claim_session();
    /// Called with the current state after every iteration, load and start (e.g. a dashboard).
    void on_iteration(std::function<void(const tradestate::SessionState&)> hook);
    /// The seed's "📊 Final Portfolio Summary" and "📋 Open Positions" blocks.
    void print_summary();

    [[nodiscard]] const tradestate::SessionState& state() const noexcept { return state_; }
    [[nodiscard]] Simulation& simulation() noexcept { return *sim_; }
    [[nodiscard]] tradestate::StatePersister<tradestate::SessionState>& persister() noexcept { return *persister_; }
    [[nodiscard]] const std::string& session() const noexcept { return opts_.session; }
    [[nodiscard]] const std::shared_ptr<spdlog::logger>& logger() const noexcept { return log_; }
    [[nodiscard]] std::int64_t interval_ms() const noexcept;
    [[nodiscard]] std::int64_t auto_save_every() const noexcept { return opts_.config.persistence.auto_save_every; }

private:
    void say(const std::string& line);
    void publish();
    void apply_config_to_state(bool log_changes);
    void wait_interval();
    // The per-trade journal (persistence.journal): kept by the backend when it
    // can (postgres), otherwise in <state_dir>/<session>.journal.
    [[nodiscard]] bool backend_journal() noexcept { return persister_->backend().has_journal(); }
    [[nodiscard]] std::filesystem::path journal_path(const std::string& session) const;
    void ensure_journal();
    void start_file_journal(const std::filesystem::path& path, tradestate::JournalFsync policy, std::uint64_t id);
    void journal_step(const StepReport& rep, const tradestate::Portfolio& before);
    void compact_journal_after(std::int64_t iteration); ///< the background saver wrote this iteration

    SystemOptions opts_;
    std::shared_ptr<spdlog::logger> log_;
    std::shared_ptr<tradestate::StatePersister<tradestate::SessionState>> persister_;
    std::unique_ptr<Simulation> sim_;
    tradestate::SessionState state_;
    std::unique_ptr<tradestate::WriterLease> lease_;
    std::unique_ptr<tradestate::JournalWriter> journal_;
    std::optional<tradestate::ReplayResult> replayed_; ///< set by load_system_state for our session
    std::mutex journal_at_mutex_;
    std::map<std::int64_t, std::uint64_t> journal_at_; ///< iteration submitted to the saver -> its journal record
    // auto-saves run here, off the loop; destroyed (flushed) before the lease
    std::unique_ptr<tradestate::AsyncSaver<tradestate::SessionState>> saver_;
    std::vector<std::function<void(const tradestate::SessionState&)>> hooks_;
    std::atomic<bool> stop_{false};
    std::atomic<bool> stopped_by_signal_{false};
    int wake_[2] = {-1, -1};
    std::ostream* out_;
};

/// The seed's factory: a paper-trading system with `config` (defaults when omitted).
[[nodiscard]] std::unique_ptr<TradingSystem> create_fno_trading_system(
    const std::string& trading_mode = "paper", tradestate::Config config = tradestate::Config::defaults());

/// Route SIGINT and SIGTERM to `sys.request_stop()` (nullptr: restore defaults).
void install_stop_signals(TradingSystem* sys);

} // namespace fno
