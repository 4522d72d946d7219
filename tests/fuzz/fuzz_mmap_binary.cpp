// libFuzzer: the mmap-binary plugin's file loader, compiled into the harness; each
// input is written as a session file in a scratch directory and loaded.
#include "fuzz_common.hpp"

#include <tradestate/detail/json_reader.hpp>

#include "../../plugins/mmap_binary/mmap_binary.cpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const auto& dir = fuzz::scratch();
    fuzz::write(dir / "fuzz.tsmm", fuzz::bytes(data, size));
    try {
        tradestate::BackendOptions o;
        o.state_dir = dir;
        o.fsync = false;
        o.max_file_bytes = 1u << 20;
        auto b = tradestate_plugin_mmap_binary::make(o);
        if (auto r = b->load("fuzz")) (void)r->doc;
        (void)b->verify("fuzz");
        (void)b->list();
    } catch (const tradestate::Error&) {
    }
    tradestate::detail::load_warnings().clear();
    return 0;
}
