// fno_runner — the runner's own config.toml sections: [instruments]
// (NSE contract facts, holidays), [runner] (seed, simulated clock),
// [risk], [strategies] and [charges]. All optional: built-in defaults
// describe NIFTY and BANKNIFTY as of late 2025 / early 2026.
#pragma once

#include <fno_runner/simulation.hpp>

#include <tradestate/config.hpp>

namespace fno {

/// Sections the runner adds to config.toml (pass to Config::load/discover).
[[nodiscard]] tradestate::ConfigSchema runner_config_schema();

/// Default NIFTY/BANKNIFTY instruments, the NSE calendar and defaults for the rest.
[[nodiscard]] SimulationSettings default_settings();

/// Defaults overridden by the runner's sections of `cfg` (errors name file:line:column).
[[nodiscard]] SimulationSettings settings_from_config(const tradestate::Config& cfg);

} // namespace fno
