// A writer process for the postgres lease tests. Usage:
//   pg_lease_racer URL SCHEMA SESSION ITERATION
// Opens the postgres backend, prints "ready", waits for a line "go" on
// stdin, then tries to take the writer lease of SESSION:
//   won:    prints "won <pid>", saves a document with ITERATION, prints
//           "saved <sequence>", and holds the lease until stdin closes;
//   locked: prints "locked <message>" and exits with status 3.
// Any other failure prints "error <message>" and exits with status 1.
#include <tradestate_test/support.hpp>

#include <tradestate/backend.hpp>
#include <tradestate/plugin_loader.hpp>

#include <spdlog/spdlog.h>

#include <cstdio>
#include <iostream>
#include <string>

#include <unistd.h>

int main(int argc, char** argv) {
    if (argc != 5) {
        std::cerr << "usage: pg_lease_racer URL SCHEMA SESSION ITERATION\n";
        return 2;
    }
    const std::string session = argv[3];
    const std::int64_t iteration = std::stoll(argv[4]);
    try {
        auto quiet = tradestate::testing::quiet_logger();
        tradestate::PluginLoader loader({tradestate::testing::plugin_dir()}, quiet);
        tradestate::BackendOptions opts;
        opts.logger = quiet;
        opts.settings["url"] = argv[1];
        opts.settings["schema"] = argv[2];
        opts.settings["application_name"] = "pg_lease_racer";
        auto backend = loader.open("postgres", opts);
        std::cout << "ready" << std::endl;
        std::string line;
        if (!std::getline(std::cin, line) || line != "go") return 2;
        std::unique_ptr<tradestate::WriterLease> lease;
        try {
            lease = backend->acquire_writer(session);
        } catch (const tradestate::Error& e) {
            if (e.code() != tradestate::Errc::locked) throw;
            std::cout << "locked " << e.what() << std::endl;
            return 3;
        }
        std::cout << "won " << ::getpid() << std::endl;
        tradestate::Document doc;
        doc.main = boost::json::object{{"iteration", iteration}, {"writer_pid", ::getpid()}};
        tradestate::SaveMeta meta;
        meta.iteration = iteration;
        meta.saved_at = "2025-09-29T11:49:10.218268";
        backend->save(session, doc, meta);
        std::cout << "saved " << backend->load(session)->sequence << std::endl;
        while (std::getline(std::cin, line)) {
        }
        lease.reset();
        return 0;
    } catch (const std::exception& e) {
        std::cout << "error " << e.what() << std::endl;
        return 1;
    }
}
