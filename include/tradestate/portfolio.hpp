// tradestate — a portfolio: cash, open positions, closed trades, exact P&L.
//
// The money invariant, kept by every operation and checked by `reconcile()`:
//
//     cash == initial_cash + total_pnl − total_charges − Σ open_cost(position)
//
// where total_pnl is the gross realized P&L of closed trades, total_charges
// all brokerage and charges paid, and a short's open cost is negative (the
// premium received). All of it is integer paise.
//
// JSON layout (the seed's "portfolio" object): initial_cash, cash, positions
// (object keyed by symbol), trades_count, total_pnl; additions:
// total_charges, trade_history. Unknown members are kept.
#pragma once

#include <tradestate/detail/json_reader.hpp>
#include <tradestate/money.hpp>
#include <tradestate/position.hpp>

#include <boost/json/array.hpp>
#include <boost/json/object.hpp>
#include <boost/json/value.hpp>
#include <boost/json/value_from.hpp>
#include <boost/json/value_to.hpp>

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace tradestate {

class Portfolio {
public:
    Portfolio() = default;
    explicit Portfolio(Money initial_cash) : initial_cash_(initial_cash), cash_(initial_cash) {}

    [[nodiscard]] Money initial_cash() const noexcept { return initial_cash_; }
    [[nodiscard]] Money cash() const noexcept { return cash_; }
    [[nodiscard]] Money total_pnl() const noexcept { return total_pnl_; }           ///< realized, gross
    [[nodiscard]] Money total_charges() const noexcept { return total_charges_; }
    /// Number of orders executed (every open and every close).
    [[nodiscard]] std::int64_t trades_count() const noexcept { return trades_count_; }
    [[nodiscard]] const std::map<std::string, Position>& positions() const noexcept { return positions_; }
    [[nodiscard]] const std::vector<Trade>& trade_history() const noexcept { return history_; }
    [[nodiscard]] const boost::json::object& extra() const noexcept { return extra_; }
    boost::json::object& extra() noexcept { return extra_; }

    [[nodiscard]] bool has(const std::string& symbol) const { return positions_.count(symbol) != 0; }

    /// Open `p`, paying its cost plus `charges`. Refuses a symbol that is
    /// already open, a non-positive quantity, and a long that cash can't pay.
    void open(Position p, Money charges = {}) {
        if (p.symbol.empty()) throw Error(Errc::invalid_argument, "cannot open a position without a symbol");
        if (p.shares <= 0) throw Error(Errc::invalid_argument, "cannot open " + p.symbol + ": quantity must be positive");
        if (charges < Money{}) throw Error(Errc::invalid_argument, "charges must not be negative");
        if (has(p.symbol)) throw Error(Errc::invalid_argument, "a position in " + p.symbol + " is already open");
        const Money cost = p.open_cost() + charges;
        if (cost > cash_)
            throw Error(Errc::invalid_argument, "cannot open " + p.symbol + ": needs " + cost.format() + ", cash is " +
                                                    cash_.format());
        cash_ -= cost;
        total_charges_ += charges;
        ++trades_count_;
        positions_.emplace(p.symbol, std::move(p));
    }

    /// Close the position in `symbol` at `exit_price`, paying `charges`.
    Trade close(const std::string& symbol, Money exit_price, Timestamp exit_time, std::string reason, Money charges = {}) {
        auto it = positions_.find(symbol);
        if (it == positions_.end()) throw Error(Errc::not_found, "no open position in " + symbol);
        if (charges < Money{}) throw Error(Errc::invalid_argument, "charges must not be negative");
        const Position& p = it->second;
        Trade t;
        t.symbol = p.symbol;
        t.side = p.side;
        t.shares = p.shares;
        t.entry_price = p.entry_price;
        t.exit_price = exit_price;
        t.entry_time = p.entry_time;
        t.exit_time = exit_time;
        t.pnl = p.unrealized_pnl(exit_price);
        t.charges = charges;
        t.strategy = p.strategy;
        t.reason = std::move(reason);
        cash_ += exit_price * (p.shares * sign(p.side));
        cash_ -= charges;
        total_pnl_ += t.pnl;
        total_charges_ += charges;
        ++trades_count_;
        positions_.erase(it);
        history_.push_back(t);
        return t;
    }

    /// Money paid in (positive) or taken out (negative): cash and
    /// initial_cash move together, so the money invariant still holds.
    /// Refuses a withdrawal larger than the cash.
    void deposit(Money amount) {
        if (cash_ + amount < Money{})
            throw Error(Errc::invalid_argument, "a withdrawal of " + (Money{} - amount).format() + " exceeds cash " +
                                                    cash_.format());
        cash_ += amount;
        initial_cash_ += amount;
    }

    /// Σ open cost of the open positions.
    [[nodiscard]] Money open_cost() const {
        Money m;
        for (const auto& [_, p] : positions_) m += p.open_cost();
        return m;
    }

    /// Cash the invariant expects, and the difference found (0 when exact).
    [[nodiscard]] Money expected_cash() const { return initial_cash_ + total_pnl_ - total_charges_ - open_cost(); }
    [[nodiscard]] Money reconcile() const { return cash_ - expected_cash(); }

    /// Cash plus the open positions valued at `price_of(symbol)` (entry price if it returns nullopt).
    [[nodiscard]] Money total_value(const std::function<std::optional<Money>(const std::string&)>& price_of = {}) const {
        Money v = cash_;
        for (const auto& [sym, p] : positions_) {
            Money px = p.entry_price;
            if (price_of)
                if (auto q = price_of(sym)) px = *q;
            v += px * (p.shares * sign(p.side));
        }
        return v;
    }

    bool operator==(const Portfolio&) const = default;

    static Portfolio from_json(const boost::json::value& v, const std::string& path) {
        detail::ObjectReader r(v, path);
        Portfolio pf;
        pf.initial_cash_ = r.required<Money>("initial_cash");
        pf.cash_ = r.required<Money>("cash");
        if (const auto* pos = r.find("positions")) {
            const auto ppath = r.child("positions");
            if (!pos->is_object()) detail::type_error(ppath, "an object keyed by symbol", *pos);
            for (const auto& kv : pos->get_object()) {
                std::string sym(kv.key());
                if (sym.empty()) throw Error(Errc::schema, ppath + ": empty symbol");
                pf.positions_.emplace(sym, Position::from_json(kv.value(), ppath + "." + sym, sym));
            }
        } else {
            detail::load_warnings().push_back(r.child("positions") + ": missing, no open positions");
        }
        pf.trades_count_ = r.optional<std::int64_t>("trades_count", 0);
        pf.total_pnl_ = r.optional<Money>("total_pnl", Money{});
        pf.total_charges_ = r.optional<Money>("total_charges", Money{}, false);
        if (const auto* h = r.find("trade_history")) {
            const auto hpath = r.child("trade_history");
            if (!h->is_array()) detail::type_error(hpath, "an array", *h);
            std::size_t i = 0;
            pf.history_.reserve(h->get_array().size());
            for (const auto& t : h->get_array()) pf.history_.push_back(Trade::from_json(t, hpath + "[" + std::to_string(i++) + "]"));
        }
        if (pf.trades_count_ < 0) throw Error(Errc::schema, r.child("trades_count") + ": must not be negative");
        pf.extra_ = r.rest();
        return pf;
    }

private:
    friend void tag_invoke(const boost::json::value_from_tag&, boost::json::value& jv, const Portfolio& pf);

    Money initial_cash_;
    Money cash_;
    Money total_pnl_;
    Money total_charges_;
    std::int64_t trades_count_ = 0;
    std::map<std::string, Position> positions_;
    std::vector<Trade> history_;
    boost::json::object extra_;
};

inline void tag_invoke(const boost::json::value_from_tag&, boost::json::value& jv, const Portfolio& pf) {
    boost::json::object o(jv.storage()); // one allocator for the whole document
    o["initial_cash"] = boost::json::value_from(pf.initial_cash_, o.storage());
    o["cash"] = boost::json::value_from(pf.cash_, o.storage());
    boost::json::object pos(o.storage());
    pos.reserve(pf.positions_.size());
    for (const auto& [sym, p] : pf.positions_) pos.emplace(sym, boost::json::value_from(p, o.storage()));
    o["positions"] = std::move(pos);
    o["trades_count"] = pf.trades_count_;
    o["total_pnl"] = boost::json::value_from(pf.total_pnl_, o.storage());
    o["total_charges"] = boost::json::value_from(pf.total_charges_, o.storage());
    boost::json::array hist(o.storage());
    hist.reserve(pf.history_.size());
    for (const auto& t : pf.history_) hist.push_back(boost::json::value_from(t, o.storage()));
    o["trade_history"] = std::move(hist);
    detail::append_extra(o, pf.extra_);
    jv = std::move(o);
}

inline Portfolio tag_invoke(const boost::json::value_to_tag<Portfolio>&, const boost::json::value& jv) {
    return Portfolio::from_json(jv, "$");
}

} // namespace tradestate
