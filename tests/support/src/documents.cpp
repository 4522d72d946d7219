#include <tradestate_test/documents.hpp>
#include <tradestate_test/paths.hpp>

#include <tradestate/detail/atomic_file.hpp>
#include <tradestate/detail/json.hpp>

#include <boost/json.hpp>

#include <random>

namespace tradestate::testing {

namespace json = boost::json;

json::value make_doc(std::size_t positions, std::size_t trades, std::uint64_t seed, std::int64_t iteration,
                     const std::string& strategy) {
    std::mt19937_64 rng(seed);
    auto price = [&](int lo, int hi) {
        // whole paise, printed as rupees with up to two decimals
        const auto paise = lo * 100 + static_cast<int>(rng() % static_cast<std::uint64_t>((hi - lo) * 100));
        return static_cast<double>(paise) / 100.0;
    };
    json::object pos;
    pos.reserve(positions);
    static const char* unders[] = {"NIFTY", "BANKNIFTY", "FINNIFTY"};
    for (std::size_t i = 0; i < positions; ++i) {
        const auto strike = 20000 + static_cast<int>(i % 1000) * 50;
        std::string sym = std::string(unders[i % 3]) + "25SEP" + std::to_string(strike) + (i % 2 ? "PE" : "CE") +
                          (i >= 1000 ? "_" + std::to_string(i) : "");
        const double entry = price(50, 900);
        pos[sym] = {{"shares", static_cast<std::int64_t>(25 * (1 + rng() % 6))},
                    {"entry_price", entry},
                    {"stop_loss", price(10, 50)},
                    {"take_profit", price(900, 1200)},
                    {"entry_time", "2025-09-29T11:49:10." + std::to_string(100000 + rng() % 899999)},
                    {"strategy", strategy},
                    {"sector", "F&O"}};
    }
    json::array hist;
    hist.reserve(trades);
    for (std::size_t i = 0; i < trades; ++i) {
        hist.push_back(json::object{{"symbol", "NIFTY25SEP" + std::to_string(24000 + (i % 40) * 50) + "CE"},
                                    {"shares", 75},
                                    {"entry_price", price(100, 300)},
                                    {"exit_price", price(100, 300)},
                                    {"pnl", price(-500, 500)},
                                    {"exit_time", "2025-09-29T12:00:00.000001"},
                                    {"strategy", strategy}});
    }
    const double cash = static_cast<double>(50000000 + static_cast<std::int64_t>(rng() % 50000000)) / 100.0;
    json::object doc{{"timestamp", "2025-09-29T11:49:10.218268"},
                     {"trading_mode", "paper"},
                     {"iteration", iteration},
                     {"portfolio",
                      {{"initial_cash", 1000000.0},
                       {"cash", cash},
                       {"positions", std::move(pos)},
                       {"trades_count", static_cast<std::int64_t>(trades)},
                       {"total_pnl", 0.0},
                       {"trade_history", std::move(hist)}}},
                     {"configuration",
                      {{"min_confidence", 0.65}, {"check_interval", 300}, {"max_positions", 5},
                       {"capital_per_trade", 200000}}}};
    return doc;
}

/// The metadata a host would hand over with `doc`.
SaveMeta doc_meta(const json::value& doc) {
    SaveMeta m;
    const auto& o = doc.as_object();
    m.saved_at = std::string(o.at("timestamp").as_string());
    m.iteration = o.at("iteration").as_int64();
    const auto& pf = o.at("portfolio").as_object();
    m.positions = static_cast<std::int64_t>(pf.at("positions").as_object().size());
    // cash was built from whole paise: recover them exactly through the shortest decimal
    std::string s;
    detail::append_double(s, pf.at("cash").as_double());
    const auto dot = s.find('.');
    std::string frac = dot == std::string::npos ? "" : s.substr(dot + 1);
    frac.resize(2, '0');
    m.cash_paise = std::stoll(s.substr(0, dot)) * 100 + std::stoll(frac);
    return m;
}

Document as_document(const json::value& doc) {
    Document d;
    d.main = doc;
    const auto& pf = doc.as_object().at("portfolio").as_object();
    d.views["shared_portfolio_state"] = {{"timestamp", doc.as_object().at("timestamp")},
                                         {"trading_mode", doc.as_object().at("trading_mode")},
                                         {"cash", pf.at("cash")},
                                         {"positions", pf.at("positions")}};
    d.views["current_state"] = {{"iteration", doc.as_object().at("iteration")},
                                {"trades_count", pf.at("trades_count")}};
    return d;
}

std::uint64_t save_doc(Backend& b, const std::string& session, const json::value& doc) {
    return b.save(session, as_document(doc), doc_meta(doc));
}

/// Byte-exact comparison (member order, number spelling) on top of value equality.
bool same_doc(const json::value& a, const json::value& b) {
    return a == b && detail::print(a) == detail::print(b);
}

json::value seed_doc() { return detail::parse(detail::read_file(seed_file()), seed_file().string()); }

SessionState fresh_state(Money cash) {
    SessionState s;
    s.timestamp = Timestamp::from_iso("2025-10-01T09:15:00");
    s.portfolio = Portfolio(cash);
    s.runner["engine"] = "test";
    return s;
}

SessionState state_with_positions(int n, std::int64_t iteration) {
    SessionState s;
    s.timestamp = Timestamp::from_iso("2025-09-29T11:49:10.218268");
    s.iteration = iteration;
    s.portfolio = Portfolio(Money::from_rupees(10'000'000));
    for (int i = 0; i < n; ++i) {
        Position p;
        p.symbol = "NIFTY25SEP" + std::to_string(24000 + 50 * i) + "CE";
        p.shares = 75;
        p.lot_size = 75;
        p.entry_price = Money::parse("120.05");
        p.entry_time = s.timestamp;
        p.strategy = "straddle";
        s.portfolio.open(p, Money::from_rupees(20));
    }
    return s;
}

/// Odd k opens a position, even k closes one (when one is open); every 7th
/// is a cash deposit instead, every 5th a step.
json::object op_number(std::uint64_t k, const SessionState& s) {
    const auto ki = static_cast<std::int64_t>(k);
    if (k % 7 == 0) return session_op::cash(Money::from_paise(1000 + ki * 37), "deposit " + std::to_string(k));
    if (k % 5 == 0) {
        json::object runner = s.runner;
        runner["clock"] = ki;
        return session_op::step(ki, Timestamp::from_micros(s.timestamp.micros() + ki * 1'000'000), std::move(runner),
                                json::object{{"k", ki}});
    }
    if (!s.portfolio.positions().empty() && k % 2 == 0) {
        const auto& [sym, p] = *s.portfolio.positions().begin();
        const Money exit = Money::from_paise(p.entry_price.paise() + (ki % 3 - 1) * 1234 + 1);
        return session_op::close(sym, exit, Timestamp::from_micros(s.timestamp.micros() + ki), "take_profit",
                                 Money::from_paise(2000 + ki % 13));
    }
    Position p;
    p.symbol = "NIFTY25OCT" + std::to_string(24000 + ki) + (k % 3 ? "CE" : "PE");
    p.shares = 75 * (1 + ki % 3);
    p.lot_size = 75;
    p.side = k % 4 == 1 ? Side::short_ : Side::long_;
    p.entry_price = Money::from_paise(10'000 + ki * 101 % 9000);
    p.stop_loss = Money::from_paise(p.entry_price.paise() * 8 / 10);
    p.entry_time = Timestamp::from_micros(s.timestamp.micros() + ki);
    p.strategy = "straddle";
    return session_op::open(p, Money::from_paise(2300 + ki % 17));
}

} // namespace tradestate::testing
