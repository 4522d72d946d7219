// tradestate — little-endian integers in byte buffers, the one copy every
// binary format of the project (journal, mark file, plugins) uses.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

namespace tradestate::detail {

/// Store `v` as `N` little-endian bytes at `p`.
template <class T> inline void store_le(void* p, T v) noexcept {
    auto* b = static_cast<unsigned char*>(p);
    for (std::size_t i = 0; i < sizeof(T); ++i) b[i] = static_cast<unsigned char>((static_cast<std::uint64_t>(v) >> (8 * i)) & 0xff);
}

/// Read a little-endian `T` at `p`.
template <class T> [[nodiscard]] inline T load_le(const void* p) noexcept {
    const auto* b = static_cast<const unsigned char*>(p);
    std::uint64_t v = 0;
    for (std::size_t i = sizeof(T); i-- > 0;) v = (v << 8) | b[i];
    return static_cast<T>(v);
}

inline void put_u32(std::string& out, std::uint32_t v) {
    char b[4];
    store_le(b, v);
    out.append(b, 4);
}
inline void put_u64(std::string& out, std::uint64_t v) {
    char b[8];
    store_le(b, v);
    out.append(b, 8);
}
[[nodiscard]] inline std::uint32_t get_u32(const void* p) noexcept { return load_le<std::uint32_t>(p); }
[[nodiscard]] inline std::uint64_t get_u64(const void* p) noexcept { return load_le<std::uint64_t>(p); }

} // namespace tradestate::detail
