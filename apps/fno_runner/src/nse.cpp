// fno_runner — NSE calendar, expiries, lot sizes and symbols.
#include <fno_runner/nse.hpp>

#include <tradestate/timestamp.hpp>

#include <algorithm>
#include <array>
#include <cstdio>

namespace fno {

using tradestate::Errc;
using tradestate::Error;

namespace {
constexpr std::array<const char*, 12> month_abbr = {"JAN", "FEB", "MAR", "APR", "MAY", "JUN",
                                                    "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"};
constexpr std::array<const char*, 7> weekday_names = {"sunday", "monday", "tuesday", "wednesday",
                                                      "thursday", "friday", "saturday"};
int days_in_month(int y, int m) {
    static constexpr int dm[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    if (m == 2 && ((y % 4 == 0 && y % 100 != 0) || y % 400 == 0)) return 29;
    return dm[m - 1];
}
} // namespace

Day make_day(int y, int m, int d) { return tradestate::Timestamp::days_from_civil(y, m, d); }

void civil_from_day(Day d, int& y, int& m, int& dd) { tradestate::Timestamp::civil(d, y, m, dd); }

Day parse_day(std::string_view s, const std::string& what) {
    int y = 0, m = 0, d = 0;
    bool ok = s.size() == 10 && s[4] == '-' && s[7] == '-';
    for (std::size_t i = 0; ok && i < 10; ++i)
        if (i != 4 && i != 7 && (s[i] < '0' || s[i] > '9')) ok = false;
    if (ok) {
        y = (s[0] - '0') * 1000 + (s[1] - '0') * 100 + (s[2] - '0') * 10 + (s[3] - '0');
        m = (s[5] - '0') * 10 + (s[6] - '0');
        d = (s[8] - '0') * 10 + (s[9] - '0');
        ok = m >= 1 && m <= 12 && d >= 1 && d <= days_in_month(y, m);
    }
    if (!ok)
        throw Error(Errc::config, what + ": '" + std::string(s) + "' is not a date in the form YYYY-MM-DD");
    return make_day(y, m, d);
}

std::string format_day(Day d) {
    int y, m, dd;
    civil_from_day(d, y, m, dd);
    char buf[48];
    std::snprintf(buf, sizeof buf, "%04d-%02d-%02d", y, m, dd);
    return buf;
}

int weekday(Day d) {
    const Day w = (d + 4) % 7; // 1970-01-01 was a Thursday
    return static_cast<int>(w < 0 ? w + 7 : w);
}

int parse_weekday(std::string_view name) {
    std::string lower(name);
    for (auto& c : lower) c = static_cast<char>(c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c);
    for (std::size_t i = 0; i < weekday_names.size(); ++i)
        if (lower == weekday_names[i]) return static_cast<int>(i);
    throw Error(Errc::config, "instruments.expiry_weekday: '" + std::string(name) +
                                  "' is not a weekday name (Monday ... Friday)");
}

std::int64_t Instrument::lot_size(Day expiry) const {
    std::int64_t lot = 0;
    for (const auto& r : lots)
        if (r.from_expiry <= expiry) lot = r.lot;
    if (lot <= 0)
        throw Error(Errc::config, "instruments." + name + ".lot_sizes has no lot size for contracts expiring on " +
                                      format_day(expiry) + "; add an entry with an earlier from_expiry");
    return lot;
}

bool NseCalendar::is_trading_day(Day d) const {
    const int w = weekday(d);
    return w != 0 && w != 6 && !holidays_.contains(d);
}

Day NseCalendar::next_trading_day(Day d) const {
    do ++d;
    while (!is_trading_day(d));
    return d;
}

Day NseCalendar::on_or_before_trading_day(Day d) const {
    while (!is_trading_day(d)) --d;
    return d;
}

Day NseCalendar::monthly_expiry(int year, int month) const {
    Day last = make_day(year, month, days_in_month(year, month));
    while (weekday(last) != expiry_weekday_) --last;
    return on_or_before_trading_day(last);
}

bool NseCalendar::is_monthly(Day expiry) const {
    int y, m, d;
    civil_from_day(expiry, y, m, d);
    if (monthly_expiry(y, m) == expiry) return true;
    // A holiday can move the last expiry weekday of a month into the previous month? It
    // can only move backwards within a few days, so also check the next month.
    int ny = m == 12 ? y + 1 : y, nm = m == 12 ? 1 : m + 1;
    return monthly_expiry(ny, nm) == expiry;
}

std::vector<Day> NseCalendar::expiries(const Instrument& inst, Day from, std::size_t count) const {
    std::vector<Day> out;
    if (inst.weekly) {
        Day t = from - 7;
        while (weekday(t) != expiry_weekday_) ++t;
        for (; out.size() < count; t += 7) {
            const Day actual = on_or_before_trading_day(t);
            if (actual >= from && (out.empty() || out.back() != actual)) out.push_back(actual);
        }
    } else {
        int y, m, d;
        civil_from_day(from, y, m, d);
        // start one month back: a holiday-adjusted expiry never crosses more than that
        if (--m == 0) { m = 12; --y; }
        while (out.size() < count) {
            const Day e = monthly_expiry(y, m);
            if (e >= from) out.push_back(e);
            if (++m == 13) { m = 1; ++y; }
        }
    }
    return out;
}

std::string Contract::symbol() const {
    int y, m, d;
    civil_from_day(expiry, y, m, d);
    char buf[64];
    const char* t = type == OptionType::call ? "CE" : "PE";
    if (monthly) {
        std::snprintf(buf, sizeof buf, "%s%02d%s%lld%s", underlying.c_str(), y % 100, month_abbr[m - 1],
                      static_cast<long long>(strike), t);
    } else {
        const char mc = m <= 9 ? static_cast<char>('0' + m) : (m == 10 ? 'O' : m == 11 ? 'N' : 'D');
        std::snprintf(buf, sizeof buf, "%s%02d%c%02d%lld%s", underlying.c_str(), y % 100, mc, d,
                      static_cast<long long>(strike), t);
    }
    return buf;
}

Contract parse_symbol(std::string_view s, const std::vector<std::string>& underlyings, const NseCalendar& cal) {
    auto bad = [&](const char* why) -> Contract {
        throw Error(Errc::invalid_argument, "'" + std::string(s) + "' is not an NSE option symbol of a configured index (" +
                                                why + ")");
    };
    Contract c;
    std::size_t best = 0;
    for (const auto& u : underlyings)
        if (u.size() > best && s.substr(0, u.size()) == u) {
            best = u.size();
            c.underlying = u;
        }
    if (best == 0) return bad("unknown underlying");
    std::string_view r = s.substr(best);
    if (r.size() < 2 + 3 + 1 + 2) return bad("too short");
    auto digit = [](char ch) { return ch >= '0' && ch <= '9'; };
    if (!digit(r[0]) || !digit(r[1])) return bad("expected a two-digit year");
    const int year = 2000 + (r[0] - '0') * 10 + (r[1] - '0');
    r.remove_prefix(2);
    int month = 0;
    for (std::size_t i = 0; i < month_abbr.size(); ++i)
        if (r.substr(0, 3) == month_abbr[i]) month = static_cast<int>(i) + 1;
    if (month != 0) {
        c.monthly = true;
        c.expiry = cal.monthly_expiry(year, month);
        r.remove_prefix(3);
    } else {
        const char mc = r[0];
        if (mc >= '1' && mc <= '9') month = mc - '0';
        else if (mc == 'O') month = 10;
        else if (mc == 'N') month = 11;
        else if (mc == 'D') month = 12;
        else return bad("expected a month");
        if (!digit(r[1]) || !digit(r[2])) return bad("expected a two-digit day");
        const int day = (r[1] - '0') * 10 + (r[2] - '0');
        if (day < 1 || day > days_in_month(year, month)) return bad("day out of range");
        c.monthly = false;
        c.expiry = make_day(year, month, day);
        r.remove_prefix(3);
    }
    if (r.size() < 3) return bad("missing strike");
    const std::string_view t = r.substr(r.size() - 2);
    if (t == "CE") c.type = OptionType::call;
    else if (t == "PE") c.type = OptionType::put;
    else return bad("expected CE or PE at the end");
    r.remove_suffix(2);
    if (r.empty() || r.size() > 7) return bad("bad strike");
    std::int64_t k = 0;
    for (char ch : r) {
        if (!digit(ch)) return bad("bad strike");
        k = k * 10 + (ch - '0');
    }
    c.strike = k;
    return c;
}

} // namespace fno
