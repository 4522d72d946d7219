// fno_runner — the simulated index-options market: NIFTY and BANKNIFTY
// spot by a random walk whose volatility is the (itself random, mean
// reverting) at-the-money implied volatility, option premiums by
// Black–Scholes with an implied-volatility smile, on a simulated clock that
// follows NSE trading hours (09:15–15:30 IST) and the NSE calendar.
//
// Everything the next step depends on is in MarketState, which is saved
// with the session (doubles as exact bit patterns), so a resumed market
// continues exactly where it stopped.
#pragma once

#include <fno_runner/nse.hpp>
#include <fno_runner/rng.hpp>

#include <boost/json/object.hpp>

#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace fno {

/// Black–Scholes–Merton price of a European option (continuous dividend yield q).
[[nodiscard]] double black_scholes(OptionType type, double spot, double strike, double years, double rate,
                                   double div_yield, double vol);

/// Implied volatility at `strike` from the ATM level and the instrument's smile.
[[nodiscard]] double smile_iv(const Instrument& inst, double atm_iv, double spot, double strike);

/// Round a model price to the NSE option tick (₹0.05), at least one tick; in paise.
[[nodiscard]] std::int64_t to_tick_paise(double rupees);

/// IST time of day in seconds of a Timestamp-style microsecond clock.
[[nodiscard]] std::int64_t ist_seconds_of_day(std::int64_t micros);
[[nodiscard]] Day ist_day(std::int64_t micros);
[[nodiscard]] std::int64_t ist_micros(Day d, int hh, int mm);

inline constexpr int market_open_minute = 9 * 60 + 15;
inline constexpr int market_close_minute = 15 * 60 + 30;

struct MarketSettings {
    std::vector<Instrument> instruments;
    NseCalendar calendar;
    double rate = 0.065;          ///< risk-free rate for pricing
    double div_yield = 0.012;     ///< index dividend yield
    double realized_to_implied = 0.9;
    double iv_mean_reversion = 8.0; ///< per year
    double spot_iv_correlation = -0.5;
    double overnight_hours = 1.5; ///< variance of the overnight gap, in trading hours
    std::int64_t step_seconds = 300;
    std::string start = "2025-12-01T09:15:00+05:30";

    [[nodiscard]] const Instrument& instrument(const std::string& name) const;
    [[nodiscard]] std::vector<std::string> names() const;
};

struct UnderlyingState {
    double spot = 0;
    double atm_iv = 0;
    double momentum = 0;  ///< EMA of standardized returns
    double day_open = 0;  ///< spot at today's open
    friend bool operator==(const UnderlyingState&, const UnderlyingState&) = default;
};

struct MarketState {
    std::int64_t clock = 0; ///< simulated time, microseconds since the epoch
    std::map<std::string, UnderlyingState> u;
    friend bool operator==(const MarketState&, const MarketState&) = default;

    [[nodiscard]] boost::json::object to_json() const;
    static MarketState from_json(const boost::json::object& o);
};

class Market {
public:
    explicit Market(MarketSettings s) : s_(std::move(s)) {}

    /// Fresh market at the configured start (moved to a trading day's open).
    [[nodiscard]] MarketState initial_state() const;

    /// Advance one step. Returns true when the step ended at the day's close.
    bool step(MarketState& st, Rng& rng) const;

    /// Model premium of a contract in paise (tick-rounded); intrinsic value once expired.
    [[nodiscard]] std::int64_t premium_paise(const MarketState& st, const Contract& c) const;
    /// Intrinsic value in paise (for settlement at expiry).
    [[nodiscard]] std::int64_t intrinsic_paise(const MarketState& st, const Contract& c) const;
    /// Years to expiry (calendar), 0 once expired.
    [[nodiscard]] double years_to_expiry(const MarketState& st, Day expiry) const;
    [[nodiscard]] std::int64_t atm_strike(const MarketState& st, const Instrument& inst) const;

    [[nodiscard]] const MarketSettings& settings() const noexcept { return s_; }

private:
    void evolve(MarketState& st, Rng& rng, double trading_years) const;
    MarketSettings s_;
};

} // namespace fno
