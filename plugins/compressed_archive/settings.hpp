// The compressed-archive plugin's settings ([persistence.compressed-archive])
// and the day arithmetic its archiving and retention use. Private to the plugin.
#pragma once

#include <tradestate/error.hpp>

#include <boost/json/object.hpp>
#include <boost/json/value.hpp>
#include <zstd.h>

#include <chrono>
#include <cstdint>
#include <string>

namespace tradestate::compressed_archive {

/// "YYYY-MM-DD" from the start of an ISO 8601 timestamp, or empty.
inline std::string day_of(const std::string& saved_at) {
    if (saved_at.size() < 10) return {};
    for (std::size_t i = 0; i < 10; ++i) {
        const char c = saved_at[i];
        if (i == 4 || i == 7) {
            if (c != '-') return {};
        } else if (c < '0' || c > '9') {
            return {};
        }
    }
    return saved_at.substr(0, 10);
}

/// Days since the epoch of "YYYY-MM-DD".
inline long day_number(const std::string& d) {
    using namespace std::chrono;
    const int y = std::stoi(d.substr(0, 4));
    const unsigned m = static_cast<unsigned>(std::stoi(d.substr(5, 2)));
    const unsigned dd = static_cast<unsigned>(std::stoi(d.substr(8, 2)));
    return static_cast<long>(sys_days(year{y} / month{m} / day{dd}).time_since_epoch().count());
}

/// [persistence.compressed-archive] (docs/format-compressed-archive.md).
struct Settings {
    int compression_level = 3;
    bool archive_daily = true;
    std::int64_t max_live_records = 5000;
    std::int64_t keep_every_nth = 10;
    std::int64_t keep_archive_days = 90;
};

inline Settings parse_settings(const boost::json::object& o) {
    Settings s;
    auto integer = [](const boost::json::value& v, const std::string& key, std::int64_t lo, std::int64_t hi) {
        std::int64_t i = 0;
        if (v.is_int64()) i = v.get_int64();
        else if (v.is_uint64() && v.get_uint64() <= static_cast<std::uint64_t>(INT64_MAX))
            i = static_cast<std::int64_t>(v.get_uint64());
        else
            throw Error(Errc::config, "[persistence.compressed-archive] " + key + " must be an integer");
        if (i < lo || i > hi)
            throw Error(Errc::config, "[persistence.compressed-archive] " + key + " = " + std::to_string(i) +
                                          " is out of range (" + std::to_string(lo) + " to " + std::to_string(hi) + ")");
        return i;
    };
    for (const auto& kv : o) {
        const std::string key(kv.key());
        if (key == "compression_level")
            s.compression_level = static_cast<int>(integer(kv.value(), key, ZSTD_minCLevel(), ZSTD_maxCLevel()));
        else if (key == "archive_daily") {
            if (!kv.value().is_bool())
                throw Error(Errc::config, "[persistence.compressed-archive] archive_daily must be true or false");
            s.archive_daily = kv.value().get_bool();
        } else if (key == "max_live_records")
            s.max_live_records = integer(kv.value(), key, 0, INT64_MAX);
        else if (key == "keep_every_nth")
            s.keep_every_nth = integer(kv.value(), key, 1, INT64_MAX);
        else if (key == "keep_archive_days")
            s.keep_archive_days = integer(kv.value(), key, 0, 1000000);
        else
            throw Error(Errc::config, "unknown setting [persistence.compressed-archive] " + key +
                                          " (known: compression_level, archive_daily, max_live_records, "
                                          "keep_every_nth, keep_archive_days)");
    }
    return s;
}

} // namespace tradestate::compressed_archive
