// tradestate — the whole state of a trading session, in the seed's layout:
//
//   {"timestamp": ..., "trading_mode": "paper", "iteration": 25,
//    "portfolio": {...}, "configuration": {...},
//    "market_analysis": {...},      <- when present
//    "runner": {...}}               <- the runner's own data (RNG, clock, market)
//
// Unknown top-level members are kept and written back.
//
// Beside the type live its hooks: `tradestate_views` (the seed's derived
// files) and the journaled operations `session_op::open/close/cash/step/
// configure` with `tradestate_apply`, through which Session<SessionState>
// changes and replays the state (replay.hpp).
#pragma once

#include <tradestate/session_settings.hpp>
#include <tradestate/detail/json_reader.hpp>
#include <tradestate/error.hpp>
#include <tradestate/money.hpp>
#include <tradestate/portfolio.hpp>
#include <tradestate/position.hpp>
#include <tradestate/timestamp.hpp>

#include <boost/json/object.hpp>
#include <boost/json/value.hpp>
#include <boost/json/value_from.hpp>
#include <boost/json/value_to.hpp>

#include <cstdint>
#include <string>
#include <utility>

namespace tradestate {

struct SessionState {
    Timestamp timestamp;                 ///< when this state was taken
    std::string trading_mode = "paper";  ///< "paper" or "live"
    std::int64_t iteration = 0;          ///< monitoring-loop iteration
    Portfolio portfolio;
    SessionSettings settings; ///< saved under "configuration", the seed's key
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
            throw Error(Errc::schema, r.child("trading_mode") + ": expected \"paper\" or \"live\", found \"" +
                                          s.trading_mode + "\"");
        s.iteration = r.required<std::int64_t>("iteration");
        if (s.iteration < 0) throw Error(Errc::schema, r.child("iteration") + ": must not be negative");
        const auto* pf = r.find("portfolio");
        if (!pf) throw Error(Errc::schema, r.child("portfolio") + ": missing required field (expected an object)");
        s.portfolio = Portfolio::from_json(*pf, r.child("portfolio"));
        if (const auto* c = r.find("configuration")) s.settings = SessionSettings::from_json(*c, r.child("configuration"));
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
    o["configuration"] = boost::json::value_from(s.settings, o.storage());
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
    // The market day: the runner's `trading_day` when it keeps one (its
    // market clock may not be the wall clock), else the IST date of the state.
    if (const auto* td = s.runner.if_contains("trading_day"); td && td->is_string()) {
        current["trading_day"] = td->get_string();
    } else {
        current["trading_day"] = s.timestamp.ist_day();
    }
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

// ------------------------------------------------------------ operations

/// Builders for SessionState's journaled operations (compact JSON objects;
/// amounts in integer paise). docs/journal.md lists their members.
namespace session_op {

/// A position opened, paying its cost and `charges`.
[[nodiscard]] inline boost::json::object open(const Position& p, Money charges) {
    boost::json::object o;
    o["op"] = "open";
    o["symbol"] = p.symbol;
    o["position"] = boost::json::value_from(p);
    o["charges_paise"] = charges.paise();
    return o;
}

/// A position closed at `exit_price`.
[[nodiscard]] inline boost::json::object close(const std::string& symbol, Money exit_price, Timestamp exit_time,
                                               const std::string& reason, Money charges) {
    boost::json::object o;
    o["op"] = "close";
    o["symbol"] = symbol;
    o["exit_price_paise"] = exit_price.paise();
    o["exit_time"] = exit_time.to_iso();
    o["reason"] = reason;
    o["charges_paise"] = charges.paise();
    return o;
}

/// Money paid in (positive) or taken out (negative) of the account
/// (Portfolio::deposit: cash and initial_cash move together).
[[nodiscard]] inline boost::json::object cash(Money amount, const std::string& reason) {
    boost::json::object o;
    o["op"] = "cash";
    o["amount_paise"] = amount.paise();
    o["reason"] = reason;
    return o;
}

/// What turns the runner object `before` into `after`, as a JSON merge
/// patch (RFC 7386): the members that changed, objects compared member by
/// member, a removed member as null. Empty when nothing changed. A runner
/// object therefore holds no null members (a patch cannot set one).
[[nodiscard]] inline boost::json::object runner_patch(const boost::json::object& before,
                                                      const boost::json::object& after) {
    boost::json::object patch;
    for (const auto& m : before)
        if (!after.contains(m.key())) patch[m.key()] = nullptr;
    for (const auto& m : after) {
        const auto* old = before.if_contains(m.key());
        if (old && *old == m.value()) continue;
        if (old && old->is_object() && m.value().is_object()) {
            auto inner = runner_patch(old->get_object(), m.value().get_object());
            if (!inner.empty()) patch[m.key()] = std::move(inner);
            continue;
        }
        patch[m.key()] = m.value();
    }
    return patch;
}

/// Apply a JSON merge patch (RFC 7386) to `target`: a null member removes
/// that member, an object member is merged into the member of that name when
/// it is an object too, anything else replaces it.
inline void apply_runner_patch(boost::json::object& target, const boost::json::object& patch) {
    for (const auto& m : patch) {
        if (m.value().is_null()) {
            target.erase(m.key());
        } else if (m.value().is_object()) {
            auto& slot = target[m.key()];
            if (!slot.is_object()) slot = boost::json::object();
            apply_runner_patch(slot.get_object(), m.value().get_object());
        } else {
            target[m.key()] = m.value();
        }
    }
}

/// The end of one iteration: counter, timestamp, what changed in the
/// runner's data (a merge patch, see `runner_patch`; a complete runner
/// object is a valid patch too) and the market analysis (null: none), so
/// that replay restores the whole session.
[[nodiscard]] inline boost::json::object step(std::int64_t iteration, Timestamp timestamp, boost::json::object runner,
                                              boost::json::value market_analysis) {
    boost::json::object o;
    o["op"] = "step";
    o["iteration"] = iteration;
    o["timestamp"] = timestamp.to_iso();
    o["runner"] = std::move(runner);
    if (!market_analysis.is_null()) o["market_analysis"] = std::move(market_analysis);
    return o;
}

/// New risk settings (and trading mode) for the session.
[[nodiscard]] inline boost::json::object configure(const SessionSettings& c, const std::string& trading_mode) {
    boost::json::object o;
    o["op"] = "configure";
    o["configuration"] = boost::json::value_from(c);
    o["trading_mode"] = trading_mode;
    return o;
}

} // namespace session_op

/// Apply one of the operations above to `s` (`where` names the record in errors).
inline void tradestate_apply(SessionState& s, const boost::json::object& op, const std::string& where) {
    auto money = [&](const char* key) {
        const auto* v = op.if_contains(key);
        if (!v || !v->is_int64()) throw Error(Errc::schema, where + ": \"" + key + "\" must be an integer (paise)");
        return Money::from_paise(v->get_int64());
    };
    auto text = [&](const char* key) {
        const auto* v = op.if_contains(key);
        if (!v || !v->is_string()) throw Error(Errc::schema, where + ": \"" + key + "\" must be a string");
        return std::string(v->get_string());
    };
    const std::string kind = text("op");
    if (kind == "open") {
        const std::string sym = text("symbol");
        const auto* pv = op.if_contains("position");
        if (!pv) throw Error(Errc::schema, where + ": \"position\" is missing");
        s.portfolio.open(Position::from_json(*pv, where + ".position", sym), money("charges_paise"));
    } else if (kind == "close") {
        const auto t = Timestamp::from_iso(text("exit_time"));
        (void)s.portfolio.close(text("symbol"), money("exit_price_paise"), t, text("reason"), money("charges_paise"));
    } else if (kind == "cash") {
        const Money amount = money("amount_paise");
        (void)text("reason");
        s.portfolio.deposit(amount);
    } else if (kind == "step") {
        const auto* it = op.if_contains("iteration");
        if (!it || !it->is_int64() || it->get_int64() < 0)
            throw Error(Errc::schema, where + ": \"iteration\" must be a non-negative integer");
        const auto* run = op.if_contains("runner");
        if (!run || !run->is_object()) throw Error(Errc::schema, where + ": \"runner\" must be an object");
        s.timestamp = Timestamp::from_iso(text("timestamp"));
        s.iteration = it->get_int64();
        session_op::apply_runner_patch(s.runner, run->get_object());
        if (const auto* m = op.if_contains("market_analysis")) s.market_analysis = *m;
    } else if (kind == "configure") {
        const auto* c = op.if_contains("configuration");
        if (!c) throw Error(Errc::schema, where + ": \"configuration\" is missing");
        const std::string mode = text("trading_mode");
        if (mode != "paper" && mode != "live")
            throw Error(Errc::schema, where + ": \"trading_mode\" must be \"paper\" or \"live\"");
        s.settings = SessionSettings::from_json(*c, where + ".configuration");
        s.trading_mode = mode;
    } else {
        throw Error(Errc::schema, where + ": unknown operation \"" + kind + "\"");
    }
}

/// The iteration counter: how a loss is told in the runner's terms.
[[nodiscard]] inline std::int64_t tradestate_progress(const SessionState& s) noexcept { return s.iteration; }

} // namespace tradestate
