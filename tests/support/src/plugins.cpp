#include <tradestate_test/logging.hpp>
#include <tradestate_test/paths.hpp>
#include <tradestate_test/plugins.hpp>

#include <tradestate/plugin_loader.hpp>

namespace tradestate::testing {

BackendOptions options_in(const std::filesystem::path& state_dir, bool fsync, boost::json::object settings) {
    BackendOptions o;
    o.state_dir = state_dir;
    o.fsync = fsync;
    o.keep_backups = 3;
    o.settings = std::move(settings);
    o.logger = quiet_logger();
    return o;
}

std::shared_ptr<Backend> open_backend(const std::string& name, const BackendOptions& opts) {
    PluginLoader loader({plugin_dir()}, quiet_logger());
    return loader.open(name, opts);
}

std::shared_ptr<Backend> open_backend(const std::string& name, const std::filesystem::path& state_dir,
                                      boost::json::object settings, bool fsync) {
    return open_backend(name, options_in(state_dir, fsync, std::move(settings)));
}

std::vector<std::string> available_backends() { return PluginLoader({plugin_dir()}, quiet_logger()).available(); }

std::vector<std::string> file_backends() {
    PluginLoader loader({plugin_dir()}, quiet_logger());
    std::vector<std::string> out;
    for (const auto& n : loader.available())
        if (loader.storage_of(n) == PluginStorage::state_dir) out.push_back(n);
    return out;
}

} // namespace tradestate::testing
