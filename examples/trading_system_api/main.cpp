// The seed's programmatic API in C++: create a paper-trading system, load the
// previous session, run the monitoring loop (with auto-save), save under a
// custom name and load it back.
//
//   example_trading_system_api STATE_DIR
//
// Run it twice: the second run resumes where the first stopped.
#include <fno_runner/trading_system.hpp>

#include <iostream>

int main(int argc, char** argv) {
    if (argc != 2) {
        std::cerr << "usage: " << argv[0] << " STATE_DIR\n";
        return 2;
    }
    try {
        auto config = tradestate::Config::defaults(); // or tradestate::Config::load("config.toml", fno::runner_config_schema())
        config.persistence.state_dir = argv[1];
        config.persistence.fsync = false;
        config.trading.settings.check_interval = 0; // no pause between iterations in this demo (the market still steps 5 min)

        // system = create_fno_trading_system(trading_mode='paper')
        auto system = fno::create_fno_trading_system("paper", config);

        // system.load_system_state()
        if (!system->load_system_state()) std::cout << "no previous session: starting a new one\n";

        // Stop after 25 more iterations; a dashboard would use the same hook.
        const auto stop_at = system->state().iteration + 25;
        system->on_iteration([&](const tradestate::SessionState& s) {
            if (s.iteration >= stop_at) system->request_stop();
        });

        // system.run_continuous_fno_monitoring(): auto-saves every 10 iterations, saves on exit
        if (const int rc = system->run_continuous_monitoring(); rc != 0) return rc;

        // system.save_system_state("my_session") / load_system_state("my_session")
        system->save_system_state("my_session");
        system->auto_save_state();
        if (!system->load_system_state("my_session")) return 1;
        std::cout << "example: session 'my_session' saved and loaded at iteration " << system->state().iteration << '\n';
        return 0;
    } catch (const tradestate::Error& e) {
        std::cerr << "error: " << e.what() << '\n';
        return 1;
    }
}
