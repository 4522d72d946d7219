// Shared helpers of the journal tests: a temp dir and a deterministic trade stream.
#pragma once

#include <tradestate/journal.hpp>

#include <gtest/gtest.h>

#include <filesystem>
#include <random>
#include <string>

namespace jt {

using namespace tradestate;

struct TempDir {
    std::filesystem::path path;
    TempDir() {
        std::random_device rd;
        path = std::filesystem::temp_directory_path() /
               ("tradestate-journal-" + std::to_string(::getpid()) + "-" + std::to_string(rd()));
        std::filesystem::create_directories(path);
    }
    ~TempDir() {
        std::error_code ec;
        std::filesystem::remove_all(path, ec);
    }
};

inline SessionState fresh_state(Money cash = Money::from_rupees(1'000'000)) {
    SessionState s;
    s.timestamp = Timestamp::from_iso("2025-10-01T09:15:00");
    s.portfolio = Portfolio(cash);
    s.runner["engine"] = "test";
    return s;
}

/// Operation number k of a deterministic stream: odd k opens SYM<k>, even k
/// closes SYM<k-1>; every 7th is a cash deposit instead, every 5th a step.
inline boost::json::object op_number(std::uint64_t k, const SessionState& s) {
    const auto ki = static_cast<std::int64_t>(k);
    if (k % 7 == 0) return journal_op::cash(Money::from_paise(1000 + ki * 37), "deposit " + std::to_string(k));
    if (k % 5 == 0) {
        SessionState t; // only what step() records
        t.iteration = ki;
        t.timestamp = Timestamp::from_micros(s.timestamp.micros() + ki * 1'000'000);
        t.runner = s.runner;
        t.runner["clock"] = ki;
        t.market_analysis = boost::json::object{{"k", ki}};
        return journal_op::step(t);
    }
    // Pair opens and closes by looking at what is open.
    if (!s.portfolio.positions().empty() && k % 2 == 0) {
        const auto& [sym, p] = *s.portfolio.positions().begin();
        const Money exit = Money::from_paise(p.entry_price.paise() + (ki % 3 - 1) * 1234 + 1);
        return journal_op::close(sym, exit, Timestamp::from_micros(s.timestamp.micros() + ki), "take_profit",
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
    return journal_op::open(p, Money::from_paise(2300 + ki % 17));
}

} // namespace jt
