// tradestate — what a session (or backend) name may be, and how a name is shown.
#pragma once

#include <tradestate/error.hpp>

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace tradestate {

inline constexpr std::size_t max_session_name_length = 64;

namespace detail {

/// Length of the valid UTF-8 sequence at the start of `s` (0: not one),
/// and its code point.
[[nodiscard]] inline std::size_t utf8_sequence(std::string_view s, std::uint32_t& cp) noexcept {
    const auto b = [&](std::size_t i) { return static_cast<unsigned char>(s[i]); };
    if (s.empty()) return 0;
    const unsigned char c = b(0);
    std::size_t n;
    if (c < 0x80) { cp = c; return 1; }
    if (c >= 0xc2 && c <= 0xdf) { n = 2; cp = c & 0x1fu; }
    else if (c >= 0xe0 && c <= 0xef) { n = 3; cp = c & 0x0fu; }
    else if (c >= 0xf0 && c <= 0xf4) { n = 4; cp = c & 0x07u; }
    else return 0;
    if (s.size() < n) return 0;
    for (std::size_t i = 1; i < n; ++i) {
        if ((b(i) & 0xc0u) != 0x80u) return 0;
        cp = (cp << 6) | (b(i) & 0x3fu);
    }
    const bool overlong = (n == 3 && cp < 0x800) || (n == 4 && cp < 0x10000);
    if (overlong || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) return 0;
    return n;
}

/// `s` as a person can read it in a message: printable ASCII and whole
/// UTF-8 characters as they are, control characters and bytes that are not
/// UTF-8 as \xNN (two hex digits); cut after `limit` characters with "...".
[[nodiscard]] inline std::string printable(std::string_view s, std::size_t limit = 80) {
    static constexpr char hex[] = "0123456789abcdef";
    std::string out;
    std::size_t shown = 0;
    for (std::size_t i = 0; i < s.size();) {
        if (shown++ == limit) return out + "...";
        std::uint32_t cp = 0;
        const std::size_t n = utf8_sequence(s.substr(i), cp);
        if (n == 0 || cp < 0x20 || cp == 0x7f || (cp >= 0x80 && cp < 0xa0)) {
            const std::size_t bytes = n == 0 ? 1 : n;
            for (std::size_t k = 0; k < bytes; ++k) {
                const auto c = static_cast<unsigned char>(s[i + k]);
                out += "\\x";
                out += hex[c >> 4];
                out += hex[c & 15];
            }
            i += bytes;
        } else {
            out.append(s.substr(i, n));
            i += n;
        }
    }
    return out;
}

/// Throws Errc::invalid_argument unless `name` is 1–64 characters from
/// [A-Za-z0-9._-] not starting with '.'; `what` names the kind ("session
/// name", "backend name") in the message.
inline void validate_portable_name(std::string_view name, const char* what) {
    auto fail = [&](const std::string& why) {
        throw Error(Errc::invalid_argument, std::string("invalid ") + what + " '" + printable(name) + "': " + why +
                                                " (use 1-64 characters from A-Z a-z 0-9 . _ -, not starting with '.')");
    };
    if (name.empty()) fail("it is empty");
    if (name.size() > max_session_name_length) fail("it is longer than 64 characters");
    if (name.front() == '.') fail("it starts with '.'");
    for (std::size_t i = 0; i < name.size();) {
        const char c = name[i];
        const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
                        c == '_' || c == '-';
        if (ok) {
            ++i;
            continue;
        }
        if (c == '/' || c == '\\') fail("it contains a path separator");
        if (c == '\0') fail("it contains a NUL byte");
        std::uint32_t cp = 0;
        const std::size_t n = utf8_sequence(name.substr(i), cp);
        std::string shown = printable(name.substr(i, n == 0 ? 1 : n));
        if (n != 0 && (cp < 0x20 || cp == 0x7f || (cp >= 0x80 && cp < 0xa0)))
            fail("it contains the control character '" + shown + "'");
        if (n != 0) {
            static constexpr char hex[] = "0123456789ABCDEF";
            std::string u = "U+";
            for (int shift = cp > 0xfffff ? 20 : cp > 0xffff ? 16 : 12; shift >= 0; shift -= 4) u += hex[(cp >> shift) & 15];
            shown += "' (" + u + ")";
            fail("it contains the character '" + shown);
        }
        fail("it contains the byte '" + shown + "', which is not UTF-8");
    }
}

} // namespace detail

/// Session names become file names, table keys and URL parts, so they are
/// held to a portable set: 1–64 characters from [A-Za-z0-9._-], not starting
/// with '.' (which also rules out "." and ".."). Throws Errc::invalid_argument
/// saying what is wrong.
inline void validate_session_name(std::string_view name) { detail::validate_portable_name(name, "session name"); }

[[nodiscard]] inline bool is_valid_session_name(std::string_view name) noexcept {
    try {
        validate_session_name(name);
        return true;
    } catch (...) {
        return false;
    }
}

} // namespace tradestate
