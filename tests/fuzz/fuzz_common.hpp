// Shared by the libFuzzer harnesses: Boost.JSON compiled into the target in
// the clang fuzz build (so the parser is instrumented), a scratch directory
// for the file-based loaders, and the rule that hostile input may only ever
// end in a tradestate::Error.
#pragma once

#ifdef TRADESTATE_FUZZ_BUILD
#include <boost/json/src.hpp>
#endif

#include <tradestate/backend.hpp>
#include <tradestate/detail/json_reader.hpp>
#include <tradestate/error.hpp>

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <string>
#include <string_view>

#include <unistd.h>

namespace fuzz {

inline std::string_view bytes(const std::uint8_t* data, std::size_t size) {
    return {reinterpret_cast<const char*>(data), size};
}

/// A per-process scratch directory, emptied before each input.
inline const std::filesystem::path& scratch() {
    static const std::filesystem::path dir = [] {
        auto d = std::filesystem::temp_directory_path() / ("tradestate-fuzz-" + std::to_string(::getpid()));
        std::filesystem::create_directories(d);
        return d;
    }();
    static const struct Cleanup {
        ~Cleanup() {
            std::error_code ec;
            std::filesystem::remove_all(dir, ec);
        }
    } cleanup;
    (void)cleanup;
    std::error_code ec;
    for (const auto& e : std::filesystem::directory_iterator(dir, ec)) std::filesystem::remove_all(e.path(), ec);
    return dir;
}

inline void write(const std::filesystem::path& p, std::string_view b) {
    std::ofstream f(p, std::ios::binary | std::ios::trunc);
    f.write(b.data(), static_cast<std::streamsize>(b.size()));
}

/// One input for a file backend's loader: written as session "fuzz" (file
/// name `file_name` in the scratch directory), then loaded, verified and
/// listed through the backend `make(options)` returns.
template <class Make>
int load_backend_file(const std::uint8_t* data, std::size_t size, const char* file_name, Make make) {
    const auto& dir = scratch();
    write(dir / file_name, bytes(data, size));
    try {
        tradestate::BackendOptions o;
        o.state_dir = dir;
        o.fsync = false;
        o.max_file_bytes = 1u << 20;
        auto b = make(o);
        if (auto r = b->load("fuzz")) (void)r->doc;
        (void)b->verify("fuzz");
        (void)b->list();
    } catch (const tradestate::Error&) {
    }
    tradestate::detail::load_warnings().clear();
    return 0;
}

} // namespace fuzz
