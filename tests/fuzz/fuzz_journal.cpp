// libFuzzer: the journal reader (decode + replay over a state from the
// journal's base) and the session mark's slot decoder, the two files a
// resume reads besides the snapshot.
#include "fuzz_common.hpp"

#include <tradestate/detail/session_mark.hpp>
#include <tradestate/journal_format.hpp>
#include <tradestate/replay.hpp>
#include <tradestate/session_state.hpp>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::string bytes(fuzz::bytes(data, size));
    if (bytes.size() >= tradestate::detail::mark_payload)
        (void)tradestate::detail::decode_mark_slot(bytes.data());
    try {
        const auto c = tradestate::decode_journal(bytes, "fuzz.journal");
        tradestate::SessionState s;
        s.portfolio = tradestate::Portfolio(tradestate::Money::from_rupees(1'000'000));
        (void)tradestate::replay_journal(s, c, c.base_seq, "fuzz.journal");
        (void)s.portfolio.reconcile();
    } catch (const tradestate::Error&) {
    }
    tradestate::detail::load_warnings().clear();
    return 0;
}
