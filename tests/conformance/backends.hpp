// The backends the conformance suite runs against: ONE line per backend.
//
// To put a new backend through the suite, add a line below:
//     {"my-backend", nullptr},                    // needs nothing beyond BackendOptions
//     {"my-backend", my_options, false},          // see BackendEntry below
// The test ConformanceList.EveryPluginInThePluginDirIsListed fails while a
// plugin built into the plugin dir has no line here.
#pragma once

#include <tradestate/backend.hpp>

#include "../postgres/pg_conformance.hpp" // postgres_options

#include <optional>
#include <string>
#include <vector>

namespace tradestate::testing {

/// Prepare options for one test: `opts.state_dir` is a fresh empty directory
/// for this test. Fill `opts.settings` (e.g. a database URL from an
/// environment variable) and make the store isolated per call (e.g. derive a
/// schema name from `opts.state_dir`). Return a reason to skip the backend
/// (e.g. "TRADESTATE_PG_URL is not set"), or nullopt to run it.
using options_fn = std::optional<std::string> (*)(BackendOptions& opts);

struct BackendEntry {
    const char* name;
    options_fn configure = nullptr;
    /// True if the backend keeps its data as files under state_dir; the
    /// corruption and read-only-directory cases need that.
    bool files_in_state_dir = true;
};

inline const std::vector<BackendEntry>& conformance_backends() {
    static const std::vector<BackendEntry> list = {
        {"json-files", nullptr},
        {"mmap-binary", nullptr},
        {"compressed-archive", nullptr},
        {"postgres", postgres_options, false},
    };
    return list;
}

} // namespace tradestate::testing
