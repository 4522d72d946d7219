// tradestate dashboard — turning a SessionState (and the store's session
// list) into what the page shows. Header-only; used by the runner and by
// fno_dashboard so that both serve the same numbers.
#pragma once

#include <tradestate_dashboard/dashboard.hpp>

#include <tradestate/backend.hpp>
#include <tradestate/money.hpp>
#include <tradestate/session_state.hpp>

#include <boost/json/value_to.hpp>

#include <algorithm>
#include <charconv>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

namespace tradestate::dashboard {

/// Current price of a symbol, or nullopt when unknown (then the entry price is used).
using PriceLookup = std::function<std::optional<Money>(const std::string& symbol)>;

/// Last prices a runner left in the saved state: `runner.last_prices`
/// (`{"SYMBOL": 123.45, ...}`) or `runner.market.prices`, whichever exists.
[[nodiscard]] inline std::optional<Money> saved_price(const SessionState& s, const std::string& symbol) {
    const boost::json::object* prices = nullptr;
    if (const auto* lp = s.runner.if_contains("last_prices"); lp && lp->is_object()) prices = &lp->get_object();
    else if (const auto* m = s.runner.if_contains("market"); m && m->is_object())
        if (const auto* p = m->get_object().if_contains("prices"); p && p->is_object()) prices = &p->get_object();
    if (!prices) return std::nullopt;
    const auto* v = prices->if_contains(symbol);
    if (!v || !v->is_number()) return std::nullopt;
    try {
        return boost::json::value_to<Money>(*v);
    } catch (const std::exception&) {
        return std::nullopt;
    }
}

/// The equity curve a runner left in the saved state, oldest first:
/// `runner.equity` = `{"<iteration>": [unix_us, total_value_paise,
/// pnl_paise, realized_pnl_paise], ...}` (fno_runner keeps at most 240
/// points over the whole session). Malformed points are skipped; empty
/// when there is none. This is how the chart outlives a restart.
[[nodiscard]] inline std::vector<HistoryPoint> saved_history(const SessionState& s) {
    std::vector<HistoryPoint> out;
    const auto* e = s.runner.if_contains("equity");
    if (!e || !e->is_object()) return out;
    for (const auto& m : e->get_object()) {
        const auto key = std::string_view(m.key());
        std::int64_t it = -1;
        const auto [end, ec] = std::from_chars(key.data(), key.data() + key.size(), it);
        if (ec != std::errc() || end != key.data() + key.size() || it < 0 || !m.value().is_array()) continue;
        const auto& a = m.value().get_array();
        if (a.size() < 4 || !std::all_of(a.begin(), a.begin() + 4, [](const auto& x) { return x.is_int64(); }))
            continue;
        out.push_back(HistoryPoint{static_cast<double>(a[0].get_int64()) / 1e6, it, a[1].get_int64(),
                                   a[2].get_int64(), a[3].get_int64()});
    }
    std::sort(out.begin(), out.end(), [](const auto& x, const auto& y) { return x.iteration < y.iteration; });
    return out;
}

/// The page's view of `s`. `price_of` gives current prices (the runner
/// passes its market; fno_dashboard passes nothing and prices saved in the
/// state are used, else entry prices). `last_saved` is the ISO time of
/// the last successful save, empty when unknown.
[[nodiscard]] inline StateView make_view(const SessionState& s, const PriceLookup& price_of = {},
                                         std::string last_saved = {}, std::size_t max_trades = 50) {
    StateView v;
    v.timestamp = s.timestamp.to_iso();
    v.epoch_seconds = static_cast<double>(s.timestamp.micros()) / 1e6;
    v.trading_mode = s.trading_mode;
    v.iteration = s.iteration;
    v.last_saved = std::move(last_saved);
    const auto& pf = s.portfolio;
    v.initial_cash_paise = pf.initial_cash().paise();
    v.cash_paise = pf.cash().paise();
    v.realized_pnl_paise = (pf.total_pnl() - pf.total_charges()).paise();
    v.trades_count = pf.trades_count();

    auto price = [&](const std::string& sym) -> std::optional<Money> {
        if (price_of)
            if (auto p = price_of(sym)) return p;
        return saved_price(s, sym);
    };
    Money total = pf.cash();
    for (const auto& [sym, p] : pf.positions()) {
        const Money last = price(sym).value_or(p.entry_price);
        total += last * (p.shares * sign(p.side));
        PositionRow r;
        r.symbol = sym;
        r.strategy = p.strategy;
        r.quantity = p.shares * sign(p.side);
        if (p.lot_size > 0) r.lots = p.lots();
        r.entry_price_paise = p.entry_price.paise();
        r.last_price_paise = last.paise();
        if (p.stop_loss) r.stop_loss_paise = p.stop_loss->paise();
        if (p.take_profit) r.take_profit_paise = p.take_profit->paise();
        r.unrealized_pnl_paise = p.unrealized_pnl(last).paise();
        r.entry_time = p.entry_time.to_iso();
        v.positions.push_back(std::move(r));
    }
    v.total_value_paise = total.paise();

    const auto& hist = pf.trade_history();
    const std::size_t n = std::min(max_trades, hist.size());
    for (std::size_t i = 0; i < n; ++i) {
        const Trade& t = hist[hist.size() - 1 - i];
        TradeRow r;
        r.time = t.exit_time.to_iso();
        r.side = std::string("close ") + to_string(t.side);
        r.symbol = t.symbol;
        r.strategy = t.strategy;
        r.quantity = t.shares;
        r.price_paise = t.exit_price.paise();
        r.realized_pnl_paise = (t.pnl - t.charges).paise();
        r.reason = t.reason;
        v.trades.push_back(std::move(r));
    }
    return v;
}

[[nodiscard]] inline SessionRow session_row(const SessionInfo& i) {
    SessionRow r;
    r.session = i.session;
    r.saved_at = i.meta.saved_at;
    r.iteration = i.meta.iteration;
    r.positions = i.meta.positions;
    r.cash_paise = i.meta.cash_paise;
    r.sequence = i.sequence;
    r.location = i.location;
    return r;
}

[[nodiscard]] inline std::vector<SessionRow> session_rows(const std::vector<SessionInfo>& infos) {
    std::vector<SessionRow> rows;
    rows.reserve(infos.size());
    for (const auto& i : infos) rows.push_back(session_row(i));
    return rows;
}

} // namespace tradestate::dashboard
