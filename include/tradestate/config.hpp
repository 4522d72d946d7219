// tradestate — config.toml, read with toml++ into typed settings.
//
// Every key is checked: an unknown key, a wrong type or a value out of range
// is an error naming the file, line and column. Sections and keys that an
// application adds (the runner's [instruments], ...) are declared by the
// application through `ConfigSchema` and read from `Config::table()`.
// Relative paths are resolved against the directory of the config file.
#pragma once

#include <tradestate/detail/session_name.hpp>
#include <tradestate/error.hpp>
#include <tradestate/money.hpp>
#include <tradestate/session_settings.hpp>

#include <boost/json/array.hpp>
#include <boost/json/object.hpp>
#include <boost/json/value.hpp>

#include <toml++/toml.h>

#include <algorithm>
#include <array>
#include <charconv>
#include <cmath>
#include <cstdint>
#include <filesystem>
#include <optional>
#include <sstream>
#include <string>
#include <string_view>
#include <system_error>
#include <utility>
#include <vector>

namespace tradestate {

struct PersistenceConfig {
    std::string backend = "json-files";       ///< json-files | mmap-binary | compressed-archive | postgres
    std::filesystem::path state_dir = "state";
    std::filesystem::path plugin_dir;         ///< empty: next to the executable, then the install dir
    std::int64_t auto_save_every = 10;        ///< iterations between automatic saves (0: only on exit)
    std::int64_t keep_backups = 5;
    bool fsync = true;
    std::uint64_t max_file_bytes = 1ull << 30; ///< refuse to load a larger state file
    bool journal = true;                      ///< per-trade write-ahead journal (<state_dir>/<session>.journal)
    std::string journal_fsync = "always";     ///< always | every_second | never (see journal.hpp)
    boost::json::object backend_settings;     ///< [persistence.<backend>] tables, by backend name
};

/// [trading]: how a new session starts (mode, cash) and the settings every
/// session runs with, which it saves (min_confidence, check_interval,
/// max_positions, capital_per_trade; `settings.extra` stays empty here).
struct TradingConfig {
    std::string mode = "paper";
    Money initial_cash = Money::from_rupees(1000000);
    SessionSettings settings;
};

struct DashboardConfig {
    bool enabled = true;
    std::string bind = "127.0.0.1";
    std::int64_t port = 8888;
    std::int64_t refresh_ms = 2000;
};

/// How programs show things to a person. Times are always IST with the zone
/// written out (the trading day is Indian); money grouping is a choice.
struct DisplayConfig {
    MoneyGrouping money_grouping = MoneyGrouping::western; ///< western (₹896,439.16) | indian (₹8,96,439.16)
};

/// The sections every program checks; an application's own go in `ConfigSchema`.
inline constexpr std::array<std::string_view, 4> library_sections{"persistence", "trading", "dashboard", "display"};

[[nodiscard]] constexpr bool is_library_section(std::string_view s) noexcept {
    return std::find(library_sections.begin(), library_sections.end(), s) != library_sections.end();
}

/// Keys an application adds to the file: whole sections it validates itself
/// ("instruments") and single keys in the library's sections ("trading.brokerage_per_order").
struct ConfigSchema {
    std::vector<std::string> sections;
    std::vector<std::string> keys;
};

namespace detail {

[[nodiscard]] inline std::string where(const std::filesystem::path& file, const toml::source_region& src) {
    return file.string() + ":" + std::to_string(src.begin.line) + ":" + std::to_string(src.begin.column);
}

/// toml -> JSON, for backend settings that cross the plugin boundary.
[[nodiscard]] inline boost::json::value toml_to_json(const toml::node& n) {
    if (auto t = n.as_table()) {
        boost::json::object o;
        for (auto&& [k, v] : *t) o[std::string(k.str())] = toml_to_json(v);
        return o;
    }
    if (auto a = n.as_array()) {
        boost::json::array out;
        for (auto&& v : *a) out.push_back(toml_to_json(v));
        return out;
    }
    if (auto s = n.as_string()) return boost::json::value(s->get());
    if (auto i = n.as_integer()) return boost::json::value(i->get());
    if (auto f = n.as_floating_point()) return boost::json::value(f->get());
    if (auto b = n.as_boolean()) return boost::json::value(b->get());
    std::ostringstream os; // dates and times as their TOML text
    if (auto d = n.as_date()) os << *d;
    else if (auto t = n.as_time()) os << *t;
    else if (auto dt = n.as_date_time()) os << *dt;
    return boost::json::value(os.str());
}

/// An amount in config.toml: integers are whole rupees, floats go through
/// their shortest text, strings are parsed (Money::parse).
/// nullopt when `n` is none of these (or a float that is not finite);
/// throws Error for a malformed amount.
[[nodiscard]] inline std::optional<Money> toml_money(const toml::node& n) {
    if (auto i = n.as_integer()) return Money::from_rupees(i->get());
    if (auto f = n.as_floating_point()) {
        if (!std::isfinite(f->get())) return std::nullopt;
        char buf[64];
        auto r = std::to_chars(buf, buf + sizeof buf, f->get());
        return Money::parse(std::string_view(buf, static_cast<std::size_t>(r.ptr - buf)));
    }
    if (auto s = n.as_string()) return Money::parse(s->get());
    return std::nullopt;
}

} // namespace detail

class Config {
public:
    PersistenceConfig persistence;
    TradingConfig trading;
    DashboardConfig dashboard;
    DisplayConfig display;

    /// The built-in defaults (what config.toml in the repository says too).
    [[nodiscard]] static Config defaults() { return Config{}; }

    /// Read and check `file`. Throws Errc::config with file:line:column.
    [[nodiscard]] static Config load(const std::filesystem::path& file, const ConfigSchema& schema = {}) {
        toml::table tbl;
        try {
            tbl = toml::parse_file(file.string());
        } catch (const toml::parse_error& e) {
            std::error_code ec;
            if (!std::filesystem::exists(file, ec))
                throw Error(Errc::config, "config file not found: " + file.string());
            throw Error(Errc::config, detail::where(file, e.source()) + ": " + std::string(e.description()));
        }
        return from_table(std::move(tbl), file, schema);
    }

    /// Parse TOML text (`name` is used in messages; relative paths resolve against `base_dir`).
    [[nodiscard]] static Config parse(std::string_view text, const std::string& name = "config.toml",
                                      const ConfigSchema& schema = {}) {
        toml::table tbl;
        try {
            tbl = toml::parse(text, name);
        } catch (const toml::parse_error& e) {
            throw Error(Errc::config, detail::where(name, e.source()) + ": " + std::string(e.description()));
        }
        return from_table(std::move(tbl), name, schema);
    }

    /// `explicit_path` if given, else ./config.toml if it exists, else defaults.
    [[nodiscard]] static Config discover(const std::filesystem::path& explicit_path = {}, const ConfigSchema& schema = {}) {
        if (!explicit_path.empty()) return load(explicit_path, schema);
        std::error_code ec;
        if (std::filesystem::exists("config.toml", ec)) return load("config.toml", schema);
        return defaults();
    }

    /// The whole file, for application sections declared in the schema.
    [[nodiscard]] const toml::table& table() const noexcept { return table_; }
    /// The sections the file says other programs read (`app_sections`).
    [[nodiscard]] const std::vector<std::string>& app_sections() const noexcept { return app_sections_; }
    /// The file it came from (empty for defaults).
    [[nodiscard]] const std::filesystem::path& source() const noexcept { return source_; }

    /// Settings table for `backend` ([persistence.<backend>]), empty if none.
    [[nodiscard]] boost::json::object backend_settings_for(const std::string& backend) const {
        if (auto* v = persistence.backend_settings.if_contains(backend); v && v->is_object()) return v->get_object();
        return {};
    }

private:
    static Config from_table(toml::table tbl, const std::filesystem::path& file, const ConfigSchema& schema) {
        Config c;
        c.source_ = file;
        const auto base = file.has_parent_path() ? file.parent_path() : std::filesystem::path(".");
        // n: anything with source() (a node, or a key: unknown-key errors point at the key).
        auto fail = [&](const auto& n, const std::string& msg) -> void {
            throw Error(Errc::config, detail::where(file, n.source()) + ": " + msg);
        };
        auto allowed_key = [&](const std::string& dotted) {
            for (const auto& k : schema.keys)
                if (k == dotted) return true;
            return false;
        };
        auto allowed_section = [&](std::string_view s) {
            for (const auto& k : schema.sections)
                if (k == s) return true;
            return false;
        };

        auto get_string = [&](const toml::node& n, const std::string& key) -> std::string {
            if (auto s = n.as_string()) return s->get();
            fail(n, key + ": expected a string");
            return {};
        };
        auto get_int = [&](const toml::node& n, const std::string& key, std::int64_t lo, std::int64_t hi) -> std::int64_t {
            auto i = n.as_integer();
            if (!i) fail(n, key + ": expected an integer");
            const std::int64_t v = i->get();
            if (v < lo || v > hi)
                fail(n, key + ": " + std::to_string(v) + " is out of range [" + std::to_string(lo) + ", " + std::to_string(hi) + "]");
            return v;
        };
        auto get_bool = [&](const toml::node& n, const std::string& key) -> bool {
            if (auto b = n.as_boolean()) return b->get();
            fail(n, key + ": expected true or false");
            return false;
        };
        auto get_double = [&](const toml::node& n, const std::string& key) -> double {
            if (auto f = n.as_floating_point()) {
                if (!std::isfinite(f->get())) fail(n, key + ": expected a finite number");
                return f->get();
            }
            if (auto i = n.as_integer()) return static_cast<double>(i->get());
            fail(n, key + ": expected a number");
            return 0;
        };
        auto get_money = [&](const toml::node& n, const std::string& key) -> Money {
            try {
                if (auto m = detail::toml_money(n)) return *m;
            } catch (const Error& e) {
                fail(n, key + ": " + e.what());
            }
            fail(n, key + ": expected an amount (number or string)");
            return {};
        };
        auto path_of = [&](const std::string& s) {
            std::filesystem::path p(s);
            return (s.empty() || p.is_absolute()) ? p : (base / p).lexically_normal();
        };

        // `app_sections = [...]`, before the first table: the sections other
        // programs sharing this file read and check. This program leaves
        // them alone; a section neither it nor the list names is refused.
        if (auto* a = tbl.get("app_sections")) {
            auto* arr = a->as_array();
            if (!arr) fail(*a, "app_sections: expected an array of section names");
            for (auto&& e : *arr) {
                auto* name = e.as_string();
                if (!name) fail(e, "app_sections: expected section names (strings)");
                const std::string nm = name->get();
                if (is_library_section(nm))
                    fail(e, "app_sections: [" + nm + "] is tradestate's own section, checked by every program");
                if (!is_valid_session_name(nm)) fail(e, "app_sections: '" + detail::printable(nm) + "' is not a section name");
                c.app_sections_.push_back(nm);
            }
        }
        const auto shared = [&](std::string_view s) {
            return std::find(c.app_sections_.begin(), c.app_sections_.end(), s) != c.app_sections_.end();
        };
        for (auto&& [skey, snode] : tbl) {
            const std::string section(skey.str());
            if (section == "app_sections" || allowed_section(section) || shared(section)) continue;
            auto* st = snode.as_table();
            if (!is_library_section(section)) {
                std::string known;
                for (const auto x : library_sections) known += (known.empty() ? "" : ", ") + std::string(x);
                for (const auto& x : schema.sections) known += ", " + x;
                std::string others;
                for (const auto& x : c.app_sections_) others += (others.empty() ? "" : ", ") + x;
                fail(snode, "unknown section [" + section + "] (known: " + known +
                                (others.empty() ? std::string()
                                                : "; other programs' (app_sections): " + others) +
                                "); a section another program reads goes in app_sections = [...] at the top of "
                                "the file");
            }
            if (!st) fail(snode, section + ": expected a table");
            for (auto&& [k, n] : *st) {
                const std::string key(k.str());
                const std::string dotted = section + "." + key;
                if (allowed_key(dotted)) continue;
                if (section == "persistence") {
                    auto& p = c.persistence;
                    if (key == "backend") {
                        p.backend = get_string(n, dotted);
                        if (!is_valid_session_name(p.backend))
                            fail(n, dotted + ": '" + detail::printable(p.backend) +
                                        "' is not a backend name (1-64 characters from A-Z a-z 0-9 . _ -)");
                    }
                    else if (key == "state_dir") p.state_dir = path_of(get_string(n, dotted));
                    else if (key == "plugin_dir") p.plugin_dir = path_of(get_string(n, dotted));
                    else if (key == "auto_save_every") p.auto_save_every = get_int(n, dotted, 0, 1'000'000'000);
                    else if (key == "keep_backups") p.keep_backups = get_int(n, dotted, 0, 10'000);
                    else if (key == "fsync") p.fsync = get_bool(n, dotted);
                    else if (key == "journal") p.journal = get_bool(n, dotted);
                    else if (key == "journal_fsync") {
                        p.journal_fsync = get_string(n, dotted);
                        if (p.journal_fsync != "always" && p.journal_fsync != "every_second" && p.journal_fsync != "never")
                            fail(n, dotted + ": expected \"always\", \"every_second\" or \"never\"");
                    } else if (key == "max_file_bytes")
                        p.max_file_bytes = static_cast<std::uint64_t>(get_int(n, dotted, 1024, INT64_MAX));
                    else if (n.is_table()) {
                        // A backend's own settings; open_backend() checks that such a backend exists.
                        if (!is_valid_session_name(key))
                            fail(k, "[" + dotted + "]: '" + detail::printable(key) + "' is not a backend name");
                        p.backend_settings[key] = detail::toml_to_json(n);
                    }
                    else fail(k, "unknown key " + dotted);
                } else if (section == "trading") {
                    auto& t = c.trading;
                    if (key == "mode") {
                        t.mode = get_string(n, dotted);
                        if (t.mode != "paper" && t.mode != "live") fail(n, dotted + ": expected \"paper\" or \"live\"");
                    } else if (key == "initial_cash") {
                        t.initial_cash = get_money(n, dotted);
                        if (t.initial_cash <= Money{}) fail(n, dotted + ": must be positive");
                    } else if (key == "min_confidence") {
                        t.settings.min_confidence = get_double(n, dotted);
                        if (t.settings.min_confidence < 0 || t.settings.min_confidence > 1)
                            fail(n, dotted + ": must be between 0 and 1");
                    } else if (key == "check_interval") t.settings.check_interval = get_int(n, dotted, 0, 86'400);
                    else if (key == "max_positions") t.settings.max_positions = get_int(n, dotted, 0, 10'000);
                    else if (key == "capital_per_trade") {
                        t.settings.capital_per_trade = get_money(n, dotted);
                        if (t.settings.capital_per_trade <= Money{}) fail(n, dotted + ": must be positive");
                    } else fail(k, "unknown key " + dotted);
                } else if (section == "display") {
                    if (key == "money_grouping") {
                        const auto g = get_string(n, dotted);
                        if (g == "western") c.display.money_grouping = MoneyGrouping::western;
                        else if (g == "indian") c.display.money_grouping = MoneyGrouping::indian;
                        else fail(n, dotted + ": expected \"western\" (₹896,439.16) or \"indian\" (₹8,96,439.16)");
                    } else fail(k, "unknown key " + dotted);
                } else {
                    auto& d = c.dashboard;
                    if (key == "enabled") d.enabled = get_bool(n, dotted);
                    else if (key == "bind") d.bind = get_string(n, dotted);
                    else if (key == "port") d.port = get_int(n, dotted, 0, 65535);
                    else if (key == "refresh_ms") d.refresh_ms = get_int(n, dotted, 100, 3'600'000);
                    else fail(k, "unknown key " + dotted);
                }
            }
        }
        // The default state dir, like an explicit one, is relative to the file.
        if (!tbl.contains("persistence") || !tbl["persistence"].as_table() ||
            !tbl["persistence"].as_table()->contains("state_dir"))
            c.persistence.state_dir = path_of(c.persistence.state_dir.string());
        c.table_ = std::move(tbl);
        return c;
    }

    toml::table table_;
    std::filesystem::path source_;
    std::vector<std::string> app_sections_;
};

} // namespace tradestate
