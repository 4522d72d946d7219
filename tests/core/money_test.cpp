#include <tradestate/money.hpp>
#include <tradestate/portfolio.hpp>
#include <tradestate/detail/json.hpp>

#include <gtest/gtest.h>

#include <random>

using tradestate::Money;
using tradestate::Portfolio;
using tradestate::Position;
using tradestate::Side;
using tradestate::Timestamp;

TEST(Money, ParsesDecimalTextExactly) {
    EXPECT_EQ(Money::parse("914462.59").paise(), 91446259);
    EXPECT_EQ(Money::parse("-28.4").paise(), -2840);
    EXPECT_EQ(Money::parse("1,000,000.00").paise(), 100000000);
    EXPECT_EQ(Money::parse("₹8,96,439.16").paise(), 89643916);
    EXPECT_EQ(Money::parse("₹-28.40").paise(), -2840);
    EXPECT_EQ(Money::parse("1e3").paise(), 100000);
    EXPECT_EQ(Money::parse("0.1").paise(), 10);
    EXPECT_EQ(Money::parse("220.425").paise(), 22043); // half away from zero
    EXPECT_EQ(Money::parse("-220.425").paise(), -22043);
    EXPECT_EQ(Money::parse("220.4249").paise(), 22042);
}

TEST(Money, RejectsNonAmounts) {
    for (const char* s : {"", "abc", "12.3.4", "1,2x", "--5", "1e999", "99999999999999999999999"})
        EXPECT_THROW((void)Money::parse(s), tradestate::Error) << s;
    EXPECT_THROW((void)Money::from_double_rounded(std::nan("")), tradestate::Error);
}

TEST(Money, FormatsLikeTheSeed) {
    EXPECT_EQ(Money::parse("896439.16").format(), "₹896,439.16");
    EXPECT_EQ(Money::parse("999971.60").format(), "₹999,971.60");
    EXPECT_EQ(Money::parse("-28.40").format(), "-₹28.40");
    EXPECT_EQ(Money::parse("-₹28.40").paise(), -2840);
    EXPECT_EQ(Money::parse("896439.16").format_indian(), "₹8,96,439.16");
    EXPECT_EQ(Money::parse("123456789.05").format_indian(), "₹12,34,56,789.05");
    EXPECT_EQ(Money::parse("999.99").format(), "₹999.99");
    EXPECT_EQ(Money::from_paise(-2840).percent_of(Money::from_rupees(1000000)), "-0.00");
    EXPECT_EQ(Money::from_rupees(123456).percent_of(Money::from_rupees(1000000)), "12.35");
}

TEST(Money, TheProcessGroupingIsWhatFormatUses) {
    ASSERT_EQ(tradestate::money_grouping(), tradestate::MoneyGrouping::western);
    const auto m = Money::parse("-2953123.49");
    tradestate::set_money_grouping(tradestate::MoneyGrouping::indian);
    EXPECT_EQ(m.format(), "-₹29,53,123.49");
    EXPECT_EQ(Money::parse(m.format()), m);
    tradestate::set_money_grouping(tradestate::MoneyGrouping::western);
    EXPECT_EQ(m.format(), "-₹2,953,123.49");
    EXPECT_EQ(m.format(tradestate::MoneyGrouping::indian), "-₹29,53,123.49");
}

TEST(Money, ArithmeticOverflowIsAnError) {
    const auto big = Money::from_paise(INT64_MAX);
    EXPECT_THROW((void)(big + Money::from_paise(1)), tradestate::Error);
    EXPECT_THROW((void)(big * 2), tradestate::Error);
    EXPECT_THROW((void)(-Money::from_paise(INT64_MIN)), tradestate::Error);
}

TEST(Money, JsonNumbersRoundTripToThePaisa) {
    std::mt19937_64 rng(42);
    std::uniform_int_distribution<std::int64_t> d(-100'000'000'000'000, 100'000'000'000'000); // ±1e12 rupees
    for (int i = 0; i < 100000; ++i) {
        const auto m = Money::from_paise(d(rng));
        const std::string text = tradestate::detail::print(boost::json::value_from(m));
        const auto back = boost::json::value_to<Money>(tradestate::detail::parse(text, "t"));
        ASSERT_EQ(back, m) << text;
    }
}

// 10,000 random opens and closes: the invariant holds to the paisa after each,
// and cash equals an independent ledger kept in plain integers.
TEST(Money, PortfolioInvariantOverTenThousandRandomTrades) {
    std::mt19937_64 rng(20250929);
    const std::int64_t initial = 1'000'000'00;
    Portfolio pf(Money::from_paise(initial));
    std::int64_t ledger = initial, realized = 0, charges_total = 0;
    std::uniform_int_distribution<std::int64_t> price(5, 90'000); // 0.05 .. 900.00 rupees
    std::uniform_int_distribution<int> lots(1, 4), pick(0, 9), syms(0, 49);
    std::uniform_int_distribution<std::int64_t> charge(0, 5000);
    const Timestamp t0 = Timestamp::from_iso("2025-09-29T09:15:00");
    int ops = 0;
    while (ops < 10000) {
        const std::string sym = "NIFTY25SEP" + std::to_string(24000 + 50 * syms(rng)) + "CE";
        const std::int64_t ch = charge(rng);
        if (!pf.has(sym) && pick(rng) < 6) {
            Position p;
            p.symbol = sym;
            p.lot_size = 75;
            p.shares = 75 * lots(rng);
            p.side = pick(rng) < 3 ? Side::short_ : Side::long_;
            p.entry_price = Money::from_paise(price(rng));
            p.entry_time = t0;
            p.strategy = "test";
            const std::int64_t cost = p.entry_price.paise() * p.shares * (p.side == Side::long_ ? 1 : -1);
            if (cost + ch > ledger) continue;
            pf.open(p, Money::from_paise(ch));
            ledger -= cost + ch;
            charges_total += ch;
        } else if (pf.has(sym)) {
            const auto& p = pf.positions().at(sym);
            const std::int64_t s = p.side == Side::long_ ? 1 : -1;
            const std::int64_t exitp = price(rng);
            const std::int64_t entry = p.entry_price.paise(), qty = p.shares;
            auto t = pf.close(sym, Money::from_paise(exitp), t0, "test", Money::from_paise(ch));
            ledger += exitp * qty * s - ch;
            realized += (exitp - entry) * qty * s;
            charges_total += ch;
            ASSERT_EQ(t.pnl.paise(), (exitp - entry) * qty * s);
        } else {
            continue;
        }
        ++ops;
        ASSERT_EQ(pf.reconcile(), Money{}) << "after op " << ops;
        ASSERT_EQ(pf.cash().paise(), ledger);
        ASSERT_EQ(pf.total_pnl().paise(), realized);
        ASSERT_EQ(pf.total_charges().paise(), charges_total);
    }
    // And the same after a JSON round trip.
    const auto text = tradestate::detail::print(boost::json::value_from(pf));
    const auto back = Portfolio::from_json(tradestate::detail::parse(text, "pf"), "$.portfolio");
    EXPECT_EQ(back, pf);
    EXPECT_EQ(back.reconcile(), Money{});
    EXPECT_EQ(back.trades_count(), 10000);
}

TEST(Money, PortfolioRefusesBadOrders) {
    Portfolio pf(Money::from_rupees(1000));
    Position p;
    p.symbol = "X";
    p.shares = 10;
    p.entry_price = Money::from_rupees(200);
    EXPECT_THROW(pf.open(p), tradestate::Error); // needs 2000, has 1000
    p.entry_price = Money::from_rupees(50);
    pf.open(p);
    EXPECT_THROW(pf.open(p), tradestate::Error); // already open
    p.symbol = "Y";
    p.shares = 0;
    EXPECT_THROW(pf.open(p), tradestate::Error);
    EXPECT_THROW((void)pf.close("Z", Money{}, Timestamp{}, "x"), tradestate::Error);
    EXPECT_EQ(pf.cash(), Money::from_rupees(500));
    EXPECT_EQ(pf.reconcile(), Money{});
}
