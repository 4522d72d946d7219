// tradestate tests — a logger that swallows everything.
#pragma once

#include <memory>

namespace spdlog {
class logger;
}

namespace tradestate::testing {

/// One shared logger with no sinks' output: for backends, persisters and
/// sessions whose messages a test does not read.
[[nodiscard]] std::shared_ptr<spdlog::logger> quiet_logger();

} // namespace tradestate::testing
