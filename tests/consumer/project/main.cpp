// Uses the library as an outside project would: through add_subdirectory()
// (the library and its plugins) or an installed package (also the seed's
// API, tradestate::fno_runner_engine, and tradestate::postgres_follow).
#include <tradestate/tradestate.hpp>

#if CONSUMER_INSTALLED
#include <fno_runner/trading_system.hpp>
#include <tradestate/postgres/follower.hpp>
#endif

#include <filesystem>
#include <iostream>

int main(int argc, char** argv) {
    tradestate::Portfolio pf(tradestate::Money::parse("1000000.00"));
    tradestate::Position p;
    p.symbol = "BANKNIFTY25SEP57200CE";
    p.shares = 35;
    p.lot_size = 35;
    p.entry_price = tradestate::Money::parse("395.56");
    pf.open(p, tradestate::Money::parse("20"));
    tradestate::SessionState s;
    s.portfolio = pf;
    s.iteration = 7;
    const auto back = boost::json::value_to<tradestate::SessionState>(boost::json::value_from(s));
    if (!(back == s) || back.portfolio.reconcile() != tradestate::Money{}) return 1;
    std::cout << "consumer: tradestate " << tradestate::version_string << ", cash " << back.portfolio.cash().format() << "\n";
    // The plugins (installed, or built beside the program) are found with no configuration at all.
    if (argc < 2) return 2;
    tradestate::Config cfg;
    cfg.persistence.state_dir = argv[1];
    cfg.persistence.fsync = false;
    std::filesystem::create_directories(cfg.persistence.state_dir);
    auto persister = tradestate::open_persister<tradestate::SessionState>(cfg);
    persister->save(s, "consumer");
    const auto loaded = persister->load("consumer");
    if (!loaded || !(loaded->state == s)) return 3;
    // The crash-safe session: an acknowledged operation is there on the next start.
    {
        auto session = tradestate::open_session<tradestate::SessionState>(cfg, "consumer-session");
        if (!session->resume().resumed) session->start_fresh(s);
        session->record(tradestate::session_op::cash(tradestate::Money::parse("500.00"), "top-up"));
        session->close();
    }
    auto again = tradestate::open_session<tradestate::SessionState>(cfg, "consumer-session");
    if (!again->resume().resumed || again->state().portfolio.cash() != pf.cash() + tradestate::Money::parse("500.00"))
        return 4;
    std::cout << "consumer: saved and loaded through " << persister->backend().name() << "\n";
#if CONSUMER_INSTALLED
    // The seed's programmatic API, from the installed package.
    {
        auto config = tradestate::Config::defaults();
        config.persistence.state_dir = std::filesystem::path(argv[1]) / "seed-api";
        config.persistence.fsync = false;
        config.trading.settings.check_interval = 0;
        auto system = fno::create_fno_trading_system("paper", config);
        (void)system->load_system_state();
        system->on_iteration([&](const tradestate::SessionState& st) {
            if (st.iteration >= 5) system->request_stop();
        });
        if (system->run_continuous_monitoring() != 0) return 5;
        system->save_system_state("my_session.json");
        if (!system->load_system_state("my_session.json") || system->state().iteration != 5) return 6;
        std::cout << "consumer: the seed's API saved and loaded my_session.json at iteration 5\n";
    }
    // tradestate::postgres_follow: a follower of a server that is not there says so.
    try {
        tradestate::postgres::Follower f(boost::json::object{{"url", "postgresql://127.0.0.1:1/none?connect_timeout=2"}});
        return 7;
    } catch (const tradestate::Error& e) {
        if (e.code() != tradestate::Errc::io) return 8;
        std::cout << "consumer: postgres follower refused as expected\n";
    }
#endif
    return 0;
}
