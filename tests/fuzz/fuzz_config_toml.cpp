// libFuzzer: config.toml loading (Config::parse with an application schema).
#include "fuzz_common.hpp"

#include <tradestate/config.hpp>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    try {
        const tradestate::ConfigSchema schema{{"instruments", "runner"}, {"trading.brokerage_per_order"}};
        auto c = tradestate::Config::parse(fuzz::bytes(data, size), "/fuzz/config.toml", schema);
        (void)c.backend_settings_for(c.persistence.backend);
    } catch (const tradestate::Error&) {
    }
    return 0;
}
