// Example: the backend is a configuration choice, not a code change.
//
//   switch_backend CONFIG.toml
//
// This program never names a backend: it saves a session, reads it back and
// lists the sessions through whatever `persistence.backend` the file names
// (json-files, mmap-binary, compressed-archive, postgres). Run it twice with
// two config files to see the same code on two storage formats.
#include <tradestate/tradestate.hpp>

#include <iostream>

int main(int argc, char** argv) try {
    if (argc != 2) {
        std::cerr << "usage: switch_backend CONFIG.toml\n";
        return 2;
    }
    const auto cfg = tradestate::Config::load(argv[1]);
    std::filesystem::create_directories(cfg.persistence.state_dir);
    auto persister = tradestate::open_persister<tradestate::SessionState>(cfg);

    tradestate::SessionState s;
    s.timestamp = tradestate::Timestamp::now();
    s.iteration = 42;
    s.portfolio = tradestate::Portfolio(cfg.trading.initial_cash);
    tradestate::Position p;
    p.symbol = "NIFTY25SEP24650CE";
    p.lot_size = 75;
    p.shares = 75;
    p.entry_price = tradestate::Money::parse("220.42");
    p.stop_loss = tradestate::Money::parse("207.19");
    p.take_profit = tradestate::Money::parse("246.87");
    p.entry_time = s.timestamp;
    p.strategy = "straddle";
    s.portfolio.open(p, tradestate::Money::parse("20.00"));

    {
        auto lease = persister->acquire_writer("example");
        persister->save(s, "example");
    }
    const auto back = persister->load("example");
    if (!back || !(back->state == s)) {
        std::cerr << "switch_backend: state did not read back identical\n";
        return 1;
    }
    std::cout << "backend " << persister->backend().name() << ": saved and loaded session 'example' ("
              << back->state.portfolio.positions().size() << " position, cash " << back->state.portfolio.cash().format()
              << ")\n";
    std::cout << tradestate::format_sessions(persister->list());
    return 0;
} catch (const std::exception& e) {
    std::cerr << "switch_backend: " << e.what() << "\n";
    return 1;
}
