#include <tradestate_test/paths.hpp>

#include <cstdlib>

#ifndef TRADESTATE_TEST_SOURCE_DIR
#error "the test-support library is built by tests/support/CMakeLists.txt"
#endif

namespace tradestate::testing {

std::filesystem::path source_dir() { return TRADESTATE_TEST_SOURCE_DIR; }
std::filesystem::path plugin_dir() { return TRADESTATE_TEST_PLUGIN_DIR; }
std::filesystem::path data_dir() { return source_dir() / "tests" / "data"; }
std::filesystem::path seed_file() { return data_dir() / "seed_fno_system_state.json"; }
std::string runner_bin() { return TRADESTATE_TEST_RUNNER_BIN; }
std::string tool_bin() { return TRADESTATE_TEST_TOOL_BIN; }
std::string dashboard_bin() { return TRADESTATE_TEST_DASHBOARD_BIN; }

std::string pg_url() {
    const char* u = std::getenv("TRADESTATE_TEST_PG_URL");
    return u ? u : "";
}

} // namespace tradestate::testing
