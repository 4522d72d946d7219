// tradestate tests — the real plugins of this build, loaded through Boost.DLL.
#pragma once

#include <tradestate/backend.hpp>

#include <boost/json/object.hpp>

#include <filesystem>
#include <memory>
#include <string>
#include <vector>

namespace tradestate::testing {

/// Options for a backend in `state_dir` (quiet logger; fsync off unless asked).
[[nodiscard]] BackendOptions options_in(const std::filesystem::path& state_dir, bool fsync = false,
                                        boost::json::object settings = {});
/// Load backend `name` from the build's plugin directory.
[[nodiscard]] std::shared_ptr<Backend> open_backend(const std::string& name, const BackendOptions& opts);
[[nodiscard]] std::shared_ptr<Backend> open_backend(const std::string& name, const std::filesystem::path& state_dir,
                                                    boost::json::object settings = {}, bool fsync = true);
/// Every plugin in the build's plugin directory.
[[nodiscard]] std::vector<std::string> available_backends();
/// The plugins that keep their files in state_dir, asked (PluginLoader::storage_of), never named.
[[nodiscard]] std::vector<std::string> file_backends();

} // namespace tradestate::testing
