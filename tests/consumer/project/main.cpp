// Uses the library as an outside project would.
#include <tradestate/tradestate.hpp>

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
#if CONSUMER_WITH_PLUGINS
    // The installed plugins are found with no configuration at all.
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
#else
    (void)argc;
    (void)argv;
#endif
    return 0;
}
