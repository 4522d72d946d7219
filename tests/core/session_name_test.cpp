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
            EXPECT_EQ(e.code(), tradestate::errc::invalid_argument);
            EXPECT_NE(std::string(e.what()).find(why), std::string::npos) << e.what();
        }
    }
}
