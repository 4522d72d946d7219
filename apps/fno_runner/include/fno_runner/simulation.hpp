// fno_runner — one step of simulated F&O paper trading on a SessionState:
// move the market, exit what the risk rules say (stop-loss, take-profit,
// time, expiry), let the strategies propose trades, and open what the risk
// rules allow. Deterministic: the result depends only on the session state
// (portfolio, configuration, runner data) and the settings.
//
// A step never changes the state itself: it hands every change to `apply`
// as a SessionState operation (session_op::close/open/step), which the
// caller applies — through a tradestate::Session, so that the journal holds
// exactly what the step did.
#pragma once

#include <fno_runner/market.hpp>
#include <fno_runner/rng.hpp>

#include <tradestate/money.hpp>
#include <tradestate/session_state.hpp>

#include <boost/json/object.hpp>

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace spdlog {
class logger;
}

namespace fno {

using tradestate::Money;

/// Brokerage and statutory charges on one order, all integer arithmetic.
/// Rates "per crore" are rupees per ₹1,00,00,000 of premium turnover, the
/// way NSE and brokers publish them.
struct ChargeSchedule {
    Money brokerage_per_order = Money::from_rupees(20);
    std::int64_t stt_sell_per_crore = 10000;      ///< STT on option sales: 0.1% of premium
    std::int64_t exchange_txn_per_crore = 3503;   ///< NSE options transaction charge: 0.03503%
    std::int64_t sebi_fee_per_crore = 10;         ///< SEBI turnover fee
    std::int64_t stamp_buy_per_crore = 300;       ///< stamp duty on buys: 0.003%
    std::int64_t gst_percent = 18;                ///< on brokerage + exchange + SEBI fees

    /// Charges of one order of `turnover` premium; `buy` true for a purchase.
    [[nodiscard]] Money on_order(Money turnover, bool buy) const;
};

/// Risk and strategy settings beyond the seed's four (which live in
/// SessionState::configuration).
struct RiskSettings {
    double stop_loss_pct = 0.20;            ///< per leg, relative to the entry premium
    double take_profit_pct = 0.30;
    std::int64_t max_hold_minutes = 1440;   ///< minutes of simulated time since entry_time (nights count)
    std::int64_t max_strategies_per_underlying = 2;
    std::int64_t max_new_per_iteration = 1;
    std::int64_t min_days_to_expiry = 3;    ///< don't open contracts that expire sooner
    std::int64_t cooldown_minutes = 120;    ///< no new strategy on an underlying this soon after an exit there
    Money min_premium = Money::from_rupees(2); ///< don't trade legs cheaper than this
    std::int64_t max_lots_per_leg = 10;
    std::vector<std::string> strategies = {"straddle", "strangle", "iron_condor", "directional_buy"};
};

/// One proposed leg.
struct Leg {
    Contract contract;
    tradestate::Side side = tradestate::Side::long_;
    std::int64_t premium_paise = 0; ///< model price per unit now
};

/// A strategy's proposal.
struct Signal {
    std::string strategy;
    std::string underlying;
    double confidence = 0;
    std::vector<Leg> legs;
    std::int64_t lot_size = 0;
    Money capital_per_lot;        ///< capital one lot of every leg commits (debit, or max loss of a credit spread)
    std::string decision;         ///< "opened", or why not
    std::int64_t lots = 0;
};

/// What one iteration did (for logs, tests and the dashboard).
struct StepReport {
    std::int64_t iteration = 0;
    bool at_close = false;
    std::vector<tradestate::Trade> closed;
    std::vector<Signal> signals;
    std::vector<std::string> opened;     ///< symbols
    Money total_value;
    Money unrealized;
};

struct SimulationSettings {
    MarketSettings market;
    RiskSettings risk;
    ChargeSchedule charges;
    bool sim_clock = false;    ///< SessionState::timestamp from the simulated clock instead of the wall clock
    std::uint64_t seed = 20251201;
};

/// Where a step sends its operations; applying one changes the state the step reads.
using ApplyOp = std::function<void(const boost::json::object&)>;

class Simulation {
public:
    Simulation(SimulationSettings s, std::shared_ptr<spdlog::logger> log);

    /// A new session: empty portfolio, market at the configured start, RNG from the seed.
    void start_fresh(tradestate::SessionState& s, Money initial_cash);
    /// Take the market and RNG from a loaded session's `runner` object (a
    /// session without one, e.g. written by the seed's program, starts the
    /// market fresh from the seed and keeps its portfolio).
    void resume(const tradestate::SessionState& s);
    /// Points the saved equity curve keeps at most (`runner.equity`).
    static constexpr std::int64_t equity_points = 240;
    /// The `runner` object for `s` at `iteration` (stamped `at`, valued
    /// `total`): its members plus market, RNG, clock, `last_prices` (the
    /// mark of every open position) and `equity` (the curve:
    /// `{"<iteration>": [unix_us, total_value_paise, pnl_paise, realized_pnl_paise]}`).
    [[nodiscard]] boost::json::object runner_data(const tradestate::SessionState& s, std::int64_t iteration,
                                                  tradestate::Timestamp at, Money total) const;
    /// Write market, RNG and clock into `s.runner` (and the timestamp).
    void store(tradestate::SessionState& s) const;

    /// One iteration of the monitoring loop over `s`; every change goes
    /// through `apply` (which must apply it to `s` before returning).
    StepReport step(const tradestate::SessionState& s, const ApplyOp& apply);

    /// Current model price of an open symbol (nullopt if it is not one we can price).
    [[nodiscard]] std::optional<Money> price(const std::string& symbol) const;
    /// Cash + open positions at model prices.
    [[nodiscard]] Money total_value(const tradestate::Portfolio& pf) const;
    /// Timestamp the session should carry now (simulated or wall clock).
    [[nodiscard]] tradestate::Timestamp now_for_state() const;
    [[nodiscard]] tradestate::Timestamp market_time() const { return tradestate::Timestamp::from_micros(ms_.clock); }

    [[nodiscard]] const MarketState& market_state() const noexcept { return ms_; }
    [[nodiscard]] const Rng& rng() const noexcept { return rng_; }
    [[nodiscard]] const Market& market() const noexcept { return market_; }
    [[nodiscard]] const SimulationSettings& settings() const noexcept { return s_; }

private:
    std::optional<Contract> contract_of(const std::string& symbol) const;
    void exits(const tradestate::SessionState& s, StepReport& rep, bool at_close, const ApplyOp& apply);
    void entries(const tradestate::SessionState& s, StepReport& rep, const ApplyOp& apply);
    std::vector<Signal> propose(const tradestate::SessionState& s);
    void size_and_decide(const tradestate::SessionState& s, Signal& sig, std::int64_t open_legs_after,
                         std::int64_t& strategies_on_underlying) const;
    boost::json::value analysis(const tradestate::SessionState& s, const StepReport& rep) const;

    SimulationSettings s_;
    Market market_;
    MarketState ms_;
    Rng rng_;
    std::shared_ptr<spdlog::logger> log_;
    mutable std::vector<std::string> warned_symbols_;
};

} // namespace fno
