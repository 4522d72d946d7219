// Round trips of every type, the seed's document, Python-written variants,
// and clear errors for documents of the wrong shape.
#include <tradestate/detail/atomic_file.hpp>
#include <tradestate/detail/json.hpp>
#include <tradestate/session_state.hpp>

#include <tradestate_test/paths.hpp>

#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>

using namespace tradestate;
namespace d = tradestate::detail;

namespace {
std::string seed_text() { return d::read_file(tradestate::testing::seed_file()); }

SessionState load_text(const std::string& text, std::vector<std::string>* warnings = nullptr) {
    d::load_warnings().clear();
    auto s = boost::json::value_to<SessionState>(d::parse(text, "doc"));
    if (warnings) *warnings = d::load_warnings();
    d::load_warnings().clear();
    return s;
}

std::string error_of(const std::string& text) {
    try {
        (void)load_text(text);
    } catch (const Error& e) {
        EXPECT_EQ(e.code(), Errc::schema) << e.what();
        return e.what();
    }
    return "(no error)";
}

SessionState sample() {
    SessionState s;
    s.timestamp = Timestamp::from_iso("2025-09-29T11:49:10.218268");
    s.iteration = 25;
    s.portfolio = Portfolio(Money::from_rupees(1000000));
    Position p;
    p.symbol = "NIFTY25SEP24650CE";
    p.lot_size = 75;
    p.shares = 75;
    p.entry_price = Money::parse("220.42");
    p.stop_loss = Money::parse("207.19");
    p.take_profit = Money::parse("246.87");
    p.entry_time = Timestamp::from_iso("2025-09-29T11:49:10.204428");
    p.strategy = "straddle — सीधा 📈";
    s.portfolio.open(p, Money::parse("20.00"));
    Position q = p;
    q.symbol = "BANKNIFTY25SEP57200CE";
    q.side = Side::short_;
    q.shares = 35;
    q.lot_size = 35;
    q.entry_price = Money::parse("395.56");
    q.strategy = "iron_condor";
    s.portfolio.open(q, Money::parse("20.00"));
    (void)s.portfolio.close("BANKNIFTY25SEP57200CE", Money::parse("380.05"), Timestamp::from_iso("2025-09-29T12:00:00"),
                            "take_profit", Money::parse("20.00"));
    s.market_analysis = d::parse(R"({"nifty": {"spot": 25843.15, "trend": "up"}})", "m");
    s.runner["rng"] = boost::json::array{1, 2, 3};
    return s;
}
} // namespace

TEST(Types, EveryTypeRoundTripsThroughJsonText) {
    const SessionState s = sample();
    const std::string text = d::print(boost::json::value_from(s));
    const SessionState back = load_text(text);
    EXPECT_EQ(back, s);
    EXPECT_EQ(d::print(boost::json::value_from(back)), text);
    EXPECT_EQ(back.portfolio.reconcile(), Money{});

    // Standalone conversions too.
    const auto& pos = s.portfolio.positions().begin()->second;
    EXPECT_EQ(Position::from_json(boost::json::value_from(pos), "$", pos.symbol), pos);
    EXPECT_EQ(boost::json::value_to<Trade>(boost::json::value_from(s.portfolio.trade_history()[0])),
              s.portfolio.trade_history()[0]);
    EXPECT_EQ(boost::json::value_to<SessionSettings>(boost::json::value_from(s.settings)), s.settings);
    EXPECT_EQ(boost::json::value_to<Timestamp>(boost::json::value_from(pos.entry_time)), pos.entry_time);
}

TEST(Types, SeedDocumentLoadsVerbatim) {
    std::vector<std::string> warnings;
    const SessionState s = load_text(seed_text(), &warnings);
    EXPECT_TRUE(warnings.empty()) << warnings.front();
    EXPECT_EQ(s.iteration, 25);
    EXPECT_EQ(s.trading_mode, "paper");
    EXPECT_EQ(s.portfolio.initial_cash(), Money::from_rupees(1000000));
    EXPECT_EQ(s.portfolio.cash().paise(), 91446259);
    EXPECT_EQ(s.portfolio.trades_count(), 5);
    ASSERT_EQ(s.portfolio.positions().size(), 1u);
    const auto& p = s.portfolio.positions().at("NIFTY25SEP24650CE");
    EXPECT_EQ(p.shares, 75);
    EXPECT_EQ(p.entry_price.paise(), 22042);
    EXPECT_EQ(p.stop_loss->paise(), 20719);
    EXPECT_EQ(p.take_profit->paise(), 24687);
    EXPECT_EQ(p.strategy, "straddle");
    EXPECT_EQ(p.sector, "F&O");
    // Naive seed timestamps are IST: 11:49:10.204428 IST == 06:19:10.204428 UTC.
    EXPECT_EQ(p.entry_time, Timestamp::from_iso("2025-09-29T06:19:10.204428Z"));
    EXPECT_EQ(p.entry_time.to_iso(), "2025-09-29T11:49:10.204428+05:30");
    EXPECT_EQ(s.settings.max_positions, 5);
    EXPECT_EQ(s.settings.capital_per_trade, Money::from_rupees(200000));
    EXPECT_DOUBLE_EQ(s.settings.min_confidence, 0.65);
}

TEST(Types, SeedFieldNamesAndOrderAreKeptOnWrite) {
    const auto out = d::print(boost::json::value_from(load_text(seed_text())));
    // Every line of the seed's document, but for the IST offset on timestamps, is in our output in order.
    std::size_t at = 0;
    for (std::string line : {"\"timestamp\": \"2025-09-29T11:49:10.218268", "\"trading_mode\": \"paper\"", "\"iteration\": 25",
                             "\"portfolio\": {", "\"initial_cash\": 1000000.0", "\"cash\": 914462.59", "\"positions\": {",
                             "\"NIFTY25SEP24650CE\": {", "\"shares\": 75", "\"entry_price\": 220.42", "\"stop_loss\": 207.19",
                             "\"take_profit\": 246.87", "\"entry_time\": \"2025-09-29T11:49:10.204428", "\"strategy\": \"straddle\"",
                             "\"sector\": \"F&O\"", "\"trades_count\": 5", "\"total_pnl\": 0.0", "\"configuration\": {",
                             "\"min_confidence\": 0.65", "\"check_interval\": 300", "\"max_positions\": 5",
                             "\"capital_per_trade\": 200000"}) {
        auto p = out.find(line, at);
        ASSERT_NE(p, std::string::npos) << "missing or out of order: " << line << "\n" << out;
        at = p;
    }
}

TEST(Types, PythonWrittenVariantsLoad) {
    if (std::system("/usr/bin/python3 -c 'import json' >/dev/null 2>&1") != 0) GTEST_SKIP() << "no /usr/bin/python3";
    const auto dir = std::filesystem::temp_directory_path() / ("ts_pyvar_" + std::to_string(::getpid()));
    std::filesystem::create_directories(dir);
    d::write_file_atomic(dir / "seed.json", seed_text(), false);
    const SessionState ref = load_text(seed_text());
    for (const char* args : {"", "indent=2", "indent=4", "separators=(',',':')", "indent=2, ensure_ascii=True, sort_keys=True"}) {
        const std::string cmd = "/usr/bin/python3 -c \"import json,sys; d=json.load(open(sys.argv[1])); "
                                "json.dump(d, open(sys.argv[2],'w')" + std::string(*args ? ", " : "") + args + ")\" " +
                                (dir / "seed.json").string() + " " + (dir / "out.json").string();
        ASSERT_EQ(std::system(cmd.c_str()), 0) << cmd;
        EXPECT_EQ(load_text(d::read_file(dir / "out.json")), ref) << args;
    }
    std::filesystem::remove_all(dir);
}

TEST(Types, UnknownFieldsAreKeptOnTheNextSave) {
    auto v = d::parse(seed_text(), "seed");
    v.as_object()["future_field"] = d::parse(R"({"x": [1, 2]})", "f");
    v.as_object()["portfolio"].as_object()["broker"] = "zerodha";
    v.as_object()["portfolio"].as_object()["positions"].as_object()["NIFTY25SEP24650CE"].as_object()["greeks"] =
        d::parse(R"({"delta": 0.52})", "g");
    v.as_object()["configuration"].as_object()["max_per_underlying"] = 2;
    const auto s = load_text(d::print(v));
    const auto out = boost::json::value_from(s);
    EXPECT_EQ(out.at("future_field"), v.at("future_field"));
    EXPECT_EQ(out.at("portfolio").at("broker"), "zerodha");
    EXPECT_EQ(out.at("portfolio").at("positions").at("NIFTY25SEP24650CE").at("greeks").at("delta").as_double(), 0.52);
    EXPECT_EQ(out.at("configuration").at("max_per_underlying").as_int64(), 2);
}

TEST(Types, MissingOptionalFieldWarnsNamingFieldAndSymbol) {
    auto v = d::parse(seed_text(), "seed");
    v.as_object()["portfolio"].as_object()["positions"].as_object()["NIFTY25SEP24650CE"].as_object().erase("stop_loss");
    std::vector<std::string> w;
    const auto s = load_text(d::print(v), &w);
    ASSERT_EQ(w.size(), 1u);
    EXPECT_EQ(w[0], "$.portfolio.positions.NIFTY25SEP24650CE.stop_loss: missing");
    EXPECT_FALSE(s.portfolio.positions().at("NIFTY25SEP24650CE").stop_loss.has_value());
}

TEST(Types, WrongShapesAreErrorsNamingPathAndType) {
    auto with = [](const std::function<void(boost::json::object&)>& f) {
        auto v = d::parse(seed_text(), "seed");
        f(v.as_object());
        return d::print(v);
    };
    auto pos = [](boost::json::object& o) -> boost::json::object& {
        return o["portfolio"].as_object()["positions"].as_object()["NIFTY25SEP24650CE"].as_object();
    };
    EXPECT_EQ(error_of(with([](auto& o) { o.erase("iteration"); })), "$.iteration: missing required field (expected an integer)");
    EXPECT_EQ(error_of(with([](auto& o) { o["iteration"] = "25"; })), "$.iteration: expected an integer, found a string");
    EXPECT_EQ(error_of(with([](auto& o) { o["iteration"] = 2.5; })), "$.iteration: expected an integer, found a number");
    EXPECT_EQ(error_of(with([](auto& o) { o.erase("portfolio"); })), "$.portfolio: missing required field (expected an object)");
    EXPECT_EQ(error_of(with([](auto& o) { o["portfolio"] = boost::json::array{}; })), "$.portfolio: expected an object, found an array");
    EXPECT_EQ(error_of(with([&](auto& o) { pos(o)["shares"] = "75"; })),
              "$.portfolio.positions.NIFTY25SEP24650CE.shares: expected an integer, found a string");
    EXPECT_NE(error_of(with([&](auto& o) { pos(o)["shares"] = -75; })).find("quantity must be positive"), std::string::npos);
    EXPECT_EQ(error_of(with([&](auto& o) { pos(o).erase("entry_price"); })),
              "$.portfolio.positions.NIFTY25SEP24650CE.entry_price: missing required field (expected an amount (number))");
    EXPECT_EQ(error_of(with([&](auto& o) { pos(o)["entry_price"] = true; })),
              "$.portfolio.positions.NIFTY25SEP24650CE.entry_price: expected an amount (number), found a boolean");
    EXPECT_NE(error_of(with([&](auto& o) { pos(o)["entry_time"] = "yesterday"; })).find(
                  "$.portfolio.positions.NIFTY25SEP24650CE.entry_time: not an ISO 8601 timestamp"),
              std::string::npos);
    EXPECT_EQ(error_of(with([](auto& o) { o["portfolio"].as_object()["cash"] = nullptr; })),
              "$.portfolio.cash: expected an amount (number), found null");
    EXPECT_EQ(error_of(with([](auto& o) { o["trading_mode"] = "yolo"; })),
              "$.trading_mode: expected \"paper\" or \"live\", found \"yolo\"");
    EXPECT_EQ(error_of(with([](auto& o) { o["configuration"].as_object()["min_confidence"] = 7; })),
              "$.configuration.min_confidence: must be between 0 and 1");
    EXPECT_EQ(error_of("[]"), "$: expected an object, found an array");
}

TEST(Types, NothingIsHalfLoaded) {
    // A failed conversion leaves the caller's state untouched: it is built aside and only assigned on success.
    SessionState kept = sample();
    const SessionState before = kept;
    auto v = boost::json::value_from(kept);
    v.as_object()["portfolio"].as_object()["positions"].as_object().begin()->value().as_object()["shares"] = "x";
    try {
        kept = boost::json::value_to<SessionState>(v);
        ADD_FAILURE();
    } catch (const Error&) {
    }
    EXPECT_EQ(kept, before);
}

TEST(Types, TimestampsAreIstAndMicrosecondExact) {
    const auto t = Timestamp::from_iso("2025-09-29T11:49:10.204428");
    EXPECT_EQ(t.to_iso(), "2025-09-29T11:49:10.204428+05:30");
    EXPECT_EQ(Timestamp::from_iso("2025-09-29T06:19:10.204428Z"), t);
    EXPECT_EQ(Timestamp::from_iso("2025-09-29T11:49:10.204428+05:30"), t);
    EXPECT_EQ(Timestamp::from_iso("2025-09-29 11:49:10.204428"), t);
    EXPECT_EQ(Timestamp::from_iso(t.to_iso()), t);
    EXPECT_EQ(t.to_display(), "2025-09-29 11:49:10 IST");
    EXPECT_EQ(Timestamp::from_iso("2025-09-29T20:00:00Z").to_display(), "2025-09-30 01:30:00 IST");
    EXPECT_EQ(Timestamp::from_iso("2025-12-31T23:59:59.999999+05:30").ist_date(), 20251231);
    EXPECT_EQ(Timestamp::from_iso("2025-12-31T20:00:00Z").ist_day(), "2026-01-01");
    EXPECT_EQ(Timestamp::from_timespec({.tv_sec = 1759126750, .tv_nsec = 204428999}).to_iso(),
              "2025-09-29T11:49:10.204428+05:30");
    for (const char* bad : {"", "2025-9-29", "2025-09-29T25:00:00", "2025-09-29T11:49:10.", "2025-09-29T11:49:10+5",
                            "2025-13-01", "29/09/2025"})
        EXPECT_THROW((void)Timestamp::from_iso(bad), Error) << bad;
}

TEST(Types, ViewsCarryTheSeedsCompanionFiles) {
    const auto v = tradestate_views(sample());
    const auto& shared = v.at("shared_portfolio_state").as_object();
    EXPECT_TRUE(shared.contains("positions"));
    EXPECT_TRUE(shared.contains("cash"));
    EXPECT_EQ(shared.at("trading_mode"), "paper");
    const auto& cur = v.at("current_state").as_object();
    EXPECT_EQ(cur.at("trading_day"), "2025-09-29");
    EXPECT_EQ(cur.at("trade_history").as_array().size(), 1u);
    EXPECT_EQ(cur.at("performance").at("closed_trades").as_int64(), 1);
}
