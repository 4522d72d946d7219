// tradestate — PostgreSQL plumbing shared by the postgres backend plugin and
// the Follower (LISTEN/NOTIFY) helper: settings from `[persistence.postgres]`,
// password redaction, and small RAII wrappers around libpq.
//
// Needs libpq (CMake: PostgreSQL::PostgreSQL). Header-only.
#pragma once

#include <tradestate/error.hpp>

#include <boost/json/object.hpp>

#include <libpq-fe.h>

#include <cstdint>
#include <cstdlib>
#include <memory>
#include <algorithm>
#include <cctype>
#include <utility>
#include <string>
#include <string_view>
#include <vector>

namespace tradestate::postgres {

/// `[persistence.postgres]` of config.toml.
struct Settings {
    std::string url;                 ///< libpq URL or key=value string; empty: the PG* environment variables
    std::string schema = "tradestate"; ///< schema holding our tables (created on first use)
    int lease_seconds = 30;          ///< a vanished writer's lease is freed by the server within about this time (TCP)
    int connect_timeout = 5;         ///< seconds, per connection attempt
    int retry_initial_ms = 250;      ///< first reconnect backoff after a failed attempt
    int retry_max_ms = 10000;        ///< backoff cap
    int keep_history = 0;            ///< snapshots kept per session; 0 keeps all
    bool jsonb = true;               ///< also store each document as JSONB (for SQL queries); costs save time
    std::string application_name;    ///< shown in pg_stat_activity and in lease holders; default: program name
};

namespace setting_detail {

[[nodiscard]] inline int setting_int(const boost::json::object& o, const char* key, int def, int lo, int hi) {
    auto it = o.find(key);
    if (it == o.end()) return def;
    std::int64_t v = 0;
    if (it->value().is_int64()) v = it->value().get_int64();
    else if (it->value().is_uint64() && it->value().get_uint64() < (1ull << 62)) v = static_cast<std::int64_t>(it->value().get_uint64());
    else
        throw Error(Errc::config, std::string("[persistence.postgres] ") + key + " must be an integer");
    if (v < lo || v > hi)
        throw Error(Errc::config, std::string("[persistence.postgres] ") + key + " = " + std::to_string(v) +
                                      " is out of range (" + std::to_string(lo) + ".." + std::to_string(hi) + ")");
    return static_cast<int>(v);
}

[[nodiscard]] inline std::string setting_string(const boost::json::object& o, const char* key, std::string def) {
    auto it = o.find(key);
    if (it == o.end()) return def;
    if (!it->value().is_string())
        throw Error(Errc::config, std::string("[persistence.postgres] ") + key + " must be a string");
    return std::string(it->value().get_string());
}

[[nodiscard]] inline bool setting_bool(const boost::json::object& o, const char* key, bool def) {
    auto it = o.find(key);
    if (it == o.end()) return def;
    if (!it->value().is_bool()) throw Error(Errc::config, std::string("[persistence.postgres] ") + key + " must be true or false");
    return it->value().get_bool();
}

[[nodiscard]] inline int hexval(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

[[nodiscard]] inline std::string percent_decode(std::string_view s) {
    std::string out;
    for (std::size_t i = 0; i < s.size(); ++i) {
        if (s[i] == '%' && i + 2 < s.size() && hexval(s[i + 1]) >= 0 && hexval(s[i + 2]) >= 0) {
            out.push_back(static_cast<char>(hexval(s[i + 1]) * 16 + hexval(s[i + 2])));
            i += 2;
        } else {
            out.push_back(s[i]);
        }
    }
    return out;
}

} // namespace setting_detail

/// Parse and check the settings table; unknown keys are an error (a typo
/// must not silently fall back to a default).
[[nodiscard]] inline Settings parse_settings(const boost::json::object& o) {
    static const std::vector<std::string> known = {"url", "schema", "lease_seconds", "connect_timeout",
                                                   "retry_initial_ms", "retry_max_ms", "keep_history",
                                                   "jsonb", "application_name"};
    for (const auto& kv : o) {
        bool ok = false;
        for (const auto& k : known) ok = ok || kv.key() == k;
        if (!ok) {
            std::string list;
            for (const auto& k : known) list += (list.empty() ? "" : ", ") + k;
            throw Error(Errc::config, "unknown setting '" + std::string(kv.key()) +
                                          "' in [persistence.postgres] (known: " + list + ")");
        }
    }
    Settings s;
    s.url = setting_detail::setting_string(o, "url", "");
    s.schema = setting_detail::setting_string(o, "schema", s.schema);
    if (s.schema.empty() || s.schema.size() > 40 || !((s.schema[0] >= 'a' && s.schema[0] <= 'z') || s.schema[0] == '_'))
        throw Error(Errc::config, "[persistence.postgres] schema '" + s.schema +
                                      "' is not usable: use 1-40 characters from a-z 0-9 _, starting with a letter or _");
    for (char c : s.schema)
        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_'))
            throw Error(Errc::config, "[persistence.postgres] schema '" + s.schema +
                                          "' is not usable: use 1-40 characters from a-z 0-9 _, starting with a letter or _");
    s.lease_seconds = setting_detail::setting_int(o, "lease_seconds", s.lease_seconds, 2, 86400);
    s.connect_timeout = setting_detail::setting_int(o, "connect_timeout", s.connect_timeout, 1, 3600);
    s.retry_initial_ms = setting_detail::setting_int(o, "retry_initial_ms", s.retry_initial_ms, 0, 3600000);
    s.retry_max_ms = setting_detail::setting_int(o, "retry_max_ms", s.retry_max_ms, 0, 3600000);
    if (s.retry_max_ms < s.retry_initial_ms) s.retry_max_ms = s.retry_initial_ms;
    s.keep_history = setting_detail::setting_int(o, "keep_history", s.keep_history, 0, 1 << 30);
    s.jsonb = setting_detail::setting_bool(o, "jsonb", s.jsonb);
    s.application_name = setting_detail::setting_string(o, "application_name", "");
    return s;
}

namespace setting_detail {

[[nodiscard]] inline char lower(char c) { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c; }

/// Where password values sit in `s`: [begin, end) ranges of the user info
/// password of a URL, `password=` query parameters, or `password=` in a
/// key=value connection string (quoted or not).
[[nodiscard]] inline std::vector<std::pair<std::size_t, std::size_t>> password_ranges(const std::string& s) {
    std::vector<std::pair<std::size_t, std::size_t>> out;
    auto word_at = [&](std::size_t i) {
        static constexpr std::string_view w = "password";
        if (i + w.size() > s.size()) return false;
        for (std::size_t k = 0; k < w.size(); ++k)
            if (lower(s[i + k]) != w[k]) return false;
        return true;
    };
    const auto scheme = s.find("://");
    if (scheme != std::string::npos) {
        const auto start = scheme + 3;
        auto end = s.find_first_of("/?", start);
        if (end == std::string::npos) end = s.size();
        const auto at = end == start ? std::string::npos : s.rfind('@', end - 1);
        if (at != std::string::npos && at >= start) {
            const auto colon = s.find(':', start);
            if (colon != std::string::npos && colon < at) out.emplace_back(colon + 1, at);
        }
        for (auto q = s.find('?', start); q != std::string::npos; q = s.find('&', q + 1)) {
            if (!(word_at(q + 1) && q + 9 < s.size() && s[q + 9] == '=')) continue;
            const auto v = q + 10;
            auto e = s.find_first_of("&#", v);
            out.emplace_back(v, e == std::string::npos ? s.size() : e);
        }
        return out;
    }
    for (std::size_t i = 0; i + 8 <= s.size(); ++i) {
        if (!word_at(i)) continue;
        if (i > 0 && (std::isalnum(static_cast<unsigned char>(s[i - 1])) || s[i - 1] == '_')) continue;
        std::size_t j = i + 8;
        while (j < s.size() && s[j] == ' ') ++j;
        if (j >= s.size() || s[j] != '=') continue;
        ++j;
        while (j < s.size() && s[j] == ' ') ++j;
        std::size_t e = j;
        if (j < s.size() && s[j] == '\'') {
            e = j + 1;
            while (e < s.size() && s[e] != '\'') e += (s[e] == '\\' && e + 1 < s.size()) ? 2 : 1;
            e = std::min(e + 1, s.size());
        } else {
            while (e < s.size() && !std::isspace(static_cast<unsigned char>(s[e]))) ++e;
        }
        out.emplace_back(j, e);
        i = e;
    }
    return out;
}

} // namespace setting_detail

/// `url` with every password replaced by `***`: the userinfo of a URL
/// (`postgresql://user:***@host/db`), `password=` query parameters and
/// `password=` in key=value connection strings.
[[nodiscard]] inline std::string redact_url(std::string_view url) {
    std::string s(url);
    auto ranges = setting_detail::password_ranges(s);
    for (auto it = ranges.rbegin(); it != ranges.rend(); ++it) s.replace(it->first, it->second - it->first, "***");
    return s;
}

/// Passwords that could appear in libpq's messages: the one in the URL
/// (raw and percent-decoded) and PGPASSWORD.
[[nodiscard]] inline std::vector<std::string> known_passwords(const Settings& st) {
    std::vector<std::string> out;
    for (const auto& [b, e] : setting_detail::password_ranges(st.url)) {
        std::string p = st.url.substr(b, e - b);
        if (p.size() >= 2 && p.front() == '\'' && p.back() == '\'') p = p.substr(1, p.size() - 2);
        if (p.empty()) continue;
        const auto d = setting_detail::percent_decode(p);
        out.push_back(std::move(p));
        if (d != out.back()) out.push_back(d);
    }
    if (const char* env = std::getenv("PGPASSWORD"); env && *env) out.emplace_back(env);
    return out;
}

/// `msg` with any known password replaced by `***`.
[[nodiscard]] inline std::string scrub(std::string msg, const Settings& st) {
    msg = redact_url(msg);
    for (const auto& p : known_passwords(st)) {
        if (p.size() < 2) continue; // a one-character "password" would blank out random letters
        for (auto pos = msg.find(p); pos != std::string::npos; pos = msg.find(p, pos + 3)) msg.replace(pos, p.size(), "***");
    }
    return msg;
}

/// What we connect to, fit for logs: the redacted URL, or the PG*
/// environment variables that libpq will use.
[[nodiscard]] inline std::string describe_target(const Settings& st) {
    if (!st.url.empty()) return scrub(st.url, st);
    std::string d = "PostgreSQL from the PG* environment (";
    bool any = false;
    for (const char* var : {"PGHOST", "PGPORT", "PGDATABASE", "PGUSER", "PGSERVICE"}) {
        if (const char* v = std::getenv(var); v && *v) {
            d += std::string(any ? ", " : "") + var + "=" + v;
            any = true;
        }
    }
    return d + (any ? ")" : "libpq defaults)");
}

/// LISTEN/NOTIFY channel of a schema: every save in it notifies
/// `tradestate_<schema>` with payload `<session>:<sequence>`.
[[nodiscard]] inline std::string notify_channel(const Settings& st) { return "tradestate_" + st.schema; }

/// The quoted schema name for SQL text (validated by parse_settings).
[[nodiscard]] inline std::string quoted_schema(const Settings& st) { return "\"" + st.schema + "\""; }

struct ConnDeleter {
    void operator()(PGconn* c) const noexcept { PQfinish(c); }
};
struct ResultDeleter {
    void operator()(PGresult* r) const noexcept { PQclear(r); }
};
using conn_ptr = std::unique_ptr<PGconn, ConnDeleter>;
using result_ptr = std::unique_ptr<PGresult, ResultDeleter>;

[[nodiscard]] inline std::string program_name() {
    std::string s;
    if (FILE* f = std::fopen("/proc/self/comm", "r")) {
        char buf[64] = {};
        if (std::fgets(buf, sizeof buf, f)) s = buf;
        std::fclose(f);
    }
    while (!s.empty() && (s.back() == '\n' || s.back() == '\r')) s.pop_back();
    return s.empty() ? "tradestate" : s;
}

/// Open a connection. On failure returns null and fills `error` (scrubbed).
[[nodiscard]] inline conn_ptr connect(const Settings& st, std::string& error) {
    const std::string timeout = std::to_string(st.connect_timeout);
    const std::string app = st.application_name.empty() ? program_name() : st.application_name;
    std::vector<const char*> keys, vals;
    keys.push_back("connect_timeout");
    vals.push_back(timeout.c_str());
    keys.push_back("fallback_application_name");
    vals.push_back(app.c_str());
    keys.push_back("keepalives");
    vals.push_back("1");
    if (!st.url.empty()) {
        keys.push_back("dbname");
        vals.push_back(st.url.c_str());
    }
    keys.push_back(nullptr);
    vals.push_back(nullptr);
    conn_ptr c(PQconnectdbParams(keys.data(), vals.data(), 1));
    if (!c) {
        error = "out of memory creating a PostgreSQL connection";
        return nullptr;
    }
    if (PQstatus(c.get()) != CONNECTION_OK) {
        std::string m = PQerrorMessage(c.get());
        while (!m.empty() && (m.back() == '\n' || m.back() == ' ')) m.pop_back();
        for (auto& ch : m)
            if (ch == '\n') ch = ' ';
        error = scrub(m, st);
        return nullptr;
    }
    PQsetNoticeProcessor(c.get(), [](void*, const char*) {}, nullptr);
    return c;
}

/// libpq's last error on `c`, one line, scrubbed.
[[nodiscard]] inline std::string conn_error(PGconn* c, const Settings& st) {
    std::string m = c ? PQerrorMessage(c) : "no connection";
    while (!m.empty() && (m.back() == '\n' || m.back() == ' ')) m.pop_back();
    for (auto& ch : m)
        if (ch == '\n') ch = ' ';
    return scrub(m, st);
}

} // namespace tradestate::postgres
