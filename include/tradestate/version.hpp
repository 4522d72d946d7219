// tradestate — version of the library and of the plugin ABI.
#pragma once

#include <cstdint>
#include <string>

#define TRADESTATE_VERSION_MAJOR 0
#define TRADESTATE_VERSION_MINOR 3
#define TRADESTATE_VERSION_PATCH 0
#define TRADESTATE_VERSION_STRING "0.3.0"

namespace tradestate {

inline constexpr int version_major = TRADESTATE_VERSION_MAJOR;
inline constexpr int version_minor = TRADESTATE_VERSION_MINOR;
inline constexpr int version_patch = TRADESTATE_VERSION_PATCH;
inline constexpr const char* version_string = TRADESTATE_VERSION_STRING;

/// Version of the binary contract between the host and backend plugins
/// (the layout of everything in backend.hpp). Bump it whenever a type that
/// crosses the boundary changes; a plugin built against another value is
/// refused before any of its code runs.
/// History: CHANGELOG.md.
inline constexpr std::uint32_t plugin_abi_version = 3;

/// What `--version` prints for `program`: "fno_runner 0.3.0 (plugin ABI 3)".
[[nodiscard]] inline std::string version_line(const std::string& program) {
    return program + " " + version_string + " (plugin ABI " + std::to_string(plugin_abi_version) + ")";
}

} // namespace tradestate
