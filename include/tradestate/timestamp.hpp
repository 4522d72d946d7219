// tradestate — points in time, written as ISO 8601 with microseconds.
//
// Market time is IST (UTC+05:30, no daylight saving). Timestamps are written
// with their offset ("2025-09-29T11:49:10.204428+05:30"); a naive timestamp
// (no offset, as the seed's Python program writes) is read as IST, so a
// machine whose clock is in UTC never shifts an entry time.
#pragma once

#include <tradestate/error.hpp>

#include <boost/json/value.hpp>
#include <boost/json/value_from.hpp>
#include <boost/json/value_to.hpp>

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <ctime>
#include <string>
#include <string_view>

namespace tradestate {

inline constexpr std::int64_t ist_offset_seconds = 5 * 3600 + 30 * 60;

class Timestamp {
public:
    constexpr Timestamp() noexcept = default;
    [[nodiscard]] static constexpr Timestamp from_micros(std::int64_t us) noexcept { return Timestamp(us); }
    /// A file time (`stat`'s `st_mtim`), to the microsecond.
    [[nodiscard]] static constexpr Timestamp from_timespec(const std::timespec& t) noexcept {
        return Timestamp(static_cast<std::int64_t>(t.tv_sec) * 1'000'000 + t.tv_nsec / 1000);
    }
    [[nodiscard]] static Timestamp now() {
        using namespace std::chrono;
        return Timestamp(duration_cast<microseconds>(system_clock::now().time_since_epoch()).count());
    }
    /// Parse ISO 8601 "YYYY-MM-DDTHH:MM:SS[.ffffff][Z|±HH:MM]" (a space may
    /// replace the 'T'); no offset means IST. Throws Errc::schema.
    [[nodiscard]] static Timestamp from_iso(std::string_view s);

    [[nodiscard]] constexpr std::int64_t micros() const noexcept { return us_; }
    /// "2025-09-29T11:49:10.204428+05:30" (IST).
    [[nodiscard]] std::string to_iso() const { return format(ist_offset_seconds, true, true); }
    /// "2025-09-29 11:49:10 IST": what a person reads (console, listings, logs).
    [[nodiscard]] std::string to_display() const { return format(ist_offset_seconds, false, false) + " IST"; }
    /// Calendar date in IST, "2025-09-29" (the trading day's name in files).
    [[nodiscard]] std::string ist_day() const { return format(ist_offset_seconds, false, false).substr(0, 10); }
    /// Calendar date in IST as YYYYMMDD.
    [[nodiscard]] int ist_date() const {
        int y, m, d;
        civil(floor_div(us_ + ist_offset_seconds * 1'000'000, 86'400'000'000), y, m, d);
        return y * 10000 + m * 100 + d;
    }

    constexpr auto operator<=>(const Timestamp&) const noexcept = default;
    [[nodiscard]] friend constexpr Timestamp operator+(Timestamp t, std::chrono::microseconds d) noexcept {
        return Timestamp(t.us_ + d.count());
    }

    /// Days since 1970-01-01 of a civil date (proleptic Gregorian).
    [[nodiscard]] static constexpr std::int64_t days_from_civil(int y, int m, int d) noexcept {
        y -= m <= 2;
        const std::int64_t era = (y >= 0 ? y : y - 399) / 400;
        const auto yoe = static_cast<unsigned>(y - era * 400);
        const unsigned doy = (153 * static_cast<unsigned>(m + (m > 2 ? -3 : 9)) + 2) / 5 + static_cast<unsigned>(d) - 1;
        const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
        return era * 146097 + static_cast<std::int64_t>(doe) - 719468;
    }
    static constexpr void civil(std::int64_t z, int& y, int& m, int& d) noexcept {
        z += 719468;
        const std::int64_t era = (z >= 0 ? z : z - 146096) / 146097;
        const auto doe = static_cast<unsigned>(z - era * 146097);
        const unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
        const unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
        const unsigned mp = (5 * doy + 2) / 153;
        d = static_cast<int>(doy - (153 * mp + 2) / 5 + 1);
        m = static_cast<int>(mp < 10 ? mp + 3 : mp - 9);
        y = static_cast<int>(static_cast<std::int64_t>(yoe) + era * 400 + (m <= 2));
    }

private:
    constexpr explicit Timestamp(std::int64_t us) noexcept : us_(us) {}
    static constexpr std::int64_t floor_div(std::int64_t a, std::int64_t b) noexcept {
        return a / b - ((a % b != 0) && ((a < 0) != (b < 0)));
    }

    std::string format(std::int64_t offset_s, bool iso, bool with_offset) const {
        const std::int64_t local = us_ + offset_s * 1'000'000;
        const std::int64_t days = floor_div(local, 86'400'000'000);
        const std::int64_t rem = local - days * 86'400'000'000;
        int y, m, d;
        civil(days, y, m, d);
        const auto secs = rem / 1'000'000;
        const auto frac = rem % 1'000'000;
        char buf[64];
        if (y < 0 || y > 9999) { // outside what the digit writer below handles
            if (iso)
                std::snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.%06lld%s", y, m, d,
                              static_cast<int>(secs / 3600), static_cast<int>(secs / 60 % 60),
                              static_cast<int>(secs % 60), static_cast<long long>(frac), with_offset ? "+05:30" : "");
            else
                std::snprintf(buf, sizeof buf, "%04d-%02d-%02d %02d:%02d:%02d", y, m, d, static_cast<int>(secs / 3600),
                              static_cast<int>(secs / 60 % 60), static_cast<int>(secs % 60));
            return buf;
        }
        // Written digit by digit: this runs for every timestamp of every save.
        char* p = buf;
        auto put = [&p](std::int64_t v, int width) {
            for (int i = width - 1; i >= 0; --i) {
                p[i] = static_cast<char>('0' + v % 10);
                v /= 10;
            }
            p += width;
        };
        put(y, 4);
        *p++ = '-';
        put(m, 2);
        *p++ = '-';
        put(d, 2);
        *p++ = iso ? 'T' : ' ';
        put(secs / 3600, 2);
        *p++ = ':';
        put(secs / 60 % 60, 2);
        *p++ = ':';
        put(secs % 60, 2);
        if (iso) {
            *p++ = '.';
            put(frac, 6);
            if (with_offset)
                for (char c : {'+', '0', '5', ':', '3', '0'}) *p++ = c;
        }
        return std::string(buf, p);
    }

    std::int64_t us_ = 0;
};

inline Timestamp Timestamp::from_iso(std::string_view s) {
    auto bad = [&](const char* why) -> Timestamp {
        throw Error(Errc::schema, "not an ISO 8601 timestamp: '" + std::string(s.substr(0, 64)) + "' (" + why + ")");
    };
    auto num = [&](std::size_t pos, std::size_t len, int& out) {
        if (pos + len > s.size()) return false;
        out = 0;
        for (std::size_t i = pos; i < pos + len; ++i) {
            if (s[i] < '0' || s[i] > '9') return false;
            out = out * 10 + (s[i] - '0');
        }
        return true;
    };
    int y, mo, d, h = 0, mi = 0, se = 0;
    if (!num(0, 4, y) || s.size() < 10 || s[4] != '-' || !num(5, 2, mo) || s[7] != '-' || !num(8, 2, d))
        return bad("expected YYYY-MM-DD");
    if (mo < 1 || mo > 12 || d < 1 || d > 31) return bad("date out of range");
    std::size_t p = 10;
    std::int64_t frac_us = 0;
    if (p < s.size() && (s[p] == 'T' || s[p] == ' ')) {
        if (!num(p + 1, 2, h) || p + 3 >= s.size() || s[p + 3] != ':' || !num(p + 4, 2, mi)) return bad("expected HH:MM");
        p += 6;
        if (p < s.size() && s[p] == ':') {
            if (!num(p + 1, 2, se)) return bad("expected seconds");
            p += 3;
            if (p < s.size() && (s[p] == '.' || s[p] == ',')) {
                ++p;
                int digits = 0;
                while (p < s.size() && s[p] >= '0' && s[p] <= '9') {
                    if (digits < 6) frac_us = frac_us * 10 + (s[p] - '0');
                    ++digits;
                    ++p;
                }
                if (digits == 0) return bad("empty fraction");
                for (int i = digits; i < 6; ++i) frac_us *= 10;
            }
        }
        if (h > 23 || mi > 59 || se > 60) return bad("time out of range");
    }
    std::int64_t offset = ist_offset_seconds;
    if (p < s.size()) {
        if (s[p] == 'Z' && p + 1 == s.size()) {
            offset = 0;
        } else if ((s[p] == '+' || s[p] == '-') && s.size() == p + 6 && s[p + 3] == ':') {
            int oh, om;
            if (!num(p + 1, 2, oh) || !num(p + 4, 2, om)) return bad("bad offset");
            offset = (oh * 3600 + om * 60) * (s[p] == '-' ? -1 : 1);
        } else {
            return bad("unexpected trailing text");
        }
    }
    const std::int64_t days = days_from_civil(y, mo, d);
    const std::int64_t local_s = days * 86400 + h * 3600 + mi * 60 + se;
    return Timestamp((local_s - offset) * 1'000'000 + frac_us);
}

inline void tag_invoke(const boost::json::value_from_tag&, boost::json::value& jv, const Timestamp& t) {
    jv = t.to_iso();
}
inline Timestamp tag_invoke(const boost::json::value_to_tag<Timestamp>&, const boost::json::value& jv) {
    if (!jv.is_string()) throw Error(Errc::schema, "expected an ISO 8601 timestamp string");
    return Timestamp::from_iso(jv.get_string());
}

} // namespace tradestate
