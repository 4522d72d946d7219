// tradestate tests — where the build put the programs, plugins and data.
#pragma once

#include <filesystem>
#include <string>

namespace tradestate::testing {

[[nodiscard]] std::filesystem::path source_dir();  ///< the repository
[[nodiscard]] std::filesystem::path plugin_dir();  ///< the build's plugin directory
[[nodiscard]] std::filesystem::path data_dir();    ///< tests/data
/// The seed's example fno_system_state.json (tests/data), the one fixture of its kind.
[[nodiscard]] std::filesystem::path seed_file();

/// The build's programs; empty when the build has no apps (TRADESTATE_BUILD_APPS=OFF).
[[nodiscard]] std::string runner_bin();
[[nodiscard]] std::string tool_bin();
[[nodiscard]] std::string dashboard_bin();

/// The private PostgreSQL server ctest starts (empty outside ctest).
[[nodiscard]] std::string pg_url();

} // namespace tradestate::testing
