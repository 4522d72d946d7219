// tradestate — exact money: a signed count of paise (1 rupee = 100 paise).
//
// All cash and P&L arithmetic is integer arithmetic on paise; overflow is
// checked. JSON carries amounts as decimal numbers in rupees (914462.59),
// as the seed's files do; reading converts the number's shortest decimal
// text to paise exactly, so no binary-floating-point error ever reaches an
// amount. The only door from a computed floating-point price (a model's
// option premium) into Money is the explicitly named `from_double_rounded`.
#pragma once

#include <tradestate/error.hpp>

#include <boost/json/value.hpp>
#include <boost/json/value_from.hpp>
#include <boost/json/value_to.hpp>

#include <atomic>
#include <charconv>
#include <cmath>
#include <compare>
#include <cstdint>
#include <limits>
#include <string>
#include <string_view>
#include <system_error>

namespace tradestate {

/// How `Money::format()` groups digits: western "₹896,439.16" (as the seed
/// prints) or Indian lakh/crore "₹8,96,439.16". config.toml: `[display] money_grouping`.
enum class MoneyGrouping { western, indian };

/// The grouping `Money::format()` uses in this process. A program sets it
/// once from its config (`set_money_grouping(cfg.display.money_grouping)`),
/// so the console, listings and the page group alike, like a global locale.
[[nodiscard]] inline MoneyGrouping money_grouping() noexcept;
inline void set_money_grouping(MoneyGrouping g) noexcept;

class Money {
public:
    constexpr Money() noexcept = default;

    [[nodiscard]] static constexpr Money from_paise(std::int64_t p) noexcept { return Money(p); }
    [[nodiscard]] static Money from_rupees(std::int64_t r) { return Money(checked_mul(r, 100)); }

    /// Parse "914462.59", "-28.4", "1,000,000.00", "₹8,96,439.16", "1e3".
    /// More than two decimals are rounded half away from zero to the paisa.
    /// Throws Errc::invalid_argument naming the text.
    [[nodiscard]] static Money parse(std::string_view text);

    /// Round a computed price to the nearest paisa (half away from zero).
    /// Throws for NaN, infinity and out-of-range values.
    [[nodiscard]] static Money from_double_rounded(double rupees) {
        if (!std::isfinite(rupees) || std::fabs(rupees) > 9.0e15)
            throw Error(Errc::invalid_argument, "amount out of range: " + std::to_string(rupees));
        return Money(static_cast<std::int64_t>(std::llround(rupees * 100.0)));
    }

    [[nodiscard]] constexpr std::int64_t paise() const noexcept { return paise_; }
    /// For display and JSON transport only; never for arithmetic.
    [[nodiscard]] double to_double() const noexcept { return static_cast<double>(paise_) / 100.0; }

    /// "896439.16", "-28.40" — plain, two decimals.
    [[nodiscard]] std::string to_string() const { return format_plain(false, 3, false); }
    /// "₹896,439.16", "-₹28.40" — grouped as `money_grouping()` says (western by default).
    [[nodiscard]] std::string format() const { return format(money_grouping()); }
    /// "₹896,439.16" (western) or "₹8,96,439.16" (indian); the sign comes before the ₹.
    [[nodiscard]] std::string format(MoneyGrouping g) const {
        return format_plain(true, g == MoneyGrouping::indian ? 2 : 3, true);
    }
    /// "₹8,96,439.16" — Indian lakh/crore grouping.
    [[nodiscard]] std::string format_indian() const { return format(MoneyGrouping::indian); }

    constexpr auto operator<=>(const Money&) const noexcept = default;

    Money& operator+=(Money o) { paise_ = checked_add(paise_, o.paise_); return *this; }
    Money& operator-=(Money o) { paise_ = checked_sub(paise_, o.paise_); return *this; }
    [[nodiscard]] friend Money operator+(Money a, Money b) { return a += b; }
    [[nodiscard]] friend Money operator-(Money a, Money b) { return a -= b; }
    [[nodiscard]] friend Money operator-(Money a) { return Money(checked_sub(0, a.paise_)); }
    [[nodiscard]] friend Money operator*(Money a, std::int64_t n) { return Money(checked_mul(a.paise_, n)); }
    [[nodiscard]] friend Money operator*(std::int64_t n, Money a) { return a * n; }

    /// Percentage of `base` with two decimals, e.g. "-0.00", "12.35", by integer arithmetic.
    [[nodiscard]] std::string percent_of(Money base) const;

private:
    constexpr explicit Money(std::int64_t p) noexcept : paise_(p) {}

    static std::int64_t checked_add(std::int64_t a, std::int64_t b) {
        std::int64_t r;
        if (__builtin_add_overflow(a, b, &r)) overflow();
        return r;
    }
    static std::int64_t checked_sub(std::int64_t a, std::int64_t b) {
        std::int64_t r;
        if (__builtin_sub_overflow(a, b, &r)) overflow();
        return r;
    }
    static std::int64_t checked_mul(std::int64_t a, std::int64_t b) {
        std::int64_t r;
        if (__builtin_mul_overflow(a, b, &r)) overflow();
        return r;
    }
    [[noreturn]] static void overflow() { throw Error(Errc::invalid_argument, "money arithmetic overflow"); }

    std::string format_plain(bool group, int group_after_first, bool rupee_sign) const {
        const bool neg = paise_ < 0;
        // magnitude without overflow for INT64_MIN
        const std::uint64_t mag = neg ? (~static_cast<std::uint64_t>(paise_) + 1) : static_cast<std::uint64_t>(paise_);
        std::string whole = std::to_string(mag / 100);
        const unsigned frac = static_cast<unsigned>(mag % 100);
        if (group && whole.size() > 3) {
            std::string g = whole.substr(whole.size() - 3);
            std::size_t i = whole.size() - 3;
            const std::size_t step = static_cast<std::size_t>(group_after_first);
            while (i > 0) {
                std::size_t start = i > step ? i - step : 0;
                g = whole.substr(start, i - start) + "," + g;
                i = start;
            }
            whole = g;
        }
        std::string s;
        if (neg) s += '-';
        if (rupee_sign) s += "\xE2\x82\xB9"; // ₹
        s += whole;
        s += '.';
        s += static_cast<char>('0' + frac / 10);
        s += static_cast<char>('0' + frac % 10);
        return s;
    }

    std::int64_t paise_ = 0;
};

namespace detail {
[[nodiscard]] inline std::atomic<MoneyGrouping>& money_grouping_slot() noexcept {
    static std::atomic<MoneyGrouping> g{MoneyGrouping::western};
    return g;
}
} // namespace detail

inline MoneyGrouping money_grouping() noexcept { return detail::money_grouping_slot().load(std::memory_order_relaxed); }
inline void set_money_grouping(MoneyGrouping g) noexcept { detail::money_grouping_slot().store(g, std::memory_order_relaxed); }

[[nodiscard]] constexpr std::string_view to_string(MoneyGrouping g) noexcept {
    return g == MoneyGrouping::indian ? "indian" : "western";
}

inline Money Money::parse(std::string_view text) {
    auto bad = [&](const char* why) -> Money {
        throw Error(Errc::invalid_argument, "not an amount of money: '" + std::string(text.substr(0, 64)) + "' (" + why + ")");
    };
    std::string_view s = text;
    while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
    while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
    bool neg = false;
    if (!s.empty() && (s.front() == '-' || s.front() == '+')) { neg = s.front() == '-'; s.remove_prefix(1); }
    constexpr std::string_view rupee = "\xE2\x82\xB9";
    if (s.substr(0, rupee.size()) == rupee) s.remove_prefix(rupee.size());
    if (!neg && !s.empty() && s.front() == '-') { neg = true; s.remove_prefix(1); }
    // Collect digits (commas allowed between digits before the point).
    std::string digits;
    int frac_digits = -1;
    int exponent = 0;
    std::size_t i = 0;
    for (; i < s.size(); ++i) {
        char c = s[i];
        if (c >= '0' && c <= '9') {
            digits.push_back(c);
            if (frac_digits >= 0) ++frac_digits;
        } else if (c == ',' && frac_digits < 0 && !digits.empty()) {
            continue;
        } else if (c == '.' && frac_digits < 0) {
            frac_digits = 0;
        } else if (c == 'e' || c == 'E') {
            int e = 0;
            auto r = std::from_chars(s.data() + i + 1 + (i + 1 < s.size() && s[i + 1] == '+'), s.data() + s.size(), e);
            if (r.ec != std::errc{} || r.ptr != s.data() + s.size()) return bad("bad exponent");
            exponent = e;
            i = s.size();
            break;
        } else {
            return bad("unexpected character");
        }
    }
    if (digits.empty()) return bad("no digits");
    if (frac_digits < 0) frac_digits = 0;
    // value = digits * 10^(exponent - frac_digits); we want paise = value * 100
    int shift = exponent - frac_digits + 2;
    if (shift > 20 || shift < -400) return bad("out of range");
    // paise = digits × 10^shift: keep the leading digits, round on the first dropped one.
    const std::size_t drop = shift < 0 ? static_cast<std::size_t>(-shift) : 0;
    const std::size_t keep = digits.size() > drop ? digits.size() - drop : 0;
    constexpr std::uint64_t limit = static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max());
    std::uint64_t mag = 0;
    auto times10_plus = [&](unsigned d) {
        if (mag > (limit - d) / 10) return false;
        mag = mag * 10 + d;
        return true;
    };
    for (std::size_t k = 0; k < keep; ++k)
        if (!times10_plus(static_cast<unsigned>(digits[k] - '0'))) return bad("out of range");
    for (int k = 0; k < shift; ++k)
        if (!times10_plus(0)) return bad("out of range");
    if (drop > 0 && drop <= digits.size() && digits[keep] >= '5') { // half away from zero
        if (mag == limit) return bad("out of range");
        ++mag;
    }
    auto p = static_cast<std::int64_t>(mag);
    return Money(neg ? -p : p);
}

inline std::string Money::percent_of(Money base) const {
    __extension__ using i128 = __int128; // exact: paise × 10,000 overflows int64
    if (base.paise_ == 0) return "0.00";
    // basis points of a percent: value*10000/base, rounded half away from zero
    i128 num = static_cast<i128>(paise_) * 10000;
    i128 q = num / base.paise_;
    i128 rem = num % base.paise_;
    if ((rem < 0 ? -rem : rem) * 2 >= (base.paise_ < 0 ? -static_cast<i128>(base.paise_) : base.paise_))
        q += ((num < 0) != (base.paise_ < 0)) ? -1 : 1;
    const bool neg = (num < 0) != (base.paise_ < 0) && num != 0;
    i128 a = q < 0 ? -q : q;
    std::string s = neg ? "-" : "";
    s += std::to_string(static_cast<long long>(a / 100));
    s += '.';
    s += static_cast<char>('0' + static_cast<int>(a % 100 / 10));
    s += static_cast<char>('0' + static_cast<int>(a % 10));
    return s;
}

/// JSON: a number in rupees (shortest decimal), like the seed's files.
inline void tag_invoke(const boost::json::value_from_tag&, boost::json::value& jv, const Money& m) {
    const std::int64_t p = m.paise();
    if (p % 100 == 0) jv = static_cast<double>(p / 100); // prints as 1000000.0
    else jv = m.to_double();                              // shortest text round-trips to the exact paise
}

/// Accepts JSON numbers (int or double) and strings ("₹1,234.56").
inline Money tag_invoke(const boost::json::value_to_tag<Money>&, const boost::json::value& jv) {
    switch (jv.kind()) {
    case boost::json::kind::int64: return Money::from_rupees(jv.get_int64());
    case boost::json::kind::uint64:
        if (jv.get_uint64() > static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max() / 100))
            throw Error(Errc::schema, "amount out of range");
        return Money::from_rupees(static_cast<std::int64_t>(jv.get_uint64()));
    case boost::json::kind::double_: {
        const double d = jv.get_double();
        if (!std::isfinite(d)) throw Error(Errc::schema, "amount is not a finite number");
        char buf[64];
        auto r = std::to_chars(buf, buf + sizeof buf, d); // shortest round-trip text
        return Money::parse(std::string_view(buf, static_cast<std::size_t>(r.ptr - buf)));
    }
    case boost::json::kind::string: return Money::parse(jv.get_string());
    default: throw Error(Errc::schema, "expected an amount (number or string)");
    }
}

} // namespace tradestate
