// Unit tests of the runner's engine: NSE facts, RNG state, pricing, charges,
// and the simulation's determinism, money invariant and max_positions.
#include <fno_runner/market.hpp>
#include <fno_runner/nse.hpp>
#include <fno_runner/rng.hpp>
#include <fno_runner/settings.hpp>
#include <fno_runner/simulation.hpp>

#include <tradestate/detail/json.hpp>
#include <tradestate/session_state.hpp>

#include <tradestate_test/logging.hpp>

#include <gtest/gtest.h>
#include <spdlog/spdlog.h>

#include <cmath>

using namespace fno;
using tradestate::Money;
using tradestate::SessionState;

namespace {
std::shared_ptr<spdlog::logger> quiet() { return tradestate::testing::quiet_logger(); }
std::string doc_text(const SessionState& s) { return tradestate::detail::print(boost::json::value_from(s)); }
/// One step, its operations applied to `st` (as a Session would).
StepReport step(Simulation& sim, SessionState& st) {
    return sim.step(st, [&](const boost::json::object& op) { tradestate_apply(st, op, "step"); });
}
} // namespace

TEST(Nse, ExpiriesAreTuesdaysMovedBackOverHolidays) {
    const auto s = default_settings();
    const auto& cal = s.market.calendar;
    const auto& nifty = s.market.instrument("NIFTY");
    const auto& bank = s.market.instrument("BANKNIFTY");
    // Weekly NIFTY expiries from 1 Dec 2025: Tuesdays 2, 9, 16, 23, 30 December.
    auto w = cal.expiries(nifty, make_day(2025, 12, 1), 5);
    ASSERT_EQ(w.size(), 5u);
    EXPECT_EQ(format_day(w[0]), "2025-12-02");
    EXPECT_EQ(format_day(w[4]), "2025-12-30");
    for (auto d : w) EXPECT_EQ(weekday(d), 2);
    // 31 March 2026 (last Tuesday) is a holiday: the monthly expiry moves to Monday 30 March.
    EXPECT_EQ(format_day(cal.monthly_expiry(2026, 3)), "2026-03-30");
    // 3 March 2026 (Holi, a Tuesday): the weekly expiry moves to Monday 2 March.
    auto m = cal.expiries(nifty, make_day(2026, 2, 25), 2);
    EXPECT_EQ(format_day(m[0]), "2026-03-02");
    EXPECT_EQ(format_day(m[1]), "2026-03-10");
    // BANKNIFTY is monthly only.
    auto b = cal.expiries(bank, make_day(2025, 12, 1), 2);
    EXPECT_EQ(format_day(b[0]), "2025-12-30");
    EXPECT_EQ(format_day(b[1]), "2026-01-27");
    EXPECT_FALSE(cal.is_trading_day(make_day(2026, 1, 26)));
    EXPECT_FALSE(cal.is_trading_day(make_day(2025, 12, 6)));
    EXPECT_TRUE(cal.is_trading_day(make_day(2025, 12, 8)));
}

TEST(Nse, LotSizeDependsOnExpiry) {
    const auto s = default_settings();
    EXPECT_EQ(s.market.instrument("NIFTY").lot_size(make_day(2025, 12, 30)), 75);
    EXPECT_EQ(s.market.instrument("NIFTY").lot_size(make_day(2026, 1, 6)), 65);
    EXPECT_EQ(s.market.instrument("BANKNIFTY").lot_size(make_day(2025, 12, 30)), 35);
    EXPECT_EQ(s.market.instrument("BANKNIFTY").lot_size(make_day(2026, 1, 27)), 30);
    EXPECT_THROW((void)s.market.instrument("NIFTY").lot_size(make_day(2020, 1, 1)), tradestate::Error);
}

TEST(Nse, SymbolsRoundTrip) {
    const auto s = default_settings();
    const auto& cal = s.market.calendar;
    Contract monthly{"NIFTY", cal.monthly_expiry(2025, 9), true, 24650, OptionType::call};
    EXPECT_EQ(monthly.symbol(), "NIFTY25SEP24650CE");
    Contract weekly{"NIFTY", make_day(2025, 9, 9), false, 24650, OptionType::call};
    EXPECT_EQ(weekly.symbol(), "NIFTY2590924650CE");
    Contract oct{"NIFTY", make_day(2025, 10, 14), false, 25000, OptionType::put};
    EXPECT_EQ(oct.symbol(), "NIFTY25O1425000PE");
    Contract bank{"BANKNIFTY", cal.monthly_expiry(2025, 12), true, 57200, OptionType::put};
    EXPECT_EQ(bank.symbol(), "BANKNIFTY25DEC57200PE");
    const std::vector<std::string> names{"NIFTY", "BANKNIFTY"};
    for (const auto& c : {monthly, weekly, oct, bank}) EXPECT_EQ(parse_symbol(c.symbol(), names, cal), c) << c.symbol();
    EXPECT_THROW((void)parse_symbol("RELIANCE25SEP2500CE", names, cal), tradestate::Error);
    EXPECT_THROW((void)parse_symbol("NIFTY25XYZ24650CE", names, cal), tradestate::Error);
    EXPECT_THROW((void)parse_symbol("NIFTY25SEP24650XX", names, cal), tradestate::Error);
    EXPECT_THROW((void)parse_symbol("NIFTY25", names, cal), tradestate::Error);
}

TEST(Rng, StateRoundTripContinuesTheSameSequence) {
    Rng a(42);
    for (int i = 0; i < 1001; ++i) (void)a.normal(); // odd count: a spare normal is pending
    Rng b(7);
    b.set_state(a.state());
    EXPECT_TRUE(a == b);
    for (int i = 0; i < 100; ++i) ASSERT_EQ(Rng::bits(a.normal()), Rng::bits(b.normal()));
    EXPECT_THROW(b.set_state({"x"}), tradestate::Error);
    EXPECT_THROW(b.set_state({"0000000000000000", "0000000000000000", "0000000000000000", "0000000000000000", ""}),
                 tradestate::Error);
}

TEST(Pricing, PutCallParityAndSmile) {
    const double S = 26000, K = 26100, T = 7.0 / 365, r = 0.065, q = 0.012, v = 0.12;
    const double c = black_scholes(OptionType::call, S, K, T, r, q, v);
    const double p = black_scholes(OptionType::put, S, K, T, r, q, v);
    EXPECT_NEAR(c - p, S * std::exp(-q * T) - K * std::exp(-r * T), 1e-6);
    EXPECT_GT(c, 0);
    const auto inst = default_settings().market.instrument("NIFTY");
    EXPECT_GT(smile_iv(inst, 0.11, S, 24000), smile_iv(inst, 0.11, S, 26000)); // downside skew
    EXPECT_EQ(to_tick_paise(123.456), 12345);
    EXPECT_EQ(to_tick_paise(0.0), 5);
}

TEST(Charges, ExactPaise) {
    ChargeSchedule c;
    // Buy ₹1,00,000 of premium: ₹20 brokerage + ₹35.03 txn + ₹0.10 SEBI + ₹3.00 stamp + GST 18% of 55.13 = 9.92
    EXPECT_EQ(c.on_order(Money::from_rupees(100000), true).paise(), 2000 + 3503 + 10 + 300 + 992);
    // Sell: STT ₹100 instead of stamp duty.
    EXPECT_EQ(c.on_order(Money::from_rupees(100000), false).paise(), 2000 + 3503 + 10 + 10000 + 992);
}

namespace {
SimulationSettings test_settings(std::uint64_t seed = 11) {
    auto s = default_settings();
    s.seed = seed;
    s.sim_clock = true;
    return s;
}
void fresh(Simulation& sim, SessionState& st, std::int64_t max_positions = 5) {
    st = SessionState{};
    st.settings.max_positions = max_positions;
    sim.start_fresh(st, Money::from_rupees(1000000));
}
} // namespace

TEST(Simulation, ResumeAfterSaveAndLoadEqualsUninterruptedRun) {
    Simulation ref(test_settings(), quiet());
    SessionState a;
    fresh(ref, a);
    for (int i = 0; i < 600; ++i) (void)step(ref, a);

    Simulation first(test_settings(), quiet());
    SessionState b;
    fresh(first, b);
    for (int i = 0; i < 237; ++i) (void)step(first, b);
    // through JSON text, as a backend stores it
    const auto text = doc_text(b);
    SessionState loaded = boost::json::value_to<SessionState>(tradestate::detail::parse(text, "saved"));
    Simulation second(test_settings(999), quiet()); // another configured seed must not matter on resume
    second.resume(loaded);
    for (int i = 237; i < 600; ++i) (void)step(second, loaded);
    EXPECT_EQ(doc_text(a), doc_text(loaded));
    EXPECT_GT(a.portfolio.trade_history().size(), 5u) << "the run should trade";
}

TEST(Simulation, MoneyInvariantAndMaxPositionsHoldEveryStep) {
    for (std::int64_t maxp : {1, 2, 4, 5}) {
        Simulation sim(test_settings(static_cast<std::uint64_t>(100 + maxp)), quiet());
        SessionState st;
        fresh(sim, st, maxp);
        std::size_t peak = 0;
        for (int i = 0; i < 1500; ++i) {
            (void)step(sim, st);
            ASSERT_LE(st.portfolio.positions().size(), static_cast<std::size_t>(maxp)) << "iteration " << st.iteration;
            ASSERT_EQ(st.portfolio.reconcile(), Money{}) << "iteration " << st.iteration;
            peak = std::max(peak, st.portfolio.positions().size());
        }
        EXPECT_GE(peak, 1u) << "max_positions " << maxp << ": nothing was ever opened";
        Money pnl;
        for (const auto& t : st.portfolio.trade_history()) pnl += t.pnl;
        EXPECT_EQ(pnl, st.portfolio.total_pnl());
    }
}

TEST(Simulation, ExpiredPositionsSettleAtIntrinsic) {
    Simulation sim(test_settings(5), quiet());
    SessionState st;
    fresh(sim, st);
    // Run until something expires (weekly NIFTY contracts are held at most a day, so force it:
    // hold forever and never stop out).
    auto s = test_settings(5);
    s.risk.stop_loss_pct = 0.99;
    s.risk.take_profit_pct = 10.0;
    s.risk.max_hold_minutes = 10'000'000;
    Simulation hold(s, quiet());
    fresh(hold, st);
    bool settled = false;
    for (int i = 0; i < 3000 && !settled; ++i) {
        auto rep = step(hold, st);
        for (const auto& t : rep.closed) {
            if (t.reason != "expiry") continue;
            settled = true;
            auto c = parse_symbol(t.symbol, hold.settings().market.names(), hold.settings().market.calendar);
            EXPECT_EQ(c.expiry, ist_day(hold.market_state().clock));
            EXPECT_EQ(t.exit_price.paise(), hold.market().intrinsic_paise(hold.market_state(), c));
            EXPECT_EQ(t.charges, Money{});
        }
    }
    EXPECT_TRUE(settled);
    EXPECT_EQ(st.portfolio.reconcile(), Money{});
}

TEST(Settings, RunnerSectionsAreReadAndCheckedWithLocations) {
    auto cfg = tradestate::Config::parse(R"(
[trading]
check_interval = 60
[runner]
seed = 5
sim_clock = true
[risk]
stop_loss_pct = 0.1
[instruments]
holidays = ["2025-12-02"]
[instruments.NIFTY]
strike_step = 100
lot_sizes = [{ from_expiry = "2024-01-01", lot = 50 }]
)",
                                         "t.toml", runner_config_schema());
    auto s = settings_from_config(cfg);
    EXPECT_EQ(s.seed, 5u);
    EXPECT_TRUE(s.sim_clock);
    EXPECT_EQ(s.market.step_seconds, 60);
    EXPECT_DOUBLE_EQ(s.risk.stop_loss_pct, 0.1);
    EXPECT_EQ(s.market.instruments.size(), 1u);
    EXPECT_EQ(s.market.instrument("NIFTY").strike_step, 100);
    EXPECT_EQ(s.market.instrument("NIFTY").lot_size(make_day(2026, 6, 2)), 50);
    // holiday on Tuesday 2 Dec 2025: that week's expiry moves to Monday 1 Dec
    EXPECT_EQ(format_day(s.market.calendar.expiries(s.market.instrument("NIFTY"), make_day(2025, 12, 1), 1)[0]),
              "2025-12-01");
    auto bad = tradestate::Config::parse("[risk]\nstop_loss = 0.1\n", "bad.toml", runner_config_schema());
    try {
        (void)settings_from_config(bad);
        FAIL() << "unknown key accepted";
    } catch (const tradestate::Error& e) {
        EXPECT_NE(std::string(e.what()).find("bad.toml:2:"), std::string::npos) << e.what();
        EXPECT_NE(std::string(e.what()).find("risk.stop_loss"), std::string::npos) << e.what();
    }
}
