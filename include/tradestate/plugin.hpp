// tradestate — what a backend plugin's .cpp includes to export itself.
#pragma once

#include <tradestate/backend.hpp>

#include <boost/config.hpp>
#include <boost/dll/alias.hpp>

#include <cstdint>

/// Declare a backend plugin. Put this once in the plugin's .cpp:
///
///     TRADESTATE_PLUGIN("json-files", my_factory_function, tradestate::PluginStorage::state_dir)
///
/// It exports, with C linkage, the ABI version, the name and where the
/// backend keeps its data (read by the host before anything else runs: no
/// backend is constructed to find out) and the factory through BOOST_DLL_ALIAS.
#define TRADESTATE_PLUGIN(NAME, FACTORY, STORAGE)                                               \
    extern "C" BOOST_SYMBOL_EXPORT std::uint32_t tradestate_plugin_abi_version() {              \
        return ::tradestate::plugin_abi_version;                                                \
    }                                                                                           \
    extern "C" BOOST_SYMBOL_EXPORT const char* tradestate_backend_name() { return NAME; }       \
    extern "C" BOOST_SYMBOL_EXPORT const char* tradestate_plugin_built_with() {                 \
        return "tradestate " TRADESTATE_VERSION_STRING;                                         \
    }                                                                                           \
    extern "C" BOOST_SYMBOL_EXPORT std::uint32_t tradestate_plugin_storage() {                  \
        return static_cast<std::uint32_t>(STORAGE);                                             \
    }                                                                                           \
    BOOST_DLL_ALIAS(FACTORY, tradestate_create_backend)
