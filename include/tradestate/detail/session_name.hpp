// tradestate — what a session name may be.
#pragma once

#include <tradestate/error.hpp>

#include <string>
#include <string_view>

namespace tradestate {

inline constexpr std::size_t max_session_name_length = 64;

/// Session names become file names, table keys and URL parts, so they are
/// held to a portable set: 1–64 characters from [A-Za-z0-9._-], not starting
/// with '.' (which also rules out "." and ".."). Throws errc::invalid_argument
/// saying what is wrong.
inline void validate_session_name(std::string_view name) {
    auto fail = [&](const std::string& why) {
        std::string shown;
        for (char c : name) {
            if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) shown += "\\x" + std::to_string(static_cast<unsigned char>(c));
            else shown.push_back(c);
            if (shown.size() > 80) { shown += "..."; break; }
        }
        throw Error(errc::invalid_argument, "invalid session name '" + shown + "': " + why +
                                                " (use 1-64 characters from A-Z a-z 0-9 . _ -, not starting with '.')");
    };
    if (name.empty()) fail("it is empty");
    if (name.size() > max_session_name_length) fail("it is longer than 64 characters");
    if (name.front() == '.') fail("it starts with '.'");
    for (char c : name) {
        const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
                        c == '_' || c == '-';
        if (c == '/' || c == '\\') fail("it contains a path separator");
        if (c == '\0') fail("it contains a NUL byte");
        if (!ok) fail(std::string("it contains the character '") + (static_cast<unsigned char>(c) < 0x20 ? '?' : c) + "'");
    }
}

[[nodiscard]] inline bool is_valid_session_name(std::string_view name) noexcept {
    try {
        validate_session_name(name);
        return true;
    } catch (...) {
        return false;
    }
}

} // namespace tradestate
