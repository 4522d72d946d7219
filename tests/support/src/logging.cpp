#include <tradestate_test/logging.hpp>

#include <spdlog/logger.h>
#include <spdlog/sinks/null_sink.h>

namespace tradestate::testing {

std::shared_ptr<spdlog::logger> quiet_logger() {
    static auto l = std::make_shared<spdlog::logger>("test", std::make_shared<spdlog::sinks::null_sink_mt>());
    return l;
}

} // namespace tradestate::testing
