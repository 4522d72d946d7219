// tradestate — what a backend plugin's .cpp includes to export itself.
#pragma once

#include <tradestate/backend.hpp>

#include <boost/config.hpp>
#include <boost/dll/alias.hpp>

/// Declare a backend plugin. Put this once in the plugin's .cpp:
///
///     TRADESTATE_PLUGIN("json-files", my_factory_function)
///
/// It exports, with C linkage, the ABI version and the name (checked by the
/// host before anything else runs) and the factory through BOOST_DLL_ALIAS.
#define TRADESTATE_PLUGIN(NAME, FACTORY)                                                        \
    extern "C" BOOST_SYMBOL_EXPORT std::uint32_t tradestate_plugin_abi_version() {              \
        return ::tradestate::plugin_abi_version;                                                \
    }                                                                                           \
    extern "C" BOOST_SYMBOL_EXPORT const char* tradestate_backend_name() { return NAME; }       \
    extern "C" BOOST_SYMBOL_EXPORT const char* tradestate_plugin_built_with() {                 \
        return "tradestate " TRADESTATE_VERSION_STRING;                                         \
    }                                                                                           \
    BOOST_DLL_ALIAS(FACTORY, tradestate_create_backend)
