// fno_runner — reading [instruments], [runner], [risk], [strategies], [charges].
#include <fno_runner/nse_holidays.hpp>
#include <fno_runner/settings.hpp>

#include <tradestate/timestamp.hpp>

#include <cmath>
#include <set>

namespace fno {

using tradestate::Errc;
using tradestate::Error;

tradestate::ConfigSchema runner_config_schema() {
    return {{"instruments", "runner", "risk", "strategies", "charges"}, {}};
}

SimulationSettings default_settings() {
    SimulationSettings s;
    std::set<Day> hol;
    for (auto d : default_nse_holidays) hol.insert(parse_day(d, "built-in NSE holiday list"));
    s.market.calendar = NseCalendar(std::move(hol), 2);
    Instrument nifty;
    nifty.name = "NIFTY";
    nifty.initial_spot = 26000.0;
    nifty.base_iv = 0.11;
    nifty.strike_step = 50;
    nifty.weekly = true;
    // NSE: 75 from the 20 Nov 2024 revision; 65 for contracts expiring from January 2026 (NSE/FAOP/70616).
    nifty.lots = {{make_day(2024, 11, 20), 75}, {make_day(2026, 1, 1), 65}};
    Instrument bank;
    bank.name = "BANKNIFTY";
    bank.initial_spot = 58500.0;
    bank.base_iv = 0.13;
    bank.strike_step = 100;
    bank.weekly = false;
    // 30 from Nov 2024; 35 from the July 2025 monthly expiry; 30 again from January 2026 (NSE/FAOP/70616).
    bank.lots = {{make_day(2024, 11, 20), 30}, {make_day(2025, 7, 31), 35}, {make_day(2026, 1, 1), 30}};
    s.market.instruments = {nifty, bank};
    return s;
}

namespace {

struct Reader {
    const tradestate::Config& cfg;
    [[noreturn]] void fail(const toml::node& n, const std::string& msg) const {
        throw Error(Errc::config, tradestate::detail::where(cfg.source().empty() ? "config" : cfg.source(), n.source()) +
                                      ": " + msg);
    }
    double num(const toml::node& n, const std::string& key, double lo, double hi) const {
        double v = 0;
        if (auto f = n.as_floating_point()) v = f->get();
        else if (auto i = n.as_integer()) v = static_cast<double>(i->get());
        else fail(n, key + ": expected a number");
        if (!std::isfinite(v) || v < lo || v > hi)
            fail(n, key + ": " + std::to_string(v) + " is out of range [" + std::to_string(lo) + ", " + std::to_string(hi) + "]");
        return v;
    }
    std::int64_t integer(const toml::node& n, const std::string& key, std::int64_t lo, std::int64_t hi) const {
        auto i = n.as_integer();
        if (!i) fail(n, key + ": expected an integer");
        if (i->get() < lo || i->get() > hi)
            fail(n, key + ": " + std::to_string(i->get()) + " is out of range [" + std::to_string(lo) + ", " +
                        std::to_string(hi) + "]");
        return i->get();
    }
    bool boolean(const toml::node& n, const std::string& key) const {
        auto b = n.as_boolean();
        if (!b) fail(n, key + ": expected true or false");
        return b->get();
    }
    std::string string(const toml::node& n, const std::string& key) const {
        auto s = n.as_string();
        if (!s) fail(n, key + ": expected a string");
        return s->get();
    }
    Day day(const toml::node& n, const std::string& key) const {
        if (auto d = n.as_date()) return make_day(d->get().year, d->get().month, d->get().day);
        try {
            return parse_day(string(n, key), key);
        } catch (const Error& e) {
            fail(n, e.what());
        }
    }
    Money money(const toml::node& n, const std::string& key) const {
        try {
            if (auto m = tradestate::detail::toml_money(n)) return *m;
        } catch (const Error& e) {
            fail(n, key + ": " + e.what());
        }
        fail(n, key + ": expected an amount");
    }

    const toml::table* section(const char* name) const {
        auto* n = cfg.table().get(name);
        if (!n) return nullptr;
        if (!n->is_table()) fail(*n, std::string(name) + ": expected a table");
        return n->as_table();
    }
};

void read_instrument(const Reader& rd, const toml::table& t, const std::string& path, Instrument& inst) {
    for (auto&& [k, n] : t) {
        const std::string key(k.str());
        const std::string dotted = path + "." + key;
        if (key == "spot") inst.initial_spot = rd.num(n, dotted, 1, 1e7);
        else if (key == "base_iv") inst.base_iv = rd.num(n, dotted, 0.01, 2);
        else if (key == "iv_of_iv") inst.iv_of_iv = rd.num(n, dotted, 0, 5);
        else if (key == "skew") inst.skew = rd.num(n, dotted, -5, 5);
        else if (key == "smile") inst.smile = rd.num(n, dotted, -50, 50);
        else if (key == "strike_step") inst.strike_step = rd.integer(n, dotted, 1, 100000);
        else if (key == "weekly") inst.weekly = rd.boolean(n, dotted);
        else if (key == "lot_sizes") {
            auto* arr = n.as_array();
            if (!arr) rd.fail(n, dotted + ": expected an array of { from_expiry = \"YYYY-MM-DD\", lot = N }");
            inst.lots.clear();
            for (auto&& e : *arr) {
                auto* et = e.as_table();
                if (!et) rd.fail(e, dotted + ": expected { from_expiry = \"YYYY-MM-DD\", lot = N }");
                LotRule r;
                bool have_from = false, have_lot = false;
                for (auto&& [ek, en] : *et) {
                    const std::string ekey(ek.str());
                    if (ekey == "from_expiry") { r.from_expiry = rd.day(en, dotted + ".from_expiry"); have_from = true; }
                    else if (ekey == "lot") { r.lot = rd.integer(en, dotted + ".lot", 1, 1'000'000); have_lot = true; }
                    else rd.fail(en, "unknown key " + dotted + "." + ekey + " (known: from_expiry, lot)");
                }
                if (!have_from || !have_lot) rd.fail(e, dotted + ": every entry needs from_expiry and lot");
                if (!inst.lots.empty() && r.from_expiry <= inst.lots.back().from_expiry)
                    rd.fail(e, dotted + ": entries must be sorted by from_expiry");
                inst.lots.push_back(r);
            }
        } else {
            rd.fail(n, "unknown key " + dotted +
                           " (known: spot, base_iv, iv_of_iv, skew, smile, strike_step, weekly, lot_sizes)");
        }
    }
}

} // namespace

SimulationSettings settings_from_config(const tradestate::Config& cfg) {
    SimulationSettings s = default_settings();
    s.market.step_seconds = cfg.trading.settings.check_interval;
    Reader rd{cfg};

    if (auto* t = rd.section("instruments")) {
        std::set<Day> hol = s.market.calendar.holidays();
        int weekday_no = s.market.calendar.expiry_weekday();
        std::vector<Instrument> configured;
        for (auto&& [k, n] : *t) {
            const std::string key(k.str());
            const std::string dotted = "instruments." + key;
            if (key == "holidays") {
                auto* arr = n.as_array();
                if (!arr) rd.fail(n, dotted + ": expected an array of dates");
                hol.clear();
                for (auto&& e : *arr) hol.insert(rd.day(e, dotted));
            } else if (key == "expiry_weekday") {
                try {
                    weekday_no = parse_weekday(rd.string(n, dotted));
                } catch (const Error& e) {
                    rd.fail(n, e.what());
                }
            } else if (key == "rate") s.market.rate = rd.num(n, dotted, -0.1, 1);
            else if (key == "dividend_yield") s.market.div_yield = rd.num(n, dotted, -0.1, 1);
            else if (n.is_table()) {
                Instrument inst;
                for (const auto& d : s.market.instruments)
                    if (d.name == key) inst = d;
                inst.name = key;
                read_instrument(rd, *n.as_table(), dotted, inst);
                if (inst.initial_spot <= 0) rd.fail(n, dotted + ": spot is required for an instrument without defaults");
                if (inst.lots.empty()) rd.fail(n, dotted + ": lot_sizes is required for an instrument without defaults");
                configured.push_back(std::move(inst));
            } else {
                rd.fail(n, "unknown key " + dotted +
                               " (known: holidays, expiry_weekday, rate, dividend_yield, and one table per index)");
            }
        }
        s.market.calendar = NseCalendar(std::move(hol), weekday_no);
        if (!configured.empty()) s.market.instruments = std::move(configured);
    }

    if (auto* t = rd.section("runner")) {
        for (auto&& [k, n] : *t) {
            const std::string key(k.str());
            const std::string dotted = "runner." + key;
            if (key == "seed") s.seed = static_cast<std::uint64_t>(rd.integer(n, dotted, 0, INT64_MAX));
            else if (key == "sim_clock") s.sim_clock = rd.boolean(n, dotted);
            else if (key == "start") {
                s.market.start = rd.string(n, dotted);
                try {
                    (void)tradestate::Timestamp::from_iso(s.market.start);
                } catch (const Error& e) {
                    rd.fail(n, dotted + ": " + e.what());
                }
            } else if (key == "step_seconds") s.market.step_seconds = rd.integer(n, dotted, 1, 86'400);
            else rd.fail(n, "unknown key " + dotted + " (known: seed, sim_clock, start, step_seconds)");
        }
    }
    if (s.market.step_seconds <= 0) s.market.step_seconds = 300;

    if (auto* t = rd.section("risk")) {
        auto& r = s.risk;
        for (auto&& [k, n] : *t) {
            const std::string key(k.str());
            const std::string dotted = "risk." + key;
            if (key == "stop_loss_pct") r.stop_loss_pct = rd.num(n, dotted, 0.001, 0.99);
            else if (key == "take_profit_pct") r.take_profit_pct = rd.num(n, dotted, 0.001, 10);
            else if (key == "max_hold_minutes") r.max_hold_minutes = rd.integer(n, dotted, 1, 10'000'000);
            else if (key == "max_strategies_per_underlying") r.max_strategies_per_underlying = rd.integer(n, dotted, 1, 1000);
            else if (key == "max_new_per_iteration") r.max_new_per_iteration = rd.integer(n, dotted, 0, 1000);
            else if (key == "min_days_to_expiry") r.min_days_to_expiry = rd.integer(n, dotted, 0, 365);
            else if (key == "max_lots_per_leg") r.max_lots_per_leg = rd.integer(n, dotted, 1, 100000);
            else if (key == "min_premium") r.min_premium = rd.money(n, dotted);
            else if (key == "cooldown_minutes") r.cooldown_minutes = rd.integer(n, dotted, 0, 10'000'000);
            else
                rd.fail(n, "unknown key " + dotted +
                               " (known: stop_loss_pct, take_profit_pct, max_hold_minutes, max_strategies_per_underlying, "
                               "max_new_per_iteration, min_days_to_expiry, max_lots_per_leg, min_premium, cooldown_minutes)");
        }
    }

    if (auto* t = rd.section("strategies")) {
        for (auto&& [k, n] : *t) {
            const std::string key(k.str());
            if (key == "enabled") {
                auto* arr = n.as_array();
                if (!arr) rd.fail(n, "strategies.enabled: expected an array of strategy names");
                s.risk.strategies.clear();
                for (auto&& e : *arr) {
                    auto name = rd.string(e, "strategies.enabled");
                    if (name != "straddle" && name != "strangle" && name != "iron_condor" && name != "directional_buy")
                        rd.fail(e, "strategies.enabled: unknown strategy '" + name +
                                       "' (known: straddle, strangle, iron_condor, directional_buy)");
                    s.risk.strategies.push_back(name);
                }
            } else {
                rd.fail(n, "unknown key strategies." + key + " (known: enabled)");
            }
        }
    }

    if (auto* t = rd.section("charges")) {
        auto& c = s.charges;
        for (auto&& [k, n] : *t) {
            const std::string key(k.str());
            const std::string dotted = "charges." + key;
            if (key == "brokerage_per_order") c.brokerage_per_order = rd.money(n, dotted);
            else if (key == "stt_sell_per_crore") c.stt_sell_per_crore = rd.integer(n, dotted, 0, 10'000'000);
            else if (key == "exchange_txn_per_crore") c.exchange_txn_per_crore = rd.integer(n, dotted, 0, 10'000'000);
            else if (key == "sebi_fee_per_crore") c.sebi_fee_per_crore = rd.integer(n, dotted, 0, 10'000'000);
            else if (key == "stamp_buy_per_crore") c.stamp_buy_per_crore = rd.integer(n, dotted, 0, 10'000'000);
            else if (key == "gst_percent") c.gst_percent = rd.integer(n, dotted, 0, 100);
            else
                rd.fail(n, "unknown key " + dotted +
                               " (known: brokerage_per_order, stt_sell_per_crore, exchange_txn_per_crore, "
                               "sebi_fee_per_crore, stamp_buy_per_crore, gst_percent)");
        }
        if (c.brokerage_per_order < Money{}) throw Error(Errc::config, "charges.brokerage_per_order must not be negative");
    }
    return s;
}

} // namespace fno
