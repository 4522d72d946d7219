// Options of the postgres backend for the shared conformance suite
// (tests/conformance/backends.hpp): the server URL comes from
// TRADESTATE_TEST_PG_URL, which the ctest fixture in pg_fixture.cmake sets
// after starting a private server; each test's state_dir maps to its own
// schema, so tests are isolated and a child process with the same
// state_dir sees the same store.
#pragma once

#include <tradestate/backend.hpp>
#include <tradestate/detail/checksum.hpp>

#include <cstdlib>
#include <optional>
#include <string>

namespace tradestate::testing {

inline std::optional<std::string> postgres_options(BackendOptions& opts) {
    const char* url = std::getenv("TRADESTATE_TEST_PG_URL");
    if (!url || !*url)
        return std::string("TRADESTATE_TEST_PG_URL is not set: run through ctest, whose fixture "
                           "tradestate_pg_server starts a private PostgreSQL server (scripts/pg-test-server)");
    opts.settings["url"] = url;
    opts.settings["schema"] = "c_" + detail::checksum_text(detail::xxh3(opts.state_dir.string())).substr(5);
    opts.settings["retry_initial_ms"] = 20;
    opts.settings["retry_max_ms"] = 200;
    return std::nullopt;
}

} // namespace tradestate::testing
