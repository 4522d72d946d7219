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

/// The first line of a test's config.toml that has fno_runner's sections
/// and is read by the other programs too (as the repository's config.toml
/// says; RunnerE2E checks it against fno::runner_config_schema()).
inline constexpr const char* runner_app_sections =
    "app_sections = [\"instruments\", \"runner\", \"risk\", \"strategies\", \"charges\"]\n";

/// The private PostgreSQL server ctest starts (empty outside ctest).
[[nodiscard]] std::string pg_url();

} // namespace tradestate::testing
