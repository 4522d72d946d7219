// tradestate — checksums (XXH3 from Debian's libxxhash-dev, used header-only).
#pragma once

// XXH_INLINE_ALL: the functions are compiled into the includer (static,
// renamed XXH_INLINE_*), so no library is linked. The macro is ours only for
// this include: a user's own #include <xxhash.h> means what it always does.
#ifdef XXH_INLINE_ALL
#include <xxhash.h>
#else
#define XXH_INLINE_ALL
#include <xxhash.h>
#undef XXH_INLINE_ALL
#endif

#include <cstdint>
#include <string>
#include <string_view>

namespace tradestate::detail {

/// 64-bit XXH3 of `bytes`.
[[nodiscard]] inline std::uint64_t xxh3(std::string_view bytes) noexcept {
    return XXH3_64bits(bytes.data(), bytes.size());
}

/// Same, of raw memory.
[[nodiscard]] inline std::uint64_t xxh3(const void* data, std::size_t size) noexcept {
    return XXH3_64bits(data, size);
}

/// XXH3-64 of data fed in pieces: the same value as xxh3() of the
/// concatenation, without building it.
class Xxh3Stream {
public:
    Xxh3Stream() noexcept { XXH3_64bits_reset(&st_); }
    void update(std::string_view bytes) noexcept { (void)XXH3_64bits_update(&st_, bytes.data(), bytes.size()); }
    [[nodiscard]] std::uint64_t digest() const noexcept { return XXH3_64bits_digest(&st_); }

private:
    XXH3_state_t st_;
};

/// 16 lower-case hex digits.
[[nodiscard]] inline std::string hex64(std::uint64_t v) {
    static constexpr char hex[] = "0123456789abcdef";
    std::string s;
    for (int i = 60; i >= 0; i -= 4) s.push_back(hex[(v >> i) & 15]);
    return s;
}

/// "xxh3:0123456789abcdef" — how checksums are written in text formats.
[[nodiscard]] inline std::string checksum_text(std::uint64_t h) { return "xxh3:" + hex64(h); }

} // namespace tradestate::detail
