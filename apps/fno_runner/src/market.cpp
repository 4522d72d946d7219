// fno_runner — simulated market: random walk, Black–Scholes with smile, clock.
#include <fno_runner/market.hpp>

#include <tradestate/timestamp.hpp>

#include <boost/json/array.hpp>

#include <algorithm>
#include <cmath>

namespace fno {

using tradestate::Errc;
using tradestate::Error;

namespace {
constexpr double trading_seconds_per_year = 252.0 * 375.0 * 60.0; // 252 days of 6h15m
constexpr std::int64_t us_per_s = 1'000'000;

double norm_cdf(double x) { return 0.5 * std::erfc(-x / std::sqrt(2.0)); }
} // namespace

double black_scholes(OptionType type, double S, double K, double T, double r, double q, double vol) {
    if (T <= 0 || vol <= 0) return type == OptionType::call ? std::max(S - K, 0.0) : std::max(K - S, 0.0);
    const double sq = vol * std::sqrt(T);
    const double d1 = (std::log(S / K) + (r - q + 0.5 * vol * vol) * T) / sq;
    const double d2 = d1 - sq;
    const double df_r = std::exp(-r * T), df_q = std::exp(-q * T);
    if (type == OptionType::call) return S * df_q * norm_cdf(d1) - K * df_r * norm_cdf(d2);
    return K * df_r * norm_cdf(-d2) - S * df_q * norm_cdf(-d1);
}

double smile_iv(const Instrument& inst, double atm_iv, double spot, double strike) {
    const double m = std::log(strike / spot);
    return std::max(0.03, atm_iv + inst.skew * m + inst.smile * m * m);
}

std::int64_t to_tick_paise(double rupees) {
    if (!std::isfinite(rupees) || rupees < 0) rupees = 0;
    const auto ticks = static_cast<std::int64_t>(std::llround(rupees * 20.0));
    return std::max<std::int64_t>(ticks, 1) * 5;
}

std::int64_t ist_seconds_of_day(std::int64_t micros) {
    const std::int64_t local = micros / us_per_s + tradestate::ist_offset_seconds;
    const std::int64_t r = local % 86400;
    return r < 0 ? r + 86400 : r;
}

Day ist_day(std::int64_t micros) {
    const std::int64_t local = micros / us_per_s + tradestate::ist_offset_seconds;
    return local >= 0 ? local / 86400 : (local - 86399) / 86400;
}

std::int64_t ist_micros(Day d, int hh, int mm) {
    return ((d * 86400 + hh * 3600 + mm * 60) - tradestate::ist_offset_seconds) * us_per_s;
}

const Instrument& MarketSettings::instrument(const std::string& name) const {
    for (const auto& i : instruments)
        if (i.name == name) return i;
    throw Error(Errc::not_found, "no instrument '" + name + "' is configured in [instruments]");
}

std::vector<std::string> MarketSettings::names() const {
    std::vector<std::string> n;
    for (const auto& i : instruments) n.push_back(i.name);
    return n;
}

boost::json::object MarketState::to_json() const {
    boost::json::object o;
    o["clock"] = tradestate::Timestamp::from_micros(clock).to_iso();
    boost::json::object under;
    for (const auto& [name, x] : u) {
        boost::json::object e;
        e["spot"] = exact_double(x.spot);
        e["atm_iv"] = exact_double(x.atm_iv);
        e["momentum"] = exact_double(x.momentum);
        e["day_open"] = exact_double(x.day_open);
        under[name] = std::move(e);
    }
    o["underlyings"] = std::move(under);
    return o;
}

MarketState MarketState::from_json(const boost::json::object& o) {
    MarketState st;
    auto need = [&](const boost::json::object& obj, const char* key, const std::string& path) -> const boost::json::value& {
        auto it = obj.find(key);
        if (it == obj.end()) throw Error(Errc::schema, "saved session lacks " + path + "." + key);
        return it->value();
    };
    const auto& clock = need(o, "clock", "runner.market");
    if (!clock.is_string()) throw Error(Errc::schema, "runner.market.clock must be an ISO 8601 string");
    st.clock = tradestate::Timestamp::from_iso(clock.get_string()).micros();
    const auto& under = need(o, "underlyings", "runner.market");
    if (!under.is_object()) throw Error(Errc::schema, "runner.market.underlyings must be an object");
    for (const auto& kv : under.get_object()) {
        const std::string name(kv.key());
        const std::string path = "runner.market.underlyings." + name;
        if (!kv.value().is_object()) throw Error(Errc::schema, path + " must be an object");
        const auto& e = kv.value().get_object();
        auto num = [&](const char* key) {
            const auto& v = need(e, key, path);
            if (!v.is_string()) throw Error(Errc::schema, path + "." + key + " must be a 16-hex-digit string");
            return exact_double(std::string(v.get_string()), path + "." + key);
        };
        UnderlyingState x;
        x.spot = num("spot");
        x.atm_iv = num("atm_iv");
        x.momentum = num("momentum");
        x.day_open = num("day_open");
        if (!(x.spot > 0) || !(x.atm_iv > 0) || !std::isfinite(x.momentum))
            throw Error(Errc::schema, path + " holds an impossible market state (spot and IV must be positive)");
        st.u[name] = x;
    }
    return st;
}

MarketState Market::initial_state() const {
    MarketState st;
    const auto t0 = tradestate::Timestamp::from_iso(s_.start).micros();
    Day d = ist_day(t0);
    const auto sod = ist_seconds_of_day(t0);
    if (!s_.calendar.is_trading_day(d) || sod >= market_close_minute * 60) d = s_.calendar.next_trading_day(d);
    st.clock = std::max(t0, ist_micros(d, 9, 15));
    if (ist_day(st.clock) != d) st.clock = ist_micros(d, 9, 15);
    for (const auto& i : s_.instruments) st.u[i.name] = UnderlyingState{i.initial_spot, i.base_iv, 0.0, i.initial_spot};
    return st;
}

void Market::evolve(MarketState& st, Rng& rng, double dt) const {
    if (dt <= 0) return;
    for (const auto& inst : s_.instruments) { // fixed order: the configured one
        auto& x = st.u[inst.name];
        const double z1 = rng.normal();
        const double z2 = rng.normal();
        const double vol = x.atm_iv * s_.realized_to_implied;
        const double sdt = std::sqrt(dt);
        x.spot *= std::exp(-0.5 * vol * vol * dt + vol * sdt * z1);
        const double rho = s_.spot_iv_correlation;
        const double zv = rho * z1 + std::sqrt(1.0 - rho * rho) * z2;
        double liv = std::log(x.atm_iv);
        liv += s_.iv_mean_reversion * (std::log(inst.base_iv) - liv) * dt + inst.iv_of_iv * sdt * zv;
        x.atm_iv = std::clamp(std::exp(liv), 0.05, 0.80);
        x.momentum = 0.9 * x.momentum + 0.1 * z1;
    }
}

bool Market::step(MarketState& st, Rng& rng) const {
    const Day today = ist_day(st.clock);
    const std::int64_t close = ist_micros(today, 15, 30);
    if (st.clock >= close) {
        // overnight: to the next trading day's open, with a gap
        const Day next = s_.calendar.next_trading_day(today);
        st.clock = ist_micros(next, 9, 15);
        evolve(st, rng, s_.overnight_hours * 3600.0 / trading_seconds_per_year);
        for (auto& [_, x] : st.u) x.day_open = x.spot;
        return false;
    }
    const std::int64_t target = std::min(close, st.clock + s_.step_seconds * us_per_s);
    evolve(st, rng, static_cast<double>(target - st.clock) / us_per_s / trading_seconds_per_year);
    st.clock = target;
    return st.clock == close;
}

double Market::years_to_expiry(const MarketState& st, Day expiry) const {
    const auto end = ist_micros(expiry, 15, 30);
    if (st.clock >= end) return 0.0;
    return static_cast<double>(end - st.clock) / us_per_s / (365.0 * 86400.0);
}

std::int64_t Market::intrinsic_paise(const MarketState& st, const Contract& c) const {
    const double S = st.u.at(c.underlying).spot;
    const double K = static_cast<double>(c.strike);
    const double v = c.type == OptionType::call ? std::max(S - K, 0.0) : std::max(K - S, 0.0);
    return static_cast<std::int64_t>(std::llround(v * 100.0));
}

std::int64_t Market::premium_paise(const MarketState& st, const Contract& c) const {
    const double T = years_to_expiry(st, c.expiry);
    if (T <= 0) return intrinsic_paise(st, c);
    const auto& inst = s_.instrument(c.underlying);
    const auto& x = st.u.at(c.underlying);
    const double K = static_cast<double>(c.strike);
    const double iv = smile_iv(inst, x.atm_iv, x.spot, K);
    return to_tick_paise(black_scholes(c.type, x.spot, K, T, s_.rate, s_.div_yield, iv));
}

std::int64_t Market::atm_strike(const MarketState& st, const Instrument& inst) const {
    const double S = st.u.at(inst.name).spot;
    const auto step = static_cast<double>(inst.strike_step);
    return static_cast<std::int64_t>(std::llround(S / step)) * inst.strike_step;
}

} // namespace fno
