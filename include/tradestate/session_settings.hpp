// tradestate — the risk and loop settings a session runs with, saved in it
// (under "configuration", the seed's key) so that a resumed session keeps
// them. They come from config.toml's [trading] section (`TradingConfig::settings`).
#pragma once

#include <tradestate/detail/json_reader.hpp>
#include <tradestate/money.hpp>

#include <boost/json/object.hpp>
#include <boost/json/value.hpp>
#include <boost/json/value_from.hpp>
#include <boost/json/value_to.hpp>

#include <cstdint>
#include <string>
#include <utility>

namespace tradestate {

/// What a session runs with. `Config` is config.toml; these are the part of
/// its [trading] section that a session saves and keeps on resume.
struct SessionSettings {
    double min_confidence = 0.65;                        ///< signals below this are ignored
    std::int64_t check_interval = 300;                   ///< seconds between iterations
    std::int64_t max_positions = 5;                      ///< open positions (legs) at most
    Money capital_per_trade = Money::from_rupees(200000); ///< capital one strategy may commit
    boost::json::object extra;                           ///< further settings (runner's), kept verbatim

    bool operator==(const SessionSettings&) const = default;

    static SessionSettings from_json(const boost::json::value& v, const std::string& path) {
        detail::ObjectReader r(v, path);
        SessionSettings c;
        c.min_confidence = r.optional<double>("min_confidence", c.min_confidence);
        c.check_interval = r.optional<std::int64_t>("check_interval", c.check_interval);
        c.max_positions = r.optional<std::int64_t>("max_positions", c.max_positions);
        c.capital_per_trade = r.optional<Money>("capital_per_trade", c.capital_per_trade);
        if (c.min_confidence < 0 || c.min_confidence > 1)
            throw Error(Errc::schema, r.child("min_confidence") + ": must be between 0 and 1");
        if (c.check_interval < 0) throw Error(Errc::schema, r.child("check_interval") + ": must not be negative");
        if (c.max_positions < 0) throw Error(Errc::schema, r.child("max_positions") + ": must not be negative");
        c.extra = r.rest();
        return c;
    }
};

inline void tag_invoke(const boost::json::value_from_tag&, boost::json::value& jv, const SessionSettings& c) {
    boost::json::object o(jv.storage()); // one allocator for the whole document
    o["min_confidence"] = c.min_confidence;
    o["check_interval"] = c.check_interval;
    o["max_positions"] = c.max_positions;
    // The seed writes capital_per_trade as an integer when it is whole rupees.
    if (c.capital_per_trade.paise() % 100 == 0) o["capital_per_trade"] = c.capital_per_trade.paise() / 100;
    else o["capital_per_trade"] = boost::json::value_from(c.capital_per_trade, o.storage());
    detail::append_extra(o, c.extra);
    jv = std::move(o);
}

inline SessionSettings tag_invoke(const boost::json::value_to_tag<SessionSettings>&, const boost::json::value& jv) {
    return SessionSettings::from_json(jv, "$");
}

/// The name before 0.4.
using Configuration [[deprecated("renamed tradestate::SessionSettings")]] = SessionSettings;

} // namespace tradestate
