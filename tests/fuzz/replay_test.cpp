// Replays every committed seed-corpus file and every crash regression of one
// fuzz target through the same harness code (label fuzz-regression, g++ build).
#include <gtest/gtest.h>

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size);

TEST(FuzzReplay, CorpusAndRegressionsRunClean) {
    std::size_t n = 0;
    for (const char* dir : {TRADESTATE_FUZZ_CORPUS, TRADESTATE_FUZZ_REGRESSIONS}) {
        std::error_code ec;
        if (!std::filesystem::is_directory(dir, ec)) continue;
        for (const auto& e : std::filesystem::directory_iterator(dir)) {
            if (!e.is_regular_file() || e.path().filename().string().rfind('.', 0) == 0) continue;
            std::ifstream f(e.path(), std::ios::binary);
            const std::string b((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
            SCOPED_TRACE(e.path().string());
            EXPECT_EQ(LLVMFuzzerTestOneInput(reinterpret_cast<const std::uint8_t*>(b.data()), b.size()), 0);
            ++n;
        }
    }
    EXPECT_GT(n, 0u) << "no seed corpus for this target";
}
