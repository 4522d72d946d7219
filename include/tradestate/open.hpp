// tradestate — opening what config.toml describes: the backend plugin, a
// StatePersister over it, a Session. Kept apart from persister.hpp and
// session.hpp so that code which only saves and loads does not compile
// Boost.DLL, toml++ and the plugin loader.
//
//   auto cfg = tradestate::Config::load("config.toml");
//   auto session = tradestate::open_session<MyState>(cfg, "default");
//   auto persister = tradestate::open_persister<MyState>(cfg);
#pragma once

#include <tradestate/backend.hpp>
#include <tradestate/config.hpp>
#include <tradestate/journal_format.hpp>
#include <tradestate/persister.hpp>
#include <tradestate/plugin_loader.hpp>
#include <tradestate/session.hpp>

#include <spdlog/spdlog.h>

#include <algorithm>
#include <memory>
#include <string>
#include <utility>
#include <vector>

namespace tradestate {

/// The BackendOptions `[persistence]` describes.
[[nodiscard]] inline BackendOptions backend_options(const Config& cfg, std::shared_ptr<spdlog::logger> logger) {
    BackendOptions o;
    o.state_dir = cfg.persistence.state_dir;
    o.fsync = cfg.persistence.fsync;
    o.keep_backups = static_cast<int>(cfg.persistence.keep_backups);
    o.max_file_bytes = cfg.persistence.max_file_bytes;
    o.settings = cfg.backend_settings_for(cfg.persistence.backend);
    o.logger = std::move(logger);
    return o;
}

/// A `[persistence.<name>]` table for a backend no plugin provides is a
/// misspelling (`[persistence.compresed-archive]`): Errc::config naming the
/// file and the backends there are, rather than settings silently unused.
inline void refuse_settings_of_unknown_backends(const Config& cfg, const PluginLoader& loader) {
    if (cfg.persistence.backend_settings.empty()) return;
    const auto names = loader.available();
    for (const auto& [key, value] : cfg.persistence.backend_settings) {
        (void)value;
        if (std::find(names.begin(), names.end(), std::string(key)) != names.end()) continue;
        std::string list;
        for (const auto& n : names) list += (list.empty() ? "" : ", ") + n;
        const std::string file = cfg.source().empty() ? std::string("config.toml") : cfg.source().string();
        throw Error(Errc::config, file + ": [persistence." + std::string(key) + "]: there is no backend '" +
                                      std::string(key) + "' (available backends: " + (list.empty() ? "none" : list) +
                                      "); is the name misspelt?");
    }
}

/// The backend `persistence.backend` names, loaded from the plugin directory.
[[nodiscard]] inline std::shared_ptr<Backend> open_backend(const Config& cfg,
                                                           const std::shared_ptr<spdlog::logger>& logger = spdlog::default_logger()) {
    PluginLoader loader(plugin_search_dirs(cfg.persistence.plugin_dir), logger);
    refuse_settings_of_unknown_backends(cfg, loader);
    return loader.open(cfg.persistence.backend, backend_options(cfg, logger));
}

/// When the configured backend has no sessions, another plugin that keeps
/// its files in the same state_dir and has some means the user switched
/// `backend`: throw Errc::not_found naming them and the `tradestate convert`
/// command, rather than silently starting empty. Every available plugin is
/// asked where it keeps its data (PluginLoader::storage_of, without
/// constructing a backend); none is named here.
inline void refuse_if_other_backend_has_sessions(const Config& cfg, const std::shared_ptr<spdlog::logger>& logger) {
    PluginLoader loader(plugin_search_dirs(cfg.persistence.plugin_dir), logger);
    for (const auto& other : loader.available()) {
        if (other == cfg.persistence.backend) continue;
        Config c = cfg;
        c.persistence.backend = other;
        std::vector<SessionInfo> found;
        try {
            if (loader.storage_of(other) != PluginStorage::state_dir) continue;
            found = loader.open(other, backend_options(c, logger))->list();
        } catch (const Error&) {
            continue; // not loadable: its own error comes when it is configured
        }
        if (found.empty()) continue;
        std::string names;
        for (const auto& f : found) names += (names.empty() ? "" : ", ") + f.session;
        const auto dir = cfg.persistence.state_dir.string();
        const std::string file = cfg.source().empty() ? std::string("the configuration") : cfg.source().string();
        throw Error(Errc::not_found,
                    file + " selects backend '" + cfg.persistence.backend + "', which has no sessions in " + dir +
                        ", but backend '" + other + "' has: " + names + ". Convert them with `tradestate convert --from " +
                        other + ":" + dir + " --to " + cfg.persistence.backend + ":" + dir +
                        "`, or set persistence.backend = \"" + other + "\" again, or use another state_dir to start empty");
    }
}

/// A StatePersister over the configured backend (with the switched-backend check).
template <class State>
[[nodiscard]] std::shared_ptr<StatePersister<State>> open_persister(
    const Config& cfg, std::shared_ptr<spdlog::logger> logger = spdlog::default_logger()) {
    auto backend = open_backend(cfg, logger);
    if (backend->list().empty()) refuse_if_other_backend_has_sessions(cfg, logger);
    return std::make_shared<StatePersister<State>>(std::move(backend), std::move(logger));
}

/// The SessionOptions `[persistence]` describes, for session `name`.
[[nodiscard]] inline SessionOptions session_options(const Config& cfg, std::string name = default_session) {
    SessionOptions o;
    o.name = std::move(name);
    o.journal = cfg.persistence.journal;
    o.journal_fsync = parse_journal_fsync(cfg.persistence.journal_fsync);
    o.state_dir = cfg.persistence.state_dir;
    o.max_file_bytes = cfg.persistence.max_file_bytes;
    o.fsync = cfg.persistence.fsync;
    return o;
}

/// Open session `name` of the configured backend and take its writer lease.
template <journaled_state State>
[[nodiscard]] std::unique_ptr<Session<State>> open_session(const Config& cfg, std::string name = default_session,
                                                           std::shared_ptr<spdlog::logger> logger = spdlog::default_logger()) {
    return std::make_unique<Session<State>>(open_persister<State>(cfg, std::move(logger)), session_options(cfg, std::move(name)));
}

} // namespace tradestate
