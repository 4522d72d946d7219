// fno_runner — the trading step: exits, strategies, risk, exact cash.
#include <fno_runner/simulation.hpp>

#include <tradestate/timestamp.hpp>

#include <boost/json/array.hpp>
#include <boost/json/value_from.hpp>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <charconv>
#include <cmath>
#include <map>
#include <set>
#include <string_view>
#include <tuple>

namespace fno {

using tradestate::Errc;
using tradestate::Error;
using tradestate::Position;
using tradestate::SessionState;
using tradestate::Side;
using tradestate::Timestamp;

namespace {
constexpr std::int64_t crore = 10'000'000;
__extension__ typedef __int128 i128;

/// round(amount * rate / crore), half away from zero, exact.
std::int64_t per_crore(std::int64_t amount_paise, std::int64_t rate) {
    const i128 num = static_cast<i128>(amount_paise) * rate;
    i128 q = num / crore;
    const i128 r = num % crore;
    if (r * 2 >= crore) ++q;
    return static_cast<std::int64_t>(q);
}

double round2(double v) { return std::round(v * 100.0) / 100.0; }
double round4(double v) { return std::round(v * 10000.0) / 10000.0; }
} // namespace

Money ChargeSchedule::on_order(Money turnover, bool buy) const {
    const std::int64_t t = turnover.paise() < 0 ? -turnover.paise() : turnover.paise();
    const std::int64_t brokerage = brokerage_per_order.paise();
    const std::int64_t txn = per_crore(t, exchange_txn_per_crore);
    const std::int64_t sebi = per_crore(t, sebi_fee_per_crore);
    const std::int64_t stt = buy ? 0 : per_crore(t, stt_sell_per_crore);
    const std::int64_t stamp = buy ? per_crore(t, stamp_buy_per_crore) : 0;
    const std::int64_t gst_base = brokerage + txn + sebi;
    std::int64_t gst = (gst_base * gst_percent) / 100;
    if ((gst_base * gst_percent) % 100 * 2 >= 100) ++gst;
    return Money::from_paise(brokerage + txn + sebi + stt + stamp + gst);
}

Simulation::Simulation(SimulationSettings s, std::shared_ptr<spdlog::logger> log)
    : s_(std::move(s)), market_(s_.market), rng_(s_.seed), log_(log ? std::move(log) : spdlog::default_logger()) {
    ms_ = market_.initial_state();
}

void Simulation::start_fresh(SessionState& s, Money initial_cash) {
    rng_.reseed(s_.seed);
    ms_ = market_.initial_state();
    s.iteration = 0;
    s.portfolio = tradestate::Portfolio(initial_cash);
    s.market_analysis = nullptr;
    store(s);
}

void Simulation::resume(const SessionState& s) {
    const auto& r = s.runner;
    auto it = r.find("market");
    auto rit = r.find("rng");
    if (it == r.end() || rit == r.end()) {
        log_->warn("the saved session has no simulated market (written by another program?): starting the market "
                   "fresh from seed {} and keeping the portfolio",
                   s_.seed);
        rng_.reseed(s_.seed);
        ms_ = market_.initial_state();
        return;
    }
    if (!it->value().is_object()) throw Error(Errc::schema, "runner.market must be an object");
    MarketState ms = MarketState::from_json(it->value().get_object());
    for (const auto& inst : s_.market.instruments)
        if (!ms.u.contains(inst.name)) {
            log_->warn("the saved market has no {}; it starts at its configured spot", inst.name);
            ms.u[inst.name] = UnderlyingState{inst.initial_spot, inst.base_iv, 0.0, inst.initial_spot};
        }
    if (!rit->value().is_array()) throw Error(Errc::schema, "runner.rng must be an array of strings");
    std::vector<std::string> words;
    for (const auto& w : rit->value().get_array()) {
        if (!w.is_string()) throw Error(Errc::schema, "runner.rng must be an array of strings");
        words.emplace_back(w.get_string());
    }
    Rng rng;
    rng.set_state(words);
    ms_ = std::move(ms);
    rng_ = rng;
    if (auto sit = r.find("seed"); sit != r.end() && sit->value().is_string()) {
        // informational: the seed the session was started with
    }
}

void Simulation::store(SessionState& s) const {
    const Timestamp at = now_for_state();
    s.runner = runner_data(s, s.iteration, at, total_value(s.portfolio));
    s.timestamp = at;
}

boost::json::object Simulation::runner_data(const SessionState& s, std::int64_t iteration, Timestamp at,
                                            Money total) const {
    namespace json = boost::json;
    json::object r = s.runner; // keep members other tools may have added
    r["engine"] = "fno_runner";
    r["format"] = 1;
    if (!r.contains("seed")) r["seed"] = std::to_string(s_.seed);
    json::array words;
    for (const auto& w : rng_.state()) words.emplace_back(w);
    r["rng"] = std::move(words);
    r["market"] = ms_.to_json();
    r["sim_clock"] = s_.sim_clock;
    r["trading_day"] = market_time().ist_day(); // the market's day, whatever the wall clock says

    // The marks: what every open position was valued at, so that a reader of
    // the saved state (fno_dashboard) shows the runner's numbers.
    json::object marks;
    for (const auto& [sym, p] : s.portfolio.positions())
        if (auto px = price(sym)) marks[sym] = json::value_from(*px);
    r["last_prices"] = std::move(marks);

    // The equity curve, at most equity_points points over the whole session:
    // the iterations that are multiples of a power-of-two stride, which
    // doubles (dropping every other point) whenever the session outgrows it.
    std::int64_t stride = 1;
    while (iteration / stride > equity_points) stride *= 2;
    json::object curve;
    if (const auto* e = r.if_contains("equity"); e && e->is_object())
        for (const auto& m : e->get_object()) {
            std::int64_t k = -1;
            const auto key = std::string_view(m.key());
            const auto [end, ec] = std::from_chars(key.data(), key.data() + key.size(), k);
            if (ec == std::errc() && end == key.data() + key.size() && k >= 0 && k < iteration && k % stride == 0)
                curve[m.key()] = m.value();
        }
    if (iteration % stride == 0) {
        const Money realized = s.portfolio.total_pnl() - s.portfolio.total_charges();
        curve[std::to_string(iteration)] = json::array{at.micros(), total.paise(),
                                                       (total - s.portfolio.initial_cash()).paise(), realized.paise()};
    }
    r["equity"] = std::move(curve);
    return r;
}

Timestamp Simulation::now_for_state() const { return s_.sim_clock ? market_time() : Timestamp::now(); }

std::optional<Contract> Simulation::contract_of(const std::string& symbol) const {
    try {
        return parse_symbol(symbol, s_.market.names(), s_.market.calendar);
    } catch (const Error& e) {
        if (std::find(warned_symbols_.begin(), warned_symbols_.end(), symbol) == warned_symbols_.end()) {
            warned_symbols_.push_back(symbol);
            log_->warn("{}; the position is kept at its entry price and never exited automatically", e.what());
        }
        return std::nullopt;
    }
}

std::optional<Money> Simulation::price(const std::string& symbol) const {
    auto c = contract_of(symbol);
    if (!c) return std::nullopt;
    return Money::from_paise(market_.premium_paise(ms_, *c));
}

Money Simulation::total_value(const tradestate::Portfolio& pf) const {
    return pf.total_value([this](const std::string& sym) { return price(sym); });
}

StepReport Simulation::step(const SessionState& s, const ApplyOp& apply) {
    StepReport rep;
    rep.iteration = s.iteration + 1;
    rep.at_close = market_.step(ms_, rng_);
    exits(s, rep, rep.at_close, apply);
    if (!rep.at_close) entries(s, rep, apply);
    rep.total_value = total_value(s.portfolio);
    rep.unrealized = rep.total_value - s.portfolio.cash() - s.portfolio.open_cost();
    const Timestamp at = now_for_state();
    apply(tradestate::session_op::step(
        rep.iteration, at,
        tradestate::session_op::runner_patch(s.runner, runner_data(s, rep.iteration, at, rep.total_value)),
        analysis(s, rep)));
    return rep;
}

void Simulation::exits(const SessionState& s, StepReport& rep, bool at_close, const ApplyOp& apply) {
    const Day today = ist_day(ms_.clock);
    const auto now = market_time();
    using Key = std::tuple<std::string, std::int64_t, std::string>; // strategy, entry time, underlying
    std::map<Key, std::vector<std::pair<std::string, Contract>>> groups;
    for (const auto& [sym, p] : s.portfolio.positions()) {
        auto c = contract_of(sym);
        if (!c) continue;
        groups[Key{p.strategy, p.entry_time.micros(), c->underlying}].emplace_back(sym, *c);
    }
    for (const auto& [key, legs] : groups) {
        std::string reason;
        bool expired = false;
        for (const auto& [sym, c] : legs) {
            const Position& p = s.portfolio.positions().at(sym);
            if (c.expiry < today || (c.expiry == today && at_close)) {
                reason = "expiry";
                expired = true;
                break;
            }
            const Money px = Money::from_paise(market_.premium_paise(ms_, c));
            const bool is_long = p.side == Side::long_;
            if (p.stop_loss && (is_long ? px <= *p.stop_loss : px >= *p.stop_loss)) { reason = "stop_loss"; break; }
            if (p.take_profit && (is_long ? px >= *p.take_profit : px <= *p.take_profit)) { reason = "take_profit"; break; }
            if (now.micros() - p.entry_time.micros() >= s_.risk.max_hold_minutes * 60'000'000) reason = "time_exit";
        }
        if (reason.empty()) continue;
        for (const auto& [sym, c] : legs) {
            const Position& p = s.portfolio.positions().at(sym);
            Money px, charges;
            if (expired) {
                px = Money::from_paise(market_.intrinsic_paise(ms_, c)); // cash settlement, no order charges
            } else {
                px = Money::from_paise(market_.premium_paise(ms_, c));
                charges = s_.charges.on_order(px * p.shares, p.side == Side::short_);
            }
            apply(tradestate::session_op::close(sym, px, now, reason, charges));
            const auto& t = s.portfolio.trade_history().back();
            log_->info("🔻 Closed {} ({} {}) {} x {} @ {} [{}]: P&L {} after charges {}", t.symbol, t.strategy,
                       tradestate::to_string(t.side), t.shares, t.entry_price.format(), t.exit_price.format(), reason,
                       (t.pnl - t.charges).format(), t.charges.format());
            rep.closed.push_back(t);
        }
    }
}

std::vector<Signal> Simulation::propose(const SessionState& /*s*/) {
    std::vector<Signal> out;
    const Day today = ist_day(ms_.clock);
    const auto& cal = s_.market.calendar;
    for (const auto& inst : s_.market.instruments) {
        const auto& x = ms_.u.at(inst.name);
        const Day expiry = cal.expiries(inst, today + s_.risk.min_days_to_expiry, 1).front();
        const bool monthly = inst.weekly ? cal.is_monthly(expiry) : true;
        const std::int64_t lot = inst.lot_size(expiry);
        const std::int64_t k0 = market_.atm_strike(ms_, inst);
        const double cheap = (inst.base_iv - x.atm_iv) / inst.base_iv; // > 0: options cheap vs normal
        const double mom = x.momentum;
        // wings about half a standard deviation of the move to expiry away
        const double sd = x.spot * x.atm_iv * std::sqrt(std::max(market_.years_to_expiry(ms_, expiry), 1e-6));
        std::int64_t off = static_cast<std::int64_t>(std::llround(0.5 * sd / static_cast<double>(inst.strike_step))) *
                           inst.strike_step;
        off = std::max(off, inst.strike_step);
        auto leg = [&](std::int64_t strike, OptionType t, Side side) {
            Leg l;
            l.contract = Contract{inst.name, expiry, monthly, strike, t};
            l.side = side;
            l.premium_paise = market_.premium_paise(ms_, l.contract);
            return l;
        };
        for (const auto& name : s_.risk.strategies) {
            const double noise = rng_.uniform(-0.12, 0.12); // drawn for every strategy, every time
            Signal sig;
            sig.strategy = name;
            sig.underlying = inst.name;
            sig.lot_size = lot;
            if (name == "straddle") {
                sig.confidence = 0.50 + 1.5 * cheap + 0.15 * std::fabs(mom) + noise;
                sig.legs = {leg(k0, OptionType::call, Side::long_), leg(k0, OptionType::put, Side::long_)};
            } else if (name == "strangle") {
                sig.confidence = 0.48 + 1.5 * cheap + 0.25 * std::fabs(mom) + noise;
                sig.legs = {leg(k0 + off, OptionType::call, Side::long_), leg(k0 - off, OptionType::put, Side::long_)};
            } else if (name == "iron_condor") {
                sig.confidence = 0.52 - 2.0 * cheap + 0.10 * (0.3 - std::fabs(mom)) + noise;
                sig.legs = {leg(k0 + off, OptionType::call, Side::short_), leg(k0 - off, OptionType::put, Side::short_),
                            leg(k0 + 2 * off, OptionType::call, Side::long_), leg(k0 - 2 * off, OptionType::put, Side::long_)};
            } else if (name == "directional_buy") {
                sig.confidence = 0.45 + 0.35 * std::fabs(mom) / 0.25 * 0.5 + noise;
                sig.legs = {leg(k0, mom >= 0 ? OptionType::call : OptionType::put, Side::long_)};
            } else {
                throw Error(Errc::config, "unknown strategy '" + name +
                                              "' in strategies.enabled (known: straddle, strangle, iron_condor, directional_buy)");
            }
            sig.confidence = std::clamp(sig.confidence, 0.0, 0.99);
            // capital per lot: the debit of the long legs, or the max loss of a credit spread
            std::int64_t debit = 0;
            for (const auto& l : sig.legs) debit += l.premium_paise * (l.side == Side::long_ ? 1 : -1);
            std::int64_t per_unit = debit;
            if (name == "iron_condor") per_unit = off * 100 + debit; // width minus net credit (debit < 0)
            sig.capital_per_lot = Money::from_paise(std::max<std::int64_t>(per_unit, 100) * lot);
            out.push_back(std::move(sig));
        }
    }
    return out;
}

void Simulation::entries(const SessionState& s, StepReport& rep, const ApplyOp& apply) {
    auto signals = propose(s);
    std::stable_sort(signals.begin(), signals.end(),
                     [](const Signal& a, const Signal& b) { return a.confidence > b.confidence; });
    const auto& cfg = s.settings;
    const auto now = market_time();
    std::int64_t opened = 0;
    for (auto& sig : signals) {
        const auto& pf = s.portfolio;
        // strategies open per underlying = distinct (strategy, entry time) groups
        std::set<std::pair<std::string, std::int64_t>> groups;
        for (const auto& [sym, p] : pf.positions())
            if (sym.compare(0, sig.underlying.size(), sig.underlying) == 0) {
                auto c = contract_of(sym);
                if (c && c->underlying == sig.underlying) groups.emplace(p.strategy, p.entry_time.micros());
            }
        // cool-down: no new strategy on an underlying soon after one was closed there
        bool cooling = false;
        const auto& hist = pf.trade_history();
        for (auto it = hist.rbegin(); it != hist.rend(); ++it) {
            if (now.micros() - it->exit_time.micros() >= s_.risk.cooldown_minutes * 60'000'000) break;
            if (it->symbol.compare(0, sig.underlying.size(), sig.underlying) == 0) {
                auto c = contract_of(it->symbol);
                if (c && c->underlying == sig.underlying) { cooling = true; break; }
            }
        }
        const auto legs = static_cast<std::int64_t>(sig.legs.size());
        if (cooling && sig.confidence >= cfg.min_confidence) { sig.decision = "cool-down after a recent exit"; continue; }
        if (sig.confidence < cfg.min_confidence) { sig.decision = "below min_confidence"; continue; }
        if (opened >= s_.risk.max_new_per_iteration) { sig.decision = "max_new_per_iteration reached"; continue; }
        if (static_cast<std::int64_t>(pf.positions().size()) + legs > cfg.max_positions) {
            sig.decision = "max_positions (" + std::to_string(cfg.max_positions) + " legs) would be exceeded";
            continue;
        }
        if (static_cast<std::int64_t>(groups.size()) >= s_.risk.max_strategies_per_underlying) {
            sig.decision = "max_strategies_per_underlying reached";
            continue;
        }
        bool tiny = false;
        for (const auto& l : sig.legs) tiny = tiny || l.premium_paise < s_.risk.min_premium.paise();
        if (tiny) { sig.decision = "a leg's premium is below risk.min_premium"; continue; }
        bool clash = false;
        for (const auto& l : sig.legs) clash = clash || pf.has(l.contract.symbol());
        if (clash) { sig.decision = "a leg is already open"; continue; }
        std::int64_t lots = std::min(s_.risk.max_lots_per_leg, cfg.capital_per_trade.paise() / sig.capital_per_lot.paise());
        if (lots < 1) {
            sig.decision = "capital_per_trade " + cfg.capital_per_trade.format() + " is below one lot (" +
                           sig.capital_per_lot.format() + ")";
            continue;
        }
        const std::int64_t shares = lots * sig.lot_size;
        Money charges_total;
        std::vector<Money> charges;
        for (const auto& l : sig.legs) {
            charges.push_back(s_.charges.on_order(Money::from_paise(l.premium_paise) * shares, l.side == Side::long_));
            charges_total += charges.back();
        }
        const Money needed = sig.capital_per_lot * lots + charges_total;
        if (needed > pf.cash()) {
            sig.decision = "not enough cash (needs " + needed.format() + ")";
            continue;
        }
        // shorts first: their premium pays for the long wings
        std::vector<std::size_t> order(sig.legs.size());
        for (std::size_t i = 0; i < order.size(); ++i) order[i] = i;
        std::stable_partition(order.begin(), order.end(), [&](std::size_t i) { return sig.legs[i].side == Side::short_; });
        for (auto i : order) {
            const auto& l = sig.legs[i];
            Position p;
            p.symbol = l.contract.symbol();
            p.shares = shares;
            p.lot_size = sig.lot_size;
            p.side = l.side;
            p.entry_price = Money::from_paise(l.premium_paise);
            const double e = p.entry_price.to_double();
            const double sl = s_.risk.stop_loss_pct, tp = s_.risk.take_profit_pct;
            p.stop_loss = Money::from_double_rounded(l.side == Side::long_ ? e * (1 - sl) : e * (1 + sl));
            p.take_profit = Money::from_double_rounded(l.side == Side::long_ ? e * (1 + tp) : std::max(0.05, e * (1 - tp)));
            p.entry_time = now;
            p.strategy = sig.strategy;
            p.sector = "F&O";
            log_->info("🔺 Opened {} {} {} x {} @ {} (SL {}, TP {}, confidence {:.2f})", sig.strategy,
                       tradestate::to_string(p.side), p.symbol, p.shares, p.entry_price.format(), p.stop_loss->format(),
                       p.take_profit->format(), sig.confidence);
            rep.opened.push_back(p.symbol);
            apply(tradestate::session_op::open(p, charges[i]));
        }
        sig.lots = lots;
        sig.decision = "opened";
        ++opened;
    }
    rep.signals = std::move(signals);
}

boost::json::value Simulation::analysis(const SessionState& s, const StepReport& rep) const {
    boost::json::object a;
    a["market_time"] = market_time().to_iso();
    a["session"] = rep.at_close ? "close" : "open";
    const Day today = ist_day(ms_.clock);
    boost::json::object under;
    for (const auto& inst : s_.market.instruments) {
        const auto& x = ms_.u.at(inst.name);
        boost::json::object u;
        u["spot"] = round2(x.spot);
        u["change_pct"] = round2((x.spot / x.day_open - 1.0) * 100.0);
        u["atm_iv"] = round4(x.atm_iv);
        u["momentum"] = round4(x.momentum);
        u["atm_strike"] = market_.atm_strike(ms_, inst);
        const Day e = s_.market.calendar.expiries(inst, today, 1).front();
        u["next_expiry"] = format_day(e);
        u["lot_size"] = inst.lot_size(e);
        under[inst.name] = std::move(u);
    }
    a["underlyings"] = std::move(under);
    boost::json::array sigs;
    for (const auto& sg : rep.signals) {
        boost::json::object o;
        o["strategy"] = sg.strategy;
        o["underlying"] = sg.underlying;
        o["confidence"] = std::round(sg.confidence * 1000.0) / 1000.0;
        o["decision"] = sg.decision;
        sigs.push_back(std::move(o));
    }
    a["signals"] = std::move(sigs);
    a["total_value"] = boost::json::value_from(rep.total_value);
    a["unrealized_pnl"] = boost::json::value_from(rep.unrealized);
    (void)s;
    return a;
}

} // namespace fno
