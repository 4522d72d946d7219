// libFuzzer: the mmap-binary plugin's file loader, compiled into the harness; each
// input is written as a session file in a scratch directory and loaded.
#include "fuzz_common.hpp"

#include "../../plugins/mmap_binary/mmap_binary_backend.cpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    return fuzz::load_backend_file(data, size, "fuzz.tsmm",
                                   [](const tradestate::BackendOptions& o) { return tradestate::mmap_binary::create_backend(o); });
}
