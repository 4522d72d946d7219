// libFuzzer: the compressed-archive plugin's file loader, compiled into the harness; each
// input is written as a session file in a scratch directory and loaded.
#include "fuzz_common.hpp"

#include <tradestate/detail/json_reader.hpp>

#include "../../plugins/compressed_archive/compressed_archive.cpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const auto& dir = fuzz::scratch();
    fuzz::write(dir / "fuzz.tsarc", fuzz::bytes(data, size));
    try {
        tradestate::BackendOptions o;
        o.state_dir = dir;
        o.fsync = false;
        o.max_file_bytes = 1u << 20;
        auto b = tradestate_plugin_compressed_archive::make(o);
        if (auto r = b->load("fuzz")) (void)r->doc;
        (void)b->verify("fuzz");
        (void)b->list();
    } catch (const tradestate::Error&) {
    }
    tradestate::detail::load_warnings().clear();
    return 0;
}
