// `tradestate` show-sessions / verify / export / convert on real state dirs.
#include <tradestate_test/support.hpp>

#include <tradestate/detail/atomic_file.hpp>
#include <tradestate/detail/json.hpp>
#include <tradestate/session_state.hpp>

#include <gtest/gtest.h>

#include <array>
#include <cstdio>
#include <filesystem>
#include <string>

#include <sys/wait.h>

namespace fs = std::filesystem;
namespace d = tradestate::detail;

namespace {
using tradestate::testing::TempDir;

struct Result {
    int code;
    std::string out; // stdout
    std::string all; // stdout then stderr
};

/// Run the tool with `args` split at spaces.
Result run(const std::string& args) {
    std::vector<std::string> argv{tradestate::testing::tool_bin()};
    std::string word;
    for (char ch : args + " ") {
        if (ch == ' ') {
            if (!word.empty()) argv.push_back(word);
            word.clear();
        } else {
            word.push_back(ch);
        }
    }
    const auto c = tradestate::testing::capture(argv);
    return {c.code, c.out, c.all()};
}

std::string seed() { return d::read_file(tradestate::testing::seed_file()); }
} // namespace

TEST(Tool, VerifyAndExportWorkOnTheSeedsDocument) {
    TempDir dir;
    d::write_file_atomic(dir.path() / "fno_system_state.json", seed(), false);
    const auto sd = " --state-dir " + dir.path().string();

    auto v = run(sd + " verify");
    EXPECT_EQ(v.code, 0) << v.all;
    EXPECT_NE(v.all.find("✓ default: valid"), std::string::npos) << v.all;
    EXPECT_NE(v.all.find("no checksum"), std::string::npos) << v.all;
    EXPECT_NE(v.all.find("does not reconcile"), std::string::npos) << v.all; // the seed's cash is ₹69,005.91 off

    auto e = run(sd + " export default");
    ASSERT_EQ(e.code, 0) << e.all;
    // What a resume gives: the seed's document as the library's SessionState writes it.
    EXPECT_EQ(d::parse(e.out, "export"),
              boost::json::value_from(boost::json::value_to<tradestate::SessionState>(d::parse(seed(), "seed"))));

    auto s = run(sd + " show-sessions");
    EXPECT_EQ(s.code, 0);
    EXPECT_NE(s.out.find("📂 SAVED TRADING SESSIONS"), std::string::npos) << s.out;
    EXPECT_NE(s.out.find("📊 Main Session:"), std::string::npos);
    EXPECT_NE(s.out.find("• Iteration: 25"), std::string::npos);
    EXPECT_NE(s.out.find("• Cash: ₹914,462.59"), std::string::npos);

    auto j = run(sd + " show-sessions --json");
    ASSERT_EQ(j.code, 0);
    const auto arr = d::parse(j.out, "json");
    EXPECT_EQ(arr.at(0).at("cash_paise").as_int64(), 91446259);
}

TEST(Tool, VerifyFailsLoudlyOnABrokenFile) {
    TempDir dir;
    auto text = seed();
    text.resize(text.size() / 2); // truncated mid-document
    d::write_file_atomic(dir.path() / "fno_system_state.json", text, false);
    auto v = run(" --state-dir " + dir.path().string() + " verify default");
    EXPECT_NE(v.code, 0) << v.all;
    EXPECT_NE(v.all.find("fno_system_state.json"), std::string::npos) << v.all;
    EXPECT_NE(v.all.find("INVALID"), std::string::npos) << v.all;
}

TEST(Tool, ConvertRoundTripThroughEveryFileBackendIsByteIdentical) {
    TempDir dir;
    d::write_file_atomic(dir.path() / "fno_system_state.json", seed(), false);
    const auto a = (dir.path() / "a").string(), b = (dir.path() / "b").string(), c = (dir.path() / "c").string();
    fs::create_directories(a);
    fs::create_directories(b);
    fs::create_directories(c);
    const auto src = dir.path().string();
    const auto before = run(" --state-dir " + src + " export default");
    ASSERT_EQ(before.code, 0);
    for (const auto& step : {"--from json-files:" + src + " --to mmap-binary:" + a, "--from mmap-binary:" + a + " --to compressed-archive:" + b,
                             "--from compressed-archive:" + b + " --to json-files:" + c}) {
        auto r = run(" convert " + step);
        ASSERT_EQ(r.code, 0) << step << "\n" << r.all;
        EXPECT_NE(r.all.find("✓ default"), std::string::npos) << r.all;
    }
    const auto after = run(" --state-dir " + c + " export default");
    ASSERT_EQ(after.code, 0);
    EXPECT_EQ(after.out, before.out); // byte-identical export
    for (const std::string backend : {"mmap-binary", "compressed-archive"}) {
        const auto dir2 = backend == "mmap-binary" ? a : b;
        auto x = run(" --backend " + backend + " --state-dir " + dir2 + " export default");
        EXPECT_EQ(x.out, before.out) << backend;
    }
}

TEST(Tool, HistoryAndExportAtOnABackendWithHistory) {
    TempDir dir;
    d::write_file_atomic(dir.path() / "fno_system_state.json", seed(), false);
    const auto arc = (dir.path() / "arc").string();
    fs::create_directories(arc);
    ASSERT_EQ(run(" convert --from json-files:" + dir.path().string() + " --to compressed-archive:" + arc).code, 0);
    auto h = run(" --backend compressed-archive --state-dir " + arc + " history default");
    ASSERT_EQ(h.code, 0) << h.all;
    EXPECT_NE(h.out.find("₹914,462.59"), std::string::npos) << h.all;
    auto none = run(" --state-dir " + dir.path().string() + " history default");
    EXPECT_EQ(none.code, 2);
    EXPECT_NE(none.all.find("keeps only the newest state"), std::string::npos) << none.all;
}

TEST(Tool, BadArgumentsGiveClearErrors) {
    TempDir dir;
    auto r = run(" --state-dir " + dir.path().string() + " export ../etc");
    EXPECT_EQ(r.code, 2);
    EXPECT_NE(r.all.find("invalid session name '../etc'"), std::string::npos) << r.all;
    r = run(" --state-dir " + dir.path().string() + " --backend nosuch show-sessions");
    EXPECT_NE(r.code, 0);
    EXPECT_NE(r.all.find("unknown backend 'nosuch'"), std::string::npos) << r.all;
    r = run(" convert --from json-files --to mmap-binary:/tmp");
    EXPECT_NE(r.code, 0);
    EXPECT_NE(r.all.find("must be BACKEND:DIR"), std::string::npos) << r.all;
    r = run(" --state-dir " + dir.path().string() + " export default");
    EXPECT_NE(r.code, 0);
    EXPECT_NE(r.all.find("no saved session 'default'"), std::string::npos) << r.all;
}

// A schema-invalid file is refused by `export` exactly as by a load: the
// same message, a non-zero exit and nothing on stdout.
TEST(Tool, ExportRefusesWhatALoadRefuses) {
    const std::array<std::pair<std::string, std::string>, 6> edits{{
        {"\"cash\": 914462.59", "\"cash\": \"abc\""},
        {"\"shares\": 75", "\"shares\": -75"},
        {"\"iteration\": 25", "\"iteration\": 9223372036854775808"},
        {"\"trading_mode\": \"paper\"", "\"trading_mode\": 7"},
        {"\"entry_price\": 220.42", "\"entry_price\": null"},
        {"\"initial_cash\": 1000000.0,", ""},
    }};
    for (const auto& [from, to] : edits) {
        SCOPED_TRACE(to.empty() ? "removed " + from : to);
        TempDir dir;
        auto text = seed();
        const auto at = text.find(from);
        ASSERT_NE(at, std::string::npos);
        text.replace(at, from.size(), to);
        d::write_file_atomic(dir.path() / "fno_system_state.json", text, false);
        const auto sd = " --state-dir " + dir.path().string();
        const auto v = run(sd + " verify default");
        const auto e = run(sd + " export default");
        EXPECT_NE(v.code, 0) << v.all;
        EXPECT_NE(e.code, 0) << e.all;
        EXPECT_TRUE(e.out.empty()) << e.out.substr(0, 200);
        EXPECT_NE(e.all.find("fno_system_state.json"), std::string::npos) << e.all;
    }
    // and a file without its portfolio at all
    TempDir dir;
    d::write_file_atomic(dir.path() / "fno_system_state.json",
                         R"({"timestamp": "2025-09-29T11:49:10.218268", "trading_mode": "paper", "iteration": 3})", false);
    const auto e = run(" --state-dir " + dir.path().string() + " export default");
    EXPECT_NE(e.code, 0) << e.all;
    EXPECT_TRUE(e.out.empty());
    EXPECT_NE(e.all.find("portfolio"), std::string::npos) << e.all;
}

// Session names that look like options are taken after `--`.
TEST(Tool, NamesThatLookLikeOptionsComeAfterADoubleDash) {
    TempDir dir;
    const auto sd = " --state-dir " + dir.path().string();
    auto r = run(sd + " verify -- -rf");
    EXPECT_EQ(r.code, 1) << r.all;
    EXPECT_NE(r.all.find("-rf: no such session"), std::string::npos) << r.all;
    r = run(sd + " export -- -rf");
    EXPECT_NE(r.code, 0);
    EXPECT_NE(r.all.find("no saved session '-rf'"), std::string::npos) << r.all;
    // without it, a name like an option gets a hint at `--`
    r = run(sd + " verify -rf");
    EXPECT_EQ(r.code, 2) << r.all;
    EXPECT_NE(r.all.find("--"), std::string::npos) << r.all;
}
