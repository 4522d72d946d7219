// libFuzzer: the journal reader (decode + replay over a state that owns the journal's id).
#include "fuzz_common.hpp"

#include <tradestate/journal.hpp>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    try {
        const auto c = tradestate::decode_journal(fuzz::bytes(data, size), "fuzz.journal");
        tradestate::SessionState s;
        s.portfolio = tradestate::Portfolio(tradestate::Money::from_rupees(1'000'000));
        tradestate::set_journal_mark(s, {c.id, c.base_seq});
        (void)tradestate::replay_journal(s, c, "fuzz.journal");
        (void)s.portfolio.reconcile();
    } catch (const tradestate::Error&) {
    }
    tradestate::detail::load_warnings().clear();
    return 0;
}
