// The README's "Using the library" snippet, as written, against the
// repository's config.toml; and fno_runner, fno_dashboard and tradestate
// reading that same file, each checking its own sections.
#include <tradestate_test/support.hpp>

#include <tradestate/detail/atomic_file.hpp>
#include <tradestate/detail/json.hpp>
#include <tradestate/session_state.hpp>

#include <gtest/gtest.h>

#include <csignal>
#include <filesystem>
#include <string>
#include <vector>

namespace fs = std::filesystem;
using tradestate::testing::Process;
using tradestate::testing::ProcessOptions;
using tradestate::testing::TempDir;

namespace {

/// The repository's config.toml in a fresh directory (its state_dir
/// "state" is relative to the file, so everything stays in there).
fs::path copy_of_repo_config(const TempDir& dir, const std::string& extra = "") {
    const fs::path cfg = dir.path() / "config.toml";
    auto text = tradestate::detail::read_file(tradestate::testing::source_dir() / "config.toml");
    tradestate::detail::write_file_atomic(cfg, text + extra, false);
    return cfg;
}

int run_in(const fs::path& cwd, std::vector<std::string> argv, std::string* out = nullptr) {
    ProcessOptions o;
    o.cwd = cwd;
    return tradestate::testing::run(std::move(argv), out, o);
}

} // namespace

TEST(Readme, TheLibrarySnippetRunsAsWrittenAgainstTheRepositorysConfigToml) {
    TempDir dir;
    const auto cfg = copy_of_repo_config(dir);
    std::string out;
    // first run: a fresh session and a ₹50,000 top-up; second: a resume and another
    ASSERT_EQ(run_in(dir.path(), {TRADESTATE_TEST_README_SNIPPET}, &out), 0) << out;
    ASSERT_EQ(run_in(dir.path(), {TRADESTATE_TEST_README_SNIPPET}, &out), 0) << out;
    const auto exp = tradestate::testing::capture({tradestate::testing::tool_bin(), "--config", cfg.string(), "export", "default"});
    ASSERT_EQ(exp.code, 0) << exp.all();
    const auto state = boost::json::value_to<tradestate::SessionState>(tradestate::detail::parse(exp.out, "export"));
    EXPECT_EQ(state.portfolio.cash(), tradestate::Money::from_rupees(1'100'000));
    EXPECT_EQ(state.portfolio.cash(), state.portfolio.expected_cash());
    const auto ver = tradestate::testing::capture({tradestate::testing::tool_bin(), "--config", cfg.string(), "verify"});
    EXPECT_EQ(ver.code, 0) << ver.all();
}

TEST(Readme, EveryProgramReadsTheRepositorysConfigToml) {
    TempDir dir;
    const auto cfg = copy_of_repo_config(dir);
    std::string out;
    ASSERT_EQ(run_in(dir.path(), {tradestate::testing::runner_bin(), "--config", cfg.string(), "--iterations", "3",
                                  "--no-dashboard", "--interval-ms", "0"},
                     &out),
              0)
        << out;
    const auto shown = tradestate::testing::capture({tradestate::testing::tool_bin(), "--config", cfg.string(), "show-sessions"});
    EXPECT_EQ(shown.code, 0) << shown.all();
    EXPECT_NE(shown.out.find("• Iteration: 3"), std::string::npos) << shown.out;

    ProcessOptions o;
    o.cwd = dir.path();
    Process dash({tradestate::testing::dashboard_bin(), "--config", cfg.string(), "--port", "0"}, o);
    const auto line = dash.until("fno_dashboard: listening on", std::chrono::seconds(30));
    ASSERT_TRUE(line) << dash.output();
    dash.signal(SIGTERM);
    EXPECT_EQ(dash.wait(), 0) << dash.output();
}

TEST(Readme, ASectionNoProgramDeclaresIsRefusedByEveryProgram) {
    TempDir dir;
    const auto cfg = copy_of_repo_config(dir, "\n[instrumentz]\nexpiry_weekday = \"tuesday\"\n");
    const std::vector<std::vector<std::string>> programs{
        {tradestate::testing::runner_bin(), "--config", cfg.string(), "--iterations", "0", "--no-dashboard"},
        {tradestate::testing::tool_bin(), "--config", cfg.string(), "show-sessions"},
        {tradestate::testing::dashboard_bin(), "--config", cfg.string(), "--port", "0"},
    };
    for (const auto& argv : programs) {
        SCOPED_TRACE(argv[0]);
        std::string out;
        EXPECT_NE(run_in(dir.path(), argv, &out), 0) << out;
        EXPECT_NE(out.find("config.toml:"), std::string::npos) << out;
        EXPECT_NE(out.find("unknown section [instrumentz]"), std::string::npos) << out;
        EXPECT_NE(out.find("app_sections"), std::string::npos) << out;
    }
    EXPECT_FALSE(fs::exists(dir.path() / "state" / "fno_system_state.json")) << "a refused config still ran a session";
}
