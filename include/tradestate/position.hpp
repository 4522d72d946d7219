// tradestate — an open position and a closed trade, with their JSON mapping.
//
// JSON layout (the seed's): positions live in an object keyed by symbol,
//   "NIFTY25SEP24650CE": {"shares": 75, "entry_price": 220.42,
//     "stop_loss": 207.19, "take_profit": 246.87,
//     "entry_time": "2025-09-29T11:49:10.204428", "strategy": "straddle",
//     "sector": "F&O"}
// Additions (written only when they carry information, so seed files and
// ours stay alike): "lot_size", "side" ("short"; long is the default).
// Unknown members are kept and written back.
#pragma once

#include <tradestate/detail/json_reader.hpp>
#include <tradestate/money.hpp>
#include <tradestate/timestamp.hpp>

#include <boost/json/object.hpp>
#include <boost/json/value.hpp>
#include <boost/json/value_from.hpp>
#include <boost/json/value_to.hpp>

#include <cstdint>
#include <optional>
#include <string>
#include <utility>

namespace tradestate {

enum class Side { long_, short_ };

[[nodiscard]] inline constexpr const char* to_string(Side s) noexcept { return s == Side::long_ ? "long" : "short"; }

/// +1 for long, -1 for short: the sign of a position's cash flows.
[[nodiscard]] inline constexpr std::int64_t sign(Side s) noexcept { return s == Side::long_ ? 1 : -1; }

struct Position {
    std::string symbol;                 ///< NSE form, e.g. NIFTY25SEP24650CE (the key in JSON)
    std::int64_t shares = 0;            ///< quantity in units (lots × lot_size), always > 0
    std::int64_t lot_size = 0;          ///< units per lot; 0 = unknown (seed files)
    Side side = Side::long_;
    Money entry_price;                  ///< per unit
    std::optional<Money> stop_loss;     ///< per unit
    std::optional<Money> take_profit;   ///< per unit
    Timestamp entry_time;
    std::string strategy;
    std::string sector = "F&O";
    boost::json::object extra;          ///< members this version does not know, kept verbatim

    /// Number of lots, when the lot size is known.
    [[nodiscard]] std::int64_t lots() const noexcept { return lot_size > 0 ? shares / lot_size : 0; }
    /// Cash paid to open (negative for a short: premium received).
    [[nodiscard]] Money open_cost() const { return entry_price * (shares * sign(side)); }
    /// Unrealized P&L at `price`.
    [[nodiscard]] Money unrealized_pnl(Money price) const { return (price - entry_price) * (shares * sign(side)); }

    bool operator==(const Position&) const = default;

    /// Read one position; `path` is its JSON path, `symbol` its key.
    static Position from_json(const boost::json::value& v, const std::string& path, std::string symbol) {
        detail::ObjectReader r(v, path);
        Position p;
        p.symbol = std::move(symbol);
        p.shares = r.required<std::int64_t>("shares");
        if (p.shares <= 0)
            throw Error(Errc::schema, r.child("shares") + ": quantity must be positive, found " + std::to_string(p.shares) +
                                          " (a short position has \"side\": \"short\")");
        p.lot_size = r.optional<std::int64_t>("lot_size", 0, false);
        if (p.lot_size < 0) throw Error(Errc::schema, r.child("lot_size") + ": must not be negative");
        const auto side = r.optional<std::string>("side", "long", false);
        if (side == "long") p.side = Side::long_;
        else if (side == "short") p.side = Side::short_;
        else throw Error(Errc::schema, r.child("side") + ": expected \"long\" or \"short\", found \"" + side + "\"");
        p.entry_price = r.required<Money>("entry_price");
        if (p.entry_price < Money{}) throw Error(Errc::schema, r.child("entry_price") + ": must not be negative");
        p.stop_loss = r.maybe<Money>("stop_loss", true);
        p.take_profit = r.maybe<Money>("take_profit", true);
        if (const auto t = r.maybe<Timestamp>("entry_time", true)) p.entry_time = *t;
        p.strategy = r.optional<std::string>("strategy", "unknown");
        p.sector = r.optional<std::string>("sector", "F&O");
        p.extra = r.rest();
        return p;
    }
};

inline void tag_invoke(const boost::json::value_from_tag&, boost::json::value& jv, const Position& p) {
    boost::json::object o(jv.storage()); // one allocator for the whole document
    o.reserve(12);
    o["shares"] = p.shares;
    o["entry_price"] = boost::json::value_from(p.entry_price, o.storage());
    if (p.stop_loss) o["stop_loss"] = boost::json::value_from(*p.stop_loss, o.storage());
    if (p.take_profit) o["take_profit"] = boost::json::value_from(*p.take_profit, o.storage());
    o["entry_time"] = boost::json::value_from(p.entry_time, o.storage());
    o["strategy"] = p.strategy;
    o["sector"] = p.sector;
    if (p.lot_size > 0) o["lot_size"] = p.lot_size;
    if (p.side == Side::short_) o["side"] = "short";
    detail::append_extra(o, p.extra);
    jv = std::move(o);
}

/// A standalone position object; its symbol is read from a "symbol" member if present.
inline Position tag_invoke(const boost::json::value_to_tag<Position>&, const boost::json::value& jv) {
    std::string sym;
    if (jv.is_object())
        if (const auto* s = jv.get_object().if_contains("symbol"); s && s->is_string()) sym = std::string(s->get_string());
    auto p = Position::from_json(jv, "$", sym);
    p.extra.erase("symbol");
    return p;
}

/// A closed trade (an addition to the seed's format: `portfolio.trade_history`).
struct Trade {
    std::string symbol;
    Side side = Side::long_;
    std::int64_t shares = 0;
    Money entry_price;
    Money exit_price;
    Timestamp entry_time;
    Timestamp exit_time;
    Money pnl;       ///< gross realized P&L of this trade
    Money charges;   ///< brokerage and charges on exit
    std::string strategy;
    std::string reason; ///< "stop_loss", "take_profit", "time_exit", "expiry", "manual", ...
    boost::json::object extra;

    bool operator==(const Trade&) const = default;

    static Trade from_json(const boost::json::value& v, const std::string& path) {
        detail::ObjectReader r(v, path);
        Trade t;
        t.symbol = r.required<std::string>("symbol");
        const auto side = r.optional<std::string>("side", "long", false);
        if (side != "long" && side != "short")
            throw Error(Errc::schema, r.child("side") + ": expected \"long\" or \"short\", found \"" + side + "\"");
        t.side = side == "short" ? Side::short_ : Side::long_;
        t.shares = r.required<std::int64_t>("shares");
        if (t.shares <= 0) throw Error(Errc::schema, r.child("shares") + ": quantity must be positive");
        t.entry_price = r.required<Money>("entry_price");
        t.exit_price = r.required<Money>("exit_price");
        t.entry_time = r.required<Timestamp>("entry_time");
        t.exit_time = r.required<Timestamp>("exit_time");
        t.pnl = r.required<Money>("pnl");
        t.charges = r.optional<Money>("charges", Money{}, false);
        t.strategy = r.optional<std::string>("strategy", "unknown", false);
        t.reason = r.optional<std::string>("reason", "", false);
        t.extra = r.rest();
        return t;
    }
};

inline void tag_invoke(const boost::json::value_from_tag&, boost::json::value& jv, const Trade& t) {
    boost::json::object o(jv.storage()); // one allocator for the whole document
    o.reserve(12);
    o["symbol"] = t.symbol;
    o["side"] = to_string(t.side);
    o["shares"] = t.shares;
    o["entry_price"] = boost::json::value_from(t.entry_price, o.storage());
    o["exit_price"] = boost::json::value_from(t.exit_price, o.storage());
    o["entry_time"] = boost::json::value_from(t.entry_time, o.storage());
    o["exit_time"] = boost::json::value_from(t.exit_time, o.storage());
    o["pnl"] = boost::json::value_from(t.pnl, o.storage());
    o["charges"] = boost::json::value_from(t.charges, o.storage());
    o["strategy"] = t.strategy;
    o["reason"] = t.reason;
    detail::append_extra(o, t.extra);
    jv = std::move(o);
}

inline Trade tag_invoke(const boost::json::value_to_tag<Trade>&, const boost::json::value& jv) {
    return Trade::from_json(jv, "$");
}

} // namespace tradestate
