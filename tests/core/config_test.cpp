#include <tradestate/config.hpp>
#include <tradestate/detail/atomic_file.hpp>

#include <tradestate_test/paths.hpp>

#include <gtest/gtest.h>

using namespace tradestate;

namespace {
std::string error_of(const std::string& toml, const ConfigSchema& schema = {}) {
    try {
        (void)Config::parse(toml, "/cfg/config.toml", schema);
    } catch (const Error& e) {
        EXPECT_EQ(e.code(), Errc::config);
        return e.what();
    }
    return "(no error)";
}
} // namespace

TEST(Config, TheRepositoryConfigLoadsAndMatchesTheDefaults) {
    const auto c = Config::load(tradestate::testing::source_dir() / "config.toml",
                                ConfigSchema{{"instruments", "runner", "risk", "strategies", "charges"}, {}});
    const auto d = Config::defaults();
    EXPECT_EQ(c.persistence.backend, "json-files");
    EXPECT_EQ(c.persistence.state_dir, tradestate::testing::source_dir() / "state");
    EXPECT_EQ(c.persistence.auto_save_every, d.persistence.auto_save_every);
    EXPECT_EQ(c.persistence.keep_backups, d.persistence.keep_backups);
    EXPECT_EQ(c.persistence.fsync, d.persistence.fsync);
    EXPECT_EQ(c.trading.initial_cash, d.trading.initial_cash);
    EXPECT_EQ(c.trading.settings.max_positions, d.trading.settings.max_positions);
    EXPECT_EQ(c.trading.settings.capital_per_trade, d.trading.settings.capital_per_trade);
    EXPECT_EQ(c.dashboard.bind, "127.0.0.1");
    EXPECT_EQ(c.dashboard.port, 8888);
    EXPECT_EQ(c.dashboard.refresh_ms, 2000);
}

TEST(Config, ValuesAndRelativePaths) {
    const auto c = Config::parse(R"(
[persistence]
backend = "mmap-binary"
state_dir = "run/state"
auto_save_every = 3
fsync = false
[persistence.postgres]
url = "postgresql://u@h/db"
[trading]
initial_cash = "₹5,00,000.50"
capital_per_trade = 100000.25
max_positions = 4
)", "/cfg/config.toml");
    EXPECT_EQ(c.persistence.backend, "mmap-binary");
    EXPECT_EQ(c.persistence.state_dir, "/cfg/run/state");
    EXPECT_EQ(c.persistence.auto_save_every, 3);
    EXPECT_FALSE(c.persistence.fsync);
    EXPECT_EQ(c.backend_settings_for("postgres").at("url"), "postgresql://u@h/db");
    EXPECT_TRUE(c.backend_settings_for("json-files").empty());
    EXPECT_EQ(c.trading.initial_cash.paise(), 50000050);
    EXPECT_EQ(c.trading.settings.capital_per_trade.paise(), 10000025);
    EXPECT_EQ(c.trading.settings.max_positions, 4);
}

TEST(Config, ErrorsNameFileLineAndColumn) {
    EXPECT_EQ(error_of("[trading]\nmax_positons = 5\n"), "/cfg/config.toml:2:1: unknown key trading.max_positons");
    EXPECT_EQ(error_of("[trading]\nmax_positions = \"5\"\n"), "/cfg/config.toml:2:17: trading.max_positions: expected an integer");
    EXPECT_EQ(error_of("[persistence]\nfsync = 1\n"), "/cfg/config.toml:2:9: persistence.fsync: expected true or false");
    EXPECT_EQ(error_of("[dashboard]\nport = 70000\n"), "/cfg/config.toml:2:8: dashboard.port: 70000 is out of range [0, 65535]");
    EXPECT_EQ(error_of("\n[strategy]\n"),
              "/cfg/config.toml:2:1: unknown section [strategy] (known: persistence, trading, dashboard, display); a section "
              "another program reads goes in app_sections = [...] at the top of the file");
    EXPECT_EQ(error_of("[trading]\nmode = \"yolo\"\n"), "/cfg/config.toml:2:8: trading.mode: expected \"paper\" or \"live\"");
    EXPECT_EQ(error_of("[trading]\ninitial_cash = -5\n"), "/cfg/config.toml:2:16: trading.initial_cash: must be positive");
    EXPECT_EQ(error_of("[trading]\ninitial_cash = \"lots\"\n").rfind("/cfg/config.toml:2:16: trading.initial_cash: not an amount", 0), 0u);
    EXPECT_EQ(error_of("[trading]\nmin_confidence = nan\n"), "/cfg/config.toml:2:18: trading.min_confidence: expected a finite number");
    EXPECT_EQ(error_of("[trading\n").rfind("/cfg/config.toml:1:9: ", 0), 0u);
    EXPECT_EQ(error_of("trading = 5\n"), "/cfg/config.toml:1:11: trading: expected a table");
}

TEST(Config, ApplicationSectionsAndKeysAreDeclared) {
    ConfigSchema schema{{"instruments"}, {"trading.brokerage_per_order"}};
    EXPECT_EQ(error_of("[instruments]\nanything = 1\n[trading]\nbrokerage_per_order = 20\n", schema), "(no error)");
    EXPECT_NE(error_of("[instruments]\n"), "(no error)");
}

TEST(Config, MissingFileIsAClearError) {
    try {
        (void)Config::load("/nonexistent/dir/config.toml");
        FAIL();
    } catch (const Error& e) {
        EXPECT_EQ(std::string(e.what()), "config file not found: /nonexistent/dir/config.toml");
    }
}
