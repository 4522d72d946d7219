// fno_runner — TradingSystem: persistence, the monitoring loop, the seed's messages.
#include <fno_runner/trading_system.hpp>

#include <tradestate/log_time.hpp>
#include <tradestate/open.hpp>

#include <spdlog/sinks/rotating_file_sink.h>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include <fmt/format.h>

#include <cerrno>
#include <csignal>
#include <iostream>

#include <fcntl.h>
#include <poll.h>
#include <sys/stat.h>
#include <unistd.h>

namespace fno {

using tradestate::Errc;
using tradestate::Error;
using tradestate::Money;
using tradestate::SessionState;

std::shared_ptr<spdlog::logger> make_runner_logger(const std::filesystem::path& state_dir, bool console) {
    std::vector<spdlog::sink_ptr> sinks;
    if (console) {
        auto c = std::make_shared<spdlog::sinks::stdout_color_sink_mt>();
        c->set_formatter(tradestate::ist_log_formatter("%~ %^%l%$ %v"));
        sinks.push_back(std::move(c));
    }
    std::error_code ec;
    std::filesystem::create_directories(state_dir / "logs", ec);
    if (ec)
        throw Error(Errc::io, "cannot create the log directory " + (state_dir / "logs").string() + ": " + ec.message() +
                                  " (check that the state directory is writable, or pass --state-dir)");
    // The log file must be a regular file (or absent): spdlog opens it with
    // fopen(), which blocks forever on a FIFO with no reader. Anything else
    // there: the console only, and a warning saying why.
    const auto file = state_dir / "logs" / "fno_runner.log";
    std::string not_a_file;
    struct stat st {};
    if (::stat(file.c_str(), &st) == 0 && !S_ISREG(st.st_mode))
        not_a_file = file.string() + " is not a regular file (a FIFO, a device or a directory); logging to "
                                     "the console only — move it away to get the log file back";
    if (not_a_file.empty()) {
        auto f = std::make_shared<spdlog::sinks::rotating_file_sink_mt>(file.string(), 5 * 1024 * 1024, 3);
        f->set_formatter(tradestate::ist_log_formatter("[%*] [%l] %v"));
        sinks.push_back(std::move(f));
    }
    auto log = std::make_shared<spdlog::logger>("fno_runner", sinks.begin(), sinks.end());
    if (!not_a_file.empty()) log->warn("{}", not_a_file);
    log->set_level(spdlog::level::info);
    log->flush_on(spdlog::level::info);
    return log;
}

TradingSystem::TradingSystem(SystemOptions opts, std::shared_ptr<Persister> persister)
    : opts_(std::move(opts)), out_(opts_.out ? opts_.out : &std::cout) {
    log_ = opts_.logger ? opts_.logger : make_runner_logger(opts_.config.persistence.state_dir);
    persister_ = persister ? std::move(persister) : tradestate::open_persister<SessionState>(opts_.config, log_);
    SimulationSettings s = settings_from_config(opts_.config);
    if (opts_.seed) s.seed = *opts_.seed;
    if (opts_.sim_clock) s.sim_clock = *opts_.sim_clock;
    sim_ = std::make_unique<Simulation>(std::move(s), log_);
    if (::pipe2(wake_, O_CLOEXEC | O_NONBLOCK) != 0) throw Error(Errc::io, "cannot create the wake-up pipe");
    draft_.trading_mode = opts_.trading_mode;
    draft_.settings = configured(draft_.settings);
    sim_->start_fresh(draft_, opts_.config.trading.initial_cash);
}

TradingSystem::~TradingSystem() {
    session_.reset(); // background checkpoints finish first
    for (int fd : wake_)
        if (fd >= 0) ::close(fd);
}

const SessionState& TradingSystem::state() const noexcept {
    return session_ && session_->started() ? session_->state() : draft_;
}

void TradingSystem::say(const std::string& line) {
    *out_ << line << '\n';
    out_->flush();
}

void TradingSystem::publish() {
    for (auto& h : hooks_) {
        try {
            h(state());
        } catch (const std::exception& e) {
            log_->error("an on_iteration hook failed: {}", e.what());
        }
    }
}

void TradingSystem::on_iteration(std::function<void(const SessionState&)> hook) { hooks_.push_back(std::move(hook)); }

std::int64_t TradingSystem::interval_ms() const noexcept {
    return opts_.interval_ms ? *opts_.interval_ms : opts_.config.trading.settings.check_interval * 1000;
}

tradestate::SessionSettings TradingSystem::configured(const tradestate::SessionSettings& saved) const {
    // config.toml's settings win; what else the session saved is kept.
    tradestate::SessionSettings c = opts_.config.trading.settings;
    c.extra = saved.extra;
    // The runner's own risk settings, saved with the session for the record.
    const auto& r = sim_ ? sim_->settings().risk : RiskSettings{};
    c.extra["stop_loss_pct"] = r.stop_loss_pct;
    c.extra["take_profit_pct"] = r.take_profit_pct;
    c.extra["max_hold_minutes"] = r.max_hold_minutes;
    c.extra["max_strategies_per_underlying"] = r.max_strategies_per_underlying;
    c.extra["max_positions_counts"] = "legs";
    return c;
}

void TradingSystem::apply_config(bool log_changes) {
    const auto& c = state().settings;
    const auto want = configured(c);
    if (want == c && state().trading_mode == opts_.trading_mode) return;
    auto note = [&](const char* key, const std::string& from, const std::string& to) {
        if (log_changes && from != to) log_->info("⚙️  {}: {} → {} (config.toml wins over the saved session)", key, from, to);
    };
    note("min_confidence", fmt::format("{}", c.min_confidence), fmt::format("{}", want.min_confidence));
    note("check_interval", std::to_string(c.check_interval), std::to_string(want.check_interval));
    note("max_positions", std::to_string(c.max_positions), std::to_string(want.max_positions));
    note("capital_per_trade", c.capital_per_trade.format(), want.capital_per_trade.format());
    note("trading_mode", state().trading_mode, opts_.trading_mode);
    session_->record(tradestate::session_op::configure(want, opts_.trading_mode));
}

void TradingSystem::claim_session() {
    if (session_) return;
    auto o = tradestate::session_options(opts_.config, opts_.session);
    auto log = log_;
    o.on_checkpoint = [log](const tradestate::SavedSnapshot& s) { log->info("💾 Auto-saved (iteration {})", s.tag); };
    o.on_checkpoint_failed = [log](const tradestate::SaveFailure& f) {
        log->error("❌ AUTO-SAVE FAILED at iteration {}: {} — trading continues; the next save will retry", f.tag,
                   f.message);
    };
    session_ = std::make_unique<Session>(persister_, std::move(o));
}

bool TradingSystem::session_exists() {
    claim_session();
    return session_->exists();
}

std::string TradingSystem::start_fresh() {
    claim_session();
    SessionState s;
    s.trading_mode = opts_.trading_mode;
    s.settings = configured(s.settings);
    sim_->start_fresh(s, opts_.config.trading.initial_cash);
    draft_ = s;
    const std::string backup = session_->start_fresh(std::move(s));
    publish();
    return backup;
}

void TradingSystem::ensure_started() {
    claim_session();
    if (!session_->started()) {
        const auto backup = session_->start_fresh(draft_);
        if (!backup.empty()) log_->info("previous session '{}' kept as '{}'", opts_.session, backup);
    }
}

bool TradingSystem::load_system_state(const std::string& session_arg) {
    const std::string name = session_arg.empty() ? opts_.session : session_arg;
    say("📥 Loading previous trading session...");
    claim_session();
    SessionState st;
    tradestate::ResumeReport rep;
    if (name == opts_.session) {
        if (session_->started())
            throw Error(Errc::invalid_argument, "session '" + name + "' is already loaded in this system");
        rep = session_->resume({.accept_loss = opts_.accept_loss});
        if (!rep.resumed) {
            say("ℹ️  No saved session '" + name + "' found");
            return false;
        }
    } else {
        // Another session's state (what a resume of it would give) becomes this session's fresh start.
        auto o = tradestate::session_options(opts_.config, name);
        auto ins = Session::inspect(*persister_, o);
        rep = ins.report;
        if (rep.loss && !opts_.accept_loss)
            throw Error(Errc::data_loss, rep.loss_message(name) + "\n  Nothing was changed.");
        if (!ins.state) {
            say("ℹ️  No saved session '" + name + "' found");
            return false;
        }
        sim_->resume(*ins.state); // validate before anything changes
        const auto backup = session_->started() ? std::string() : session_->start_fresh(std::move(*ins.state));
        if (!backup.empty()) log_->info("previous session '{}' kept as '{}'", opts_.session, backup);
        // Session::resume logs its own report; inspect() does not.
        rep.log_to(*log_, name, "The loss was accepted (--accept-loss).");
    }
    if (rep.replayed > 0) {
        say("📜 Replayed " + std::to_string(rep.replayed) + " journaled operations after the snapshot");
        log_->info("replayed {} journal records over the snapshot of session '{}' (now at operation {})", rep.replayed,
                   name, rep.last_op);
    }
    sim_->resume(state()); // market, RNG and clock from the runner data
    apply_config(true);
    const Money drift = state().portfolio.reconcile();
    if (drift != Money{})
        log_->warn("the loaded portfolio's cash differs from initial_cash + realized P&L − charges − open cost by {}",
                   drift.format());
    say("✅ Previous session loaded successfully!");
    say("   📊 Positions: " + std::to_string(state().portfolio.positions().size()));
    say("   💰 Cash: " + state().portfolio.cash().format());
    say("   🔢 Iteration: " + std::to_string(state().iteration));
    log_->info("resumed session '{}' from {} at iteration {} (market time {})", name, rep.source, state().iteration,
               sim_->market_time().to_iso());
    publish();
    return true;
}

void TradingSystem::save_system_state(const std::string& session_arg) {
    const std::string name = session_arg.empty() ? opts_.session : session_arg;
    if (name == opts_.session) {
        ensure_started();
        session_->snapshot();
        return;
    }
    auto lease = persister_->acquire_writer(name);
    persister_->save(state(), name);
}

bool TradingSystem::auto_save_state() {
    try {
        ensure_started();
        // The loop's only cost: a copy of the state; conversion and I/O run on the writer thread.
        (void)session_->checkpoint();
        return true;
    } catch (const std::exception& e) {
        log_->error("❌ AUTO-SAVE FAILED at iteration {}: {} — trading continues; the next save will retry",
                    state().iteration, e.what());
        return false;
    }
}

StepReport TradingSystem::iterate() {
    ensure_started();
    StepReport rep = sim_->step(session_->state(), [this](const boost::json::object& op) { session_->apply(op); });
    // Acknowledged only once durable where a restart looks; until then it is not logged as done.
    session_->commit();
    const auto& ms = sim_->market_state();
    std::string market;
    for (const auto& inst : sim_->settings().market.instruments) {
        const auto& x = ms.u.at(inst.name);
        market += fmt::format(" {} {:.2f} (IV {:.1f}%)", inst.name, x.spot, x.atm_iv * 100.0);
    }
    const auto& st = state();
    log_->info("🔁 Iteration {} | {}{} |{} | positions {} | cash {} | value {}", rep.iteration,
               sim_->market_time().to_display(), rep.at_close ? " close" : "", market, st.portfolio.positions().size(),
               st.portfolio.cash().format(), rep.total_value.format());
    publish();
    return rep;
}

void TradingSystem::request_stop() noexcept {
    stopped_by_signal_.store(true);
    stop_.store(true);
    if (wake_[1] >= 0) {
        const char c = 1;
        [[maybe_unused]] auto n = ::write(wake_[1], &c, 1);
    }
}

void TradingSystem::wait_interval() {
    const std::int64_t ms = interval_ms();
    if (ms <= 0 || stop_.load()) return;
    pollfd p{wake_[0], POLLIN, 0};
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(ms);
    while (!stop_.load()) {
        const auto left =
            std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now()).count();
        if (left <= 0) break;
        const int r = ::poll(&p, 1, static_cast<int>(std::min<std::int64_t>(left, 1000)));
        if (r > 0) {
            char buf[64];
            while (::read(wake_[0], buf, sizeof buf) > 0) {
            }
        }
    }
}

int TradingSystem::run_continuous_monitoring() {
    try {
        ensure_started();
    } catch (const Error& e) {
        std::cerr << "❌ " << e.what() << '\n';
        log_->error("{}", e.what());
        return e.code() == Errc::locked ? 2 : 1;
    }
    std::int64_t done = 0;
    const std::int64_t every = auto_save_every();
    while (!stop_.load()) {
        if (opts_.until_iteration && state().iteration >= *opts_.until_iteration) break;
        if (opts_.max_iterations && done >= *opts_.max_iterations) break;
        try {
            iterate();
        } catch (const Error& e) {
            if (e.code() == Errc::locked) {
                log_->error("❌ the writer lease on session '{}' was lost: stopping without saving ({})", opts_.session,
                            e.what());
                return 4;
            }
            // Not durable: the session retries with the next iteration (or the final save).
            log_->error("❌ iteration {} is NOT saved: {} — trading continues; the next iteration retries",
                        state().iteration, e.what());
        }
        ++done;
        if (snapshot_.exchange(false)) {
            log_->info("💾 snapshot requested (SIGUSR1) at iteration {}", state().iteration);
            auto_save_state();
        } else if (every > 0 && state().iteration % every == 0) {
            auto_save_state();
        }
        if (!session_->keep_lease()) {
            log_->error("❌ the writer lease on session '{}' was lost: stopping without saving", opts_.session);
            return 4;
        }
        wait_interval();
    }
    say("");
    if (stopped_by_signal_.load()) say("🛑 Continuous monitoring stopped by user");
    else say("🏁 Reached the iteration limit (iteration " + std::to_string(state().iteration) + ")");
    say("💾 Saving trading session state...");
    try {
        if (!session_->close()) log_->info("session '{}': nothing changed since the last save", opts_.session);
    } catch (const std::exception& e) {
        std::cerr << "\n❌❌ SAVING THE TRADING SESSION FAILED: " << e.what()
                  << "\n❌❌ The last good saved state is unchanged; positions since then are NOT saved.\n";
        std::cerr.flush();
        log_->critical("saving the trading session failed: {}", e.what());
        print_summary();
        return 3;
    }
    say("✅ Trading session saved successfully!");
    log_->info("session '{}' saved and closed at iteration {}", opts_.session, state().iteration);
    say("🔄 Use the same system to resume from this point later");
    log_->info("session '{}' saved at iteration {}", opts_.session, state().iteration);
    print_summary();
    return 0;
}

void TradingSystem::print_summary() {
    const auto& pf = state().portfolio;
    const Money value = sim_->total_value(pf);
    const Money pnl = value - pf.initial_cash();
    say("");
    say("📊 Final Portfolio Summary:");
    say("   Total Value: " + value.format());
    say("   Total P&L: " + pnl.format() + " (" + pnl.percent_of(pf.initial_cash()) + "%)");
    say("   Active Positions: " + std::to_string(pf.positions().size()));
    say("   Cash Remaining: " + pf.cash().format());
    if (!pf.positions().empty()) {
        say("");
        say("📋 Open Positions:");
        for (const auto& [sym, p] : pf.positions())
            say("   • " + sym + ": " + p.strategy + " | " + std::to_string(p.shares) + " @ " + p.entry_price.format() +
                (p.side == tradestate::Side::short_ ? " (short)" : ""));
    }
}

std::unique_ptr<TradingSystem> create_fno_trading_system(const std::string& trading_mode, tradestate::Config config) {
    SystemOptions o;
    o.trading_mode = trading_mode;
    o.config = std::move(config);
    return std::make_unique<TradingSystem>(std::move(o));
}

namespace {
std::atomic<TradingSystem*> g_stop_target{nullptr};
extern "C" void fno_stop_handler(int) {
    if (auto* s = g_stop_target.load()) s->request_stop();
}
extern "C" void fno_snapshot_handler(int) {
    if (auto* s = g_stop_target.load()) s->request_snapshot();
}
void set_handler(int sig, void (*handler)(int)) {
    struct sigaction sa {};
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = SA_RESTART;
    sa.sa_handler = handler;
    ::sigaction(sig, &sa, nullptr);
}
} // namespace

void install_stop_signals(TradingSystem* sys) {
    g_stop_target.store(sys);
    for (int sig : {SIGINT, SIGTERM, SIGHUP, SIGQUIT}) set_handler(sig, sys ? fno_stop_handler : SIG_DFL);
    set_handler(SIGUSR1, sys ? fno_snapshot_handler : SIG_DFL);
    if (sys) set_handler(SIGPIPE, SIG_IGN); // and stays ignored: the summary after the loop goes to the same console
}

} // namespace fno
