#include <tradestate/detail/session_name.hpp>

#include <gtest/gtest.h>

using tradestate::validate_session_name;

TEST(SessionName, AcceptsPortableNames) {
    for (const char* s : {"default", "alpha-1", "my_session.v2", "A", "x.json"})
        EXPECT_NO_THROW(validate_session_name(s)) << s;
    EXPECT_NO_THROW(validate_session_name(std::string(64, 'a')));
}

TEST(SessionName, RefusesHostileNamesWithAReason) {
    const std::pair<std::string, std::string> cases[] = {
        {"../x", "starts with '.'"},
        {"a/../../etc", "path separator"},
        {"a/b", "path separator"},
        {"..", "starts with '.'"},
        {".hidden", "starts with '.'"},
        {"", "empty"},
        {std::string("a\0b", 3), "NUL"},
        {std::string(65, 'a'), "longer than 64"},
        {"a\\b", "path separator"},
        {"<script>", "character '<'"},
        {"ünï", "character"},
        {"a b", "character ' '"},
    };
    for (const auto& [name, why] : cases) {
        try {
            validate_session_name(name);
            ADD_FAILURE() << "accepted " << name;
        } catch (const tradestate::Error& e) {
            EXPECT_EQ(e.code(), tradestate::Errc::invalid_argument);
            EXPECT_NE(std::string(e.what()).find(why), std::string::npos) << e.what();
        }
    }
}

TEST(SessionName, IsShownWithHexEscapesAndWholeCharacters) {
    const std::pair<std::string, std::string> cases[] = {
        {"a\nb", "invalid session name 'a\\x0ab': it contains the control character '\\x0a'"},
        {std::string("x\x01", 2), "invalid session name 'x\\x01'"},
        {"ünï", "invalid session name 'ünï': it contains the character 'ü' (U+00FC)"},
        {"€", "'€' (U+20AC)"},
        {"a😀", "'😀' (U+1F600)"},
        {std::string("\xff") + "x", "invalid session name '\\xffx': it contains the byte '\\xff', which is not UTF-8"},
        {std::string("\xc3"), "'\\xc3', which is not UTF-8"}, // a sequence cut short
    };
    for (const auto& [name, want] : cases) {
        try {
            validate_session_name(name);
            ADD_FAILURE() << "accepted " << name;
        } catch (const tradestate::Error& e) {
            EXPECT_NE(std::string(e.what()).find(want), std::string::npos) << e.what() << "\n  wanted: " << want;
        }
    }
    EXPECT_EQ(tradestate::detail::printable(std::string(100, 'a'), 10), std::string(10, 'a') + "...");
}
