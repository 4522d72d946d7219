// fno_runner — NSE index-derivative contract facts: the trading calendar
// (weekends + holidays), expiry days (Tuesday since September 2025; a
// holiday moves an expiry to the previous trading day), lot sizes that
// depend on the contract's expiry (NSE/FAOP/70616), strike steps, and NSE
// option symbols (monthly NIFTY25SEP24650CE, weekly NIFTY2590924650CE).
#pragma once

#include <tradestate/error.hpp>

#include <cstdint>
#include <set>
#include <string>
#include <string_view>
#include <vector>

namespace fno {

/// A calendar day as days since 1970-01-01.
using Day = std::int64_t;

[[nodiscard]] Day make_day(int y, int m, int d);
[[nodiscard]] Day parse_day(std::string_view iso, const std::string& what); // "YYYY-MM-DD"
[[nodiscard]] std::string format_day(Day d);                              // "YYYY-MM-DD"
void civil_from_day(Day d, int& y, int& m, int& dd);
/// 0 = Sunday ... 6 = Saturday.
[[nodiscard]] int weekday(Day d);
[[nodiscard]] int parse_weekday(std::string_view name); // "Tuesday" -> 2

/// Lot size in force for contracts expiring on or after `from_expiry`.
struct LotRule {
    Day from_expiry = 0;
    std::int64_t lot = 0;
};

/// One underlying index as configured in `[instruments.<NAME>]`.
struct Instrument {
    std::string name;              ///< NIFTY, BANKNIFTY
    double initial_spot = 0;       ///< spot at the simulation start
    double base_iv = 0.12;         ///< long-run at-the-money implied volatility
    double iv_of_iv = 0.6;         ///< volatility of the ATM IV (annualised, relative)
    double skew = -0.25;           ///< smile: iv += skew * ln(K/S)
    double smile = 1.2;            ///< smile: iv += smile * ln(K/S)^2
    std::int64_t strike_step = 50; ///< rupees between listed strikes
    bool weekly = false;           ///< weekly expiries listed (NIFTY) or monthly only (BANKNIFTY)
    std::vector<LotRule> lots;     ///< sorted by from_expiry

    /// Lot size for a contract expiring on `expiry`; throws if none applies.
    [[nodiscard]] std::int64_t lot_size(Day expiry) const;
};

/// Exchange calendar: trading days and expiry days.
class NseCalendar {
public:
    NseCalendar() = default;
    NseCalendar(std::set<Day> holidays, int expiry_weekday) : holidays_(std::move(holidays)), expiry_weekday_(expiry_weekday) {}

    [[nodiscard]] bool is_trading_day(Day d) const;
    [[nodiscard]] Day next_trading_day(Day d) const;      ///< strictly after d
    [[nodiscard]] Day on_or_before_trading_day(Day d) const;
    [[nodiscard]] const std::set<Day>& holidays() const noexcept { return holidays_; }
    [[nodiscard]] int expiry_weekday() const noexcept { return expiry_weekday_; }

    /// Actual expiry of the month (last expiry weekday, moved to the previous trading day on a holiday).
    [[nodiscard]] Day monthly_expiry(int year, int month) const;
    /// Expiries of `inst` whose actual date is >= `from`, soonest first, `count` of them.
    [[nodiscard]] std::vector<Day> expiries(const Instrument& inst, Day from, std::size_t count) const;
    /// True if `expiry` is the monthly expiry of its month.
    [[nodiscard]] bool is_monthly(Day expiry) const;

private:
    std::set<Day> holidays_;
    int expiry_weekday_ = 2; // Tuesday
};

enum class OptionType { call, put };

/// One option contract.
struct Contract {
    std::string underlying;
    Day expiry = 0;
    bool monthly = true;
    std::int64_t strike = 0; ///< rupees
    OptionType type = OptionType::call;

    /// NSE trading symbol.
    [[nodiscard]] std::string symbol() const;
    friend bool operator==(const Contract&, const Contract&) = default;
};

/// Parse an NSE option symbol of one of `underlyings`; monthly symbols need
/// the calendar to find the expiry day. Throws Errc::invalid_argument naming
/// the symbol.
[[nodiscard]] Contract parse_symbol(std::string_view symbol, const std::vector<std::string>& underlyings,
                                    const NseCalendar& cal);

} // namespace fno
