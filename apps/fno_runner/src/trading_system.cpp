// fno_runner — TradingSystem: persistence, the monitoring loop, the seed's messages.
#include <fno_runner/trading_system.hpp>

#include <tradestate/detail/checksum.hpp>
#include <tradestate/detail/json.hpp>

#include <spdlog/sinks/rotating_file_sink.h>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include <fmt/format.h>

#include <cerrno>
#include <csignal>
#include <iostream>
#include <mutex>

#include <fcntl.h>
#include <poll.h>
#include <unistd.h>

namespace fno {

using tradestate::errc;
using tradestate::Error;
using tradestate::Money;
using tradestate::SessionState;

std::shared_ptr<spdlog::logger> make_runner_logger(const std::filesystem::path& state_dir, bool console) {
    std::vector<spdlog::sink_ptr> sinks;
    if (console) {
        auto c = std::make_shared<spdlog::sinks::stdout_color_sink_mt>();
        c->set_pattern("%H:%M:%S %^%l%$ %v");
        sinks.push_back(std::move(c));
    }
    std::error_code ec;
    std::filesystem::create_directories(state_dir / "logs", ec);
    if (ec)
        throw Error(errc::io, "cannot create the log directory " + (state_dir / "logs").string() + ": " + ec.message() +
                                  " (check that the state directory is writable, or pass --state-dir)");
    auto f = std::make_shared<spdlog::sinks::rotating_file_sink_mt>((state_dir / "logs" / "fno_runner.log").string(),
                                                                    5 * 1024 * 1024, 3);
    f->set_pattern("[%Y-%m-%d %H:%M:%S.%e] [%l] %v");
    sinks.push_back(std::move(f));
    auto log = std::make_shared<spdlog::logger>("fno_runner", sinks.begin(), sinks.end());
    log->set_level(spdlog::level::info);
    log->flush_on(spdlog::level::info);
    return log;
}

TradingSystem::TradingSystem(SystemOptions opts,
                             std::shared_ptr<tradestate::StatePersister<SessionState>> persister)
    : opts_(std::move(opts)), out_(opts_.out ? opts_.out : &std::cout) {
    log_ = opts_.logger ? opts_.logger : make_runner_logger(opts_.config.persistence.state_dir);
    persister_ = persister ? std::move(persister)
                           : std::make_shared<tradestate::StatePersister<SessionState>>(
                                 tradestate::StatePersister<SessionState>::open(opts_.config, log_));
    SimulationSettings s = settings_from_config(opts_.config);
    if (opts_.seed) s.seed = *opts_.seed;
    if (opts_.sim_clock) s.sim_clock = *opts_.sim_clock;
    sim_ = std::make_unique<Simulation>(std::move(s), log_);
    if (::pipe2(wake_, O_CLOEXEC | O_NONBLOCK) != 0) throw Error(errc::io, "cannot create the wake-up pipe");
    state_.trading_mode = opts_.trading_mode;
    apply_config_to_state(false);
    sim_->start_fresh(state_, opts_.config.trading.initial_cash);
}

TradingSystem::~TradingSystem() {
    for (int fd : wake_)
        if (fd >= 0) ::close(fd);
}

void TradingSystem::say(const std::string& line) {
    *out_ << line << '\n';
    out_->flush();
}

void TradingSystem::publish() {
    for (auto& h : hooks_) {
        try {
            h(state_);
        } catch (const std::exception& e) {
            log_->error("an on_iteration hook failed: {}", e.what());
        }
    }
}

void TradingSystem::on_iteration(std::function<void(const SessionState&)> hook) { hooks_.push_back(std::move(hook)); }

std::int64_t TradingSystem::interval_ms() const noexcept {
    return opts_.interval_ms ? *opts_.interval_ms : opts_.config.trading.check_interval * 1000;
}

void TradingSystem::apply_config_to_state(bool log_changes) {
    auto& c = state_.configuration;
    const auto& t = opts_.config.trading;
    auto note = [&](const char* key, const std::string& from, const std::string& to) {
        if (log_changes && from != to) log_->info("⚙️  {}: {} → {} (config.toml wins over the saved session)", key, from, to);
    };
    note("min_confidence", fmt::format("{}", c.min_confidence), fmt::format("{}", t.min_confidence));
    note("check_interval", std::to_string(c.check_interval), std::to_string(t.check_interval));
    note("max_positions", std::to_string(c.max_positions), std::to_string(t.max_positions));
    note("capital_per_trade", c.capital_per_trade.format(), t.capital_per_trade.format());
    c.min_confidence = t.min_confidence;
    c.check_interval = t.check_interval;
    c.max_positions = t.max_positions;
    c.capital_per_trade = t.capital_per_trade;
    // The runner's own risk settings, saved with the session for the record.
    const auto& r = sim_ ? sim_->settings().risk : RiskSettings{};
    c.extra["stop_loss_pct"] = r.stop_loss_pct;
    c.extra["take_profit_pct"] = r.take_profit_pct;
    c.extra["max_hold_minutes"] = r.max_hold_minutes;
    c.extra["max_strategies_per_underlying"] = r.max_strategies_per_underlying;
    c.extra["max_positions_counts"] = "legs";
}

void TradingSystem::start_fresh() {
    state_ = SessionState{};
    state_.trading_mode = opts_.trading_mode;
    apply_config_to_state(false);
    sim_->start_fresh(state_, opts_.config.trading.initial_cash);
    publish();
}

bool TradingSystem::load_system_state(const std::string& session_arg) {
    const std::string session = session_arg.empty() ? opts_.session : session_arg;
    say("📥 Loading previous trading session...");
    auto loaded = persister_->load(session);
    if (!loaded) {
        say("ℹ️  No saved session '" + session + "' found");
        return false;
    }
    SessionState st = std::move(loaded->state);
    for (const auto& w : loaded->warnings) say("⚠️  " + w);
    // The per-trade journal: operations after this snapshot (a torn last record is only a warning).
    std::optional<tradestate::ReplayResult> replay;
    if (opts_.config.persistence.journal && backend_journal()) {
        if (auto stored = persister_->backend().journal_read(session))
            replay = tradestate::replay_journal(st, tradestate::decode_journal(*stored), stored->location + " journal");
        else
            replay.emplace();
    } else if (opts_.config.persistence.journal) {
        replay = tradestate::replay_journal(st, journal_path(session), opts_.config.persistence.max_file_bytes);
    }
    if (replay) {
        for (const auto& w : replay->warnings) {
            say("⚠️  " + w);
            log_->warn("{}", w);
        }
        if (replay->applied > 0) {
            say("📜 Replayed " + std::to_string(replay->applied) + " journaled operations after the snapshot");
            log_->info("replayed {} journal records over the snapshot of session '{}' (now at record {})",
                       replay->applied, session, replay->last_seq);
        }
    }
    // Validate the runner data before replacing anything: a bad file never loses the current state.
    sim_->resume(st);
    state_ = std::move(st);
    if (session == opts_.session) {
        journal_.reset();
        replayed_ = replay;
    }
    apply_config_to_state(true);
    sim_->store(state_); // keeps iteration/portfolio; refreshes runner + timestamp
    const Money drift = state_.portfolio.reconcile();
    if (drift != Money{})
        log_->warn("the loaded portfolio's cash differs from initial_cash + realized P&L − charges − open cost by {}",
                   drift.format());
    say("✅ Previous session loaded successfully!");
    say("   📊 Positions: " + std::to_string(state_.portfolio.positions().size()));
    say("   💰 Cash: " + state_.portfolio.cash().format());
    say("   🔢 Iteration: " + std::to_string(state_.iteration));
    log_->info("resumed session '{}' from {} at iteration {} (market time {})", session, loaded->source,
               state_.iteration, sim_->market_time().to_iso());
    publish();
    return true;
}

void TradingSystem::claim_session() {
    if (!lease_) lease_ = persister_->acquire_writer(opts_.session);
}

void TradingSystem::save_system_state(const std::string& session_arg) {
    const std::string session = session_arg.empty() ? opts_.session : session_arg;
    if (saver_) saver_->flush(); // a synchronous save lands after every auto-save
    std::unique_ptr<tradestate::WriterLease> temp;
    if (session == opts_.session) {
        claim_session();
        if (!lease_->valid())
            throw Error(errc::locked, "the writer lease on session '" + session +
                                          "' was lost; another process may be writing it. Not saving.");
    } else {
        temp = persister_->acquire_writer(session);
    }
    sim_->store(state_);
    persister_->save(state_, session);
    if (journal_ && session == opts_.session) {
        if (const auto m = tradestate::journal_mark(state_)) journal_->compact(m->seq);
    }
}

bool TradingSystem::auto_save_state() {
    try {
        claim_session();
        if (!lease_->valid())
            throw Error(errc::locked, "the writer lease on session '" + opts_.session +
                                          "' was lost; another process may be writing it. Not saving.");
        if (!saver_) {
            auto log = log_;
            saver_ = std::make_unique<tradestate::AsyncSaver<SessionState>>(
                persister_, opts_.session,
                [log](const tradestate::SaveFailure& f) {
                    log->error("❌ AUTO-SAVE FAILED at iteration {}: {} — trading continues; the next save will retry",
                               f.tag, f.message);
                },
                [this, log](std::uint64_t, std::int64_t iteration, std::chrono::nanoseconds) {
                    log->info("💾 Auto-saved (iteration {})", iteration);
                    compact_journal_after(iteration);
                });
        }
        sim_->store(state_);
        if (journal_)
            if (const auto m = tradestate::journal_mark(state_)) {
                std::lock_guard lk(journal_at_mutex_);
                journal_at_[state_.iteration] = m->seq;
            }
        // The loop's only cost: a copy of the state; conversion and I/O run on the writer thread.
        saver_->submit_copy(state_, state_.iteration);
        return true;
    } catch (const std::exception& e) {
        log_->error("❌ AUTO-SAVE FAILED at iteration {}: {} — trading continues; the next save will retry",
                    state_.iteration, e.what());
        return false;
    }
}

StepReport TradingSystem::iterate() {
    ensure_journal();
    const tradestate::Portfolio before = journal_ ? state_.portfolio : tradestate::Portfolio{};
    StepReport rep = sim_->step(state_);
    if (journal_) journal_step(rep, before);
    const auto& ms = sim_->market_state();
    std::string market;
    for (const auto& inst : sim_->settings().market.instruments) {
        const auto& x = ms.u.at(inst.name);
        market += fmt::format(" {} {:.2f} (IV {:.1f}%)", inst.name, x.spot, x.atm_iv * 100.0);
    }
    log_->info("🔁 Iteration {} | {} IST{} |{} | positions {} | cash {} | value {}", rep.iteration,
               sim_->market_time().to_display(), rep.at_close ? " close" : "", market,
               state_.portfolio.positions().size(), state_.portfolio.cash().format(), rep.total_value.format());
    publish();
    return rep;
}

std::filesystem::path TradingSystem::journal_path(const std::string& session) const {
    return opts_.config.persistence.state_dir / (session + ".journal");
}

void TradingSystem::ensure_journal() {
    if (journal_ || !opts_.config.persistence.journal || !lease_) return;
    const auto policy = tradestate::parse_journal_fsync(opts_.config.persistence.journal_fsync);
    const auto path = journal_path(opts_.session);
    std::error_code ec;
    if (replayed_ && replayed_->replayed) { // continue the journal the state was loaded with
        if (backend_journal()) {
            journal_ = tradestate::BackendJournal::open(persister_->backend(), opts_.session, policy);
            return;
        }
        if (std::filesystem::exists(path, ec)) {
            journal_ = tradestate::Journal::open(path, policy, opts_.config.persistence.max_file_bytes);
            return;
        }
    }
    // A new journal. Its records apply over a snapshot that names it, so that
    // snapshot is saved first; until it is durable the old journal (whose
    // records the last good snapshot may still need) is left alone. The id is
    // the checksum of the state the journal starts from: the same seed gives
    // the same id, so runs stay byte-identical in `tradestate export`.
    const auto id = tradestate::detail::xxh3(tradestate::detail::print(boost::json::value_from(state_), {-1}));
    std::optional<boost::json::value> previous_mark;
    if (const auto* m = state_.runner.if_contains("journal")) previous_mark = *m;
    tradestate::set_journal_mark(state_, {id, 0});
    try {
        save_system_state();
    } catch (const std::exception& e) {
        if (previous_mark) state_.runner["journal"] = *previous_mark;
        else state_.runner.erase("journal");
        log_->error("❌ could not save the snapshot a new journal starts from: {} — trading continues without the "
                    "journal; the next iteration tries again",
                    e.what());
        return;
    }
    try {
        if (backend_journal()) {
            // The backend moves a previous journal's remaining records aside, never drops them.
            journal_ = tradestate::BackendJournal::create(persister_->backend(), opts_.session, policy, 0, id);
            log_->info("{} started (journal_fsync = {})", journal_->where(), tradestate::to_string(policy));
            return;
        }
        start_file_journal(path, policy, id);
    } catch (const std::exception& e) {
        journal_.reset();
        log_->error("❌ could not start the journal: {} — the snapshot just saved holds everything; trading continues "
                    "and the next iteration tries again",
                    e.what());
    }
}

void TradingSystem::start_file_journal(const std::filesystem::path& path, tradestate::JournalFsync policy,
                                       std::uint64_t id) {
    std::error_code ec;
    if (std::filesystem::exists(path, ec)) {
        // Not this state's journal (a fresh start, a snapshot from before journaling, or
        // a journal that failed): the snapshot just saved holds its effect; keep it for inspection.
        auto aside = path;
        aside += ".replaced-" + std::to_string(std::chrono::duration_cast<std::chrono::seconds>(
                                                   std::chrono::system_clock::now().time_since_epoch())
                                                   .count());
        std::filesystem::rename(path, aside, ec);
        log_->warn("the journal {} does not belong to this session's state; kept as {}", path.string(), aside.string());
    }
    journal_ = tradestate::Journal::create(path, policy, 0, id);
    log_->info("journal {} started (journal_fsync = {})", path.string(), tradestate::to_string(policy));
}

void TradingSystem::journal_step(const StepReport& rep, const tradestate::Portfolio& before) {
    namespace op = tradestate::journal_op;
    std::vector<boost::json::object> ops;
    for (const auto& t : rep.closed) ops.push_back(op::close(t.symbol, t.exit_price, t.exit_time, t.reason, t.charges));
    for (const auto& sym : rep.opened) {
        const auto& p = state_.portfolio.positions().at(sym);
        ops.push_back(op::open(p, sim_->settings().charges.on_order(p.entry_price * p.shares,
                                                                     p.side == tradestate::Side::long_)));
    }
    // The records must rebuild exactly what the step did, or replay would be wrong.
    SessionState check;
    check.portfolio = before;
    for (const auto& o : ops) tradestate::apply_journal_op(check, o, "journal check");
    if (check.portfolio != state_.portfolio)
        log_->error("the journal records of iteration {} do not reproduce its portfolio; the next snapshot covers it",
                    state_.iteration);
    sim_->store(state_);
    ops.push_back(op::step(state_));
    try {
        const auto seq = journal_->append(ops);
        tradestate::set_journal_mark(state_, {journal_->id(), seq});
    } catch (const std::exception& e) {
        // Not durable in the journal: make it durable with a snapshot instead (which starts the journal afresh).
        log_->error("❌ JOURNAL APPEND FAILED at iteration {}: {} — saving a snapshot instead", state_.iteration,
                    e.what());
        if (saver_) saver_->flush(); // its callback compacts the journal
        // Whether the failed records landed is unknown, so the old journal is
        // not continued: a snapshot naming a new journal is saved now, and the
        // old one is kept aside (ensure_journal logs when that fails too).
        journal_.reset();
        replayed_.reset();
        ensure_journal();
    }
}

void TradingSystem::compact_journal_after(std::int64_t iteration) {
    std::uint64_t seq = 0;
    {
        std::lock_guard lk(journal_at_mutex_);
        auto it = journal_at_.find(iteration);
        if (it == journal_at_.end()) return;
        seq = it->second;
        journal_at_.erase(journal_at_.begin(), std::next(it));
    }
    try {
        if (journal_) journal_->compact(seq);
    } catch (const std::exception& e) {
        log_->warn("could not compact the journal after the snapshot of iteration {}: {}", iteration, e.what());
    }
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
        claim_session();
    } catch (const Error& e) {
        std::cerr << "❌ " << e.what() << '\n';
        log_->error("{}", e.what());
        return 2;
    }
    std::int64_t done = 0;
    const std::int64_t every = auto_save_every();
    while (!stop_.load()) {
        if (opts_.until_iteration > 0 && state_.iteration >= opts_.until_iteration) break;
        if (opts_.max_iterations > 0 && done >= opts_.max_iterations) break;
        iterate();
        ++done;
        if (every > 0 && state_.iteration % every == 0) auto_save_state();
        if (lease_ && !lease_->valid()) {
            log_->error("❌ the writer lease on session '{}' was lost: stopping without saving", opts_.session);
            return 4;
        }
        wait_interval();
    }
    say("");
    if (stopped_by_signal_.load()) say("🛑 Continuous monitoring stopped by user");
    else say("🏁 Reached the iteration limit (iteration " + std::to_string(state_.iteration) + ")");
    say("💾 Saving trading session state...");
    try {
        save_system_state();
    } catch (const std::exception& e) {
        std::cerr << "\n❌❌ SAVING THE TRADING SESSION FAILED: " << e.what()
                  << "\n❌❌ The last good saved state is unchanged; positions since then are NOT saved.\n";
        std::cerr.flush();
        log_->critical("saving the trading session failed: {}", e.what());
        print_summary();
        return 3;
    }
    say("✅ Trading session saved successfully!");
    say("🔄 Use the same system to resume from this point later");
    log_->info("session '{}' saved at iteration {}", opts_.session, state_.iteration);
    print_summary();
    return 0;
}

void TradingSystem::print_summary() {
    const auto& pf = state_.portfolio;
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
} // namespace

void install_stop_signals(TradingSystem* sys) {
    g_stop_target.store(sys);
    struct sigaction sa {};
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = SA_RESTART;
    sa.sa_handler = sys ? fno_stop_handler : SIG_DFL;
    ::sigaction(SIGINT, &sa, nullptr);
    ::sigaction(SIGTERM, &sa, nullptr);
}

} // namespace fno
