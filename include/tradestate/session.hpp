// tradestate — the whole state of a trading session, in the seed's layout:
//
//   {"timestamp": ..., "trading_mode": "paper", "iteration": 25,
//    "portfolio": {...}, "configuration": {...},
//    "market_analysis": {...},      <- when present
//    "runner": {...}}               <- the runner's own data (RNG, clock, market)
//
// Unknown top-level members are kept and written back.
#pragma once

#include <tradestate/configuration.hpp>
#include <tradestate/detail/json_reader.hpp>
#include <tradestate/portfolio.hpp>
#include <tradestate/timestamp.hpp>

#include <boost/json/object.hpp>
#include <boost/json/value.hpp>
#include <boost/json/value_from.hpp>
#include <boost/json/value_to.hpp>

#include <cstdint>
#include <string>

namespace tradestate {

struct SessionState {
    Timestamp timestamp;                 ///< when this state was taken
    std::string trading_mode = "paper";  ///< "paper" or "live"
    std::int64_t iteration = 0;          ///< monitoring-loop iteration
    Portfolio portfolio;
    Configuration configuration;
    boost::json::value market_analysis;  ///< free-form; null = absent
    boost::json::object runner;          ///< the runner's extra data (RNG state, simulated clock, market)
    boost::json::object extra;           ///< unknown members, kept verbatim

    bool operator==(const SessionState&) const = default;

    static SessionState from_json(const boost::json::value& v, const std::string& path) {
        detail::ObjectReader r(v, path);
        SessionState s;
        s.timestamp = r.required<Timestamp>("timestamp");
        s.trading_mode = r.optional<std::string>("trading_mode", "paper");
        if (s.trading_mode != "paper" && s.trading_mode != "live")
            throw Error(errc::schema, r.child("trading_mode") + ": expected \"paper\" or \"live\", found \"" +
                                          s.trading_mode + "\"");
        s.iteration = r.required<std::int64_t>("iteration");
        if (s.iteration < 0) throw Error(errc::schema, r.child("iteration") + ": must not be negative");
        const auto* pf = r.find("portfolio");
        if (!pf) throw Error(errc::schema, r.child("portfolio") + ": missing required field (expected an object)");
        s.portfolio = Portfolio::from_json(*pf, r.child("portfolio"));
        if (const auto* c = r.find("configuration")) s.configuration = Configuration::from_json(*c, r.child("configuration"));
        else detail::load_warnings().push_back(r.child("configuration") + ": missing, using defaults");
        if (const auto* m = r.find("market_analysis")) s.market_analysis = *m;
        if (const auto* run = r.find("runner")) {
            if (!run->is_object()) detail::type_error(r.child("runner"), "an object", *run);
            s.runner = run->get_object();
        }
        s.extra = r.rest();
        return s;
    }
};

inline void tag_invoke(const boost::json::value_from_tag&, boost::json::value& jv, const SessionState& s) {
    boost::json::object o(jv.storage()); // one allocator for the whole document
    o["timestamp"] = boost::json::value_from(s.timestamp, o.storage());
    o["trading_mode"] = s.trading_mode;
    o["iteration"] = s.iteration;
    o["portfolio"] = boost::json::value_from(s.portfolio, o.storage());
    o["configuration"] = boost::json::value_from(s.configuration, o.storage());
    if (!s.market_analysis.is_null()) o["market_analysis"] = s.market_analysis;
    if (!s.runner.empty()) o["runner"] = s.runner;
    detail::append_extra(o, s.extra);
    jv = std::move(o);
}

inline SessionState tag_invoke(const boost::json::value_to_tag<SessionState>&, const boost::json::value& jv) {
    return SessionState::from_json(jv, "$");
}

/// The derived documents the seed wrote beside its main file, for dashboards
/// and other readers: "shared_portfolio_state" (positions, cash, trading
/// mode, timestamp) and "current_state" (trading day, performance metrics,
/// trade history). Found by StatePersister through ADL.
[[nodiscard]] inline boost::json::object tradestate_views(const SessionState& s, boost::json::storage_ptr sp = {}) {
    boost::json::object shared(sp);
    shared["timestamp"] = boost::json::value_from(s.timestamp, sp);
    shared["trading_mode"] = s.trading_mode;
    shared["cash"] = boost::json::value_from(s.portfolio.cash(), sp);
    boost::json::object positions(sp);
    positions.reserve(s.portfolio.positions().size());
    for (const auto& [sym, p] : s.portfolio.positions()) positions.emplace(sym, boost::json::value_from(p, sp));
    shared["positions"] = std::move(positions);
    shared["iteration"] = s.iteration;

    const auto& pf = s.portfolio;
    std::int64_t wins = 0;
    for (const auto& t : pf.trade_history())
        if (t.pnl - t.charges > Money{}) ++wins;
    boost::json::object perf(sp);
    perf["initial_cash"] = boost::json::value_from(pf.initial_cash(), sp);
    perf["cash"] = boost::json::value_from(pf.cash(), sp);
    perf["realized_pnl"] = boost::json::value_from(pf.total_pnl(), sp);
    perf["total_charges"] = boost::json::value_from(pf.total_charges(), sp);
    perf["net_realized_pnl"] = boost::json::value_from(pf.total_pnl() - pf.total_charges(), sp);
    perf["closed_trades"] = static_cast<std::int64_t>(pf.trade_history().size());
    perf["winning_trades"] = wins;
    perf["open_positions"] = static_cast<std::int64_t>(pf.positions().size());
    perf["trades_count"] = pf.trades_count();

    boost::json::object current(sp);
    const int day = s.timestamp.ist_date();
    char buf[16];
    std::snprintf(buf, sizeof buf, "%04d-%02d-%02d", day / 10000, day / 100 % 100, day % 100);
    current["trading_day"] = buf;
    current["timestamp"] = boost::json::value_from(s.timestamp, sp);
    current["iteration"] = s.iteration;
    current["performance"] = std::move(perf);
    boost::json::array hist(sp);
    hist.reserve(pf.trade_history().size());
    for (const auto& t : pf.trade_history()) hist.push_back(boost::json::value_from(t, sp));
    current["trade_history"] = std::move(hist);

    boost::json::object views(sp);
    views["shared_portfolio_state"] = std::move(shared);
    views["current_state"] = std::move(current);
    return views;
}

} // namespace tradestate
