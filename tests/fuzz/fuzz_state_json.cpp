// libFuzzer: the JSON state loader (strict parse + SessionState mapping + views).
#include "fuzz_common.hpp"

#include <tradestate/detail/json.hpp>
#include <tradestate/session_state.hpp>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    try {
        const auto v = tradestate::detail::parse(fuzz::bytes(data, size), "fuzz.json");
        auto s = boost::json::value_to<tradestate::SessionState>(v);
        (void)s.portfolio.reconcile();
        (void)tradestate::tradestate_views(s);
        const auto text = tradestate::detail::print(boost::json::value_from(s));
        // What we write, we read back to the same state.
        auto again = boost::json::value_to<tradestate::SessionState>(tradestate::detail::parse(text, "again"));
        if (!(again == s)) __builtin_trap();
    } catch (const tradestate::Error&) {
    }
    tradestate::detail::load_warnings().clear();
    return 0;
}
