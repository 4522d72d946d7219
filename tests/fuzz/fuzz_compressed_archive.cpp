// libFuzzer: the compressed-archive plugin's file loader, compiled into the harness; each
// input is written as a session file in a scratch directory and loaded.
#include "fuzz_common.hpp"

#include "../../plugins/compressed_archive/compressed_archive_backend.cpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    return fuzz::load_backend_file(data, size, "fuzz.tsarc",
                                   [](const tradestate::BackendOptions& o) { return tradestate::compressed_archive::create_backend(o); });
}
