// The postgres plugin's connection: one libpq connection under a mutex,
// reconnect with exponential backoff, session setup and the schema
// migrations. Private to the plugin (postgres_backend.cpp includes it).
#pragma once

#include <tradestate/error.hpp>
#include <tradestate/postgres/common.hpp>

#include "postgres_sql.hpp"

#include <spdlog/logger.h>

#include <algorithm>
#include <cctype>
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <unistd.h>

namespace tradestate::postgres {

/// Highest schema version this plugin creates and understands.
inline constexpr int schema_version_supported = 3;

/// The connection broke (as opposed to an SQL error on a live connection).
struct ConnectionLost {
    std::string message;
};

/// The server refused a statement on a live connection.
struct SqlError {
    std::string code, message, what;
};

/// Parameters of one statement, as text (NULL when empty optional).
using Params = std::vector<std::optional<std::string>>;

inline std::int64_t to_i64(const char* s) { return std::strtoll(s, nullptr, 10); }

inline std::string hostname() {
    char buf[256] = {};
    if (::gethostname(buf, sizeof buf - 1) != 0) return "unknown-host";
    return buf;
}

/// One connection to the server, under a mutex: reconnect with backoff,
/// session setup and the schema migrations (sql/schema_v*.sql).
class Connection {
public:
    Connection(Settings st, std::shared_ptr<spdlog::logger> log)
        : st_(std::move(st)), log_(std::move(log)), target_(describe_target(st_)), s_(quoted_schema(st_)) {
        app_ = st_.application_name.empty() ? program_name() : st_.application_name;
        host_ = hostname();
    }

    const Settings& settings() const { return st_; }
    const std::string& target() const { return target_; }
    const std::string& schema_q() const { return s_; }
    spdlog::logger& log() { return *log_; }

    /// Run `f()` with a live connection, under the mutex. If the
    /// connection turns out to be dead (e.g. the server restarted while
    /// we were idle), reconnect once and call `f` again with `retry=true`.
    template <class F>
    auto with_conn(const std::string& what, F&& f) -> decltype(f(false)) {
        std::lock_guard lk(mu_);
        for (int attempt = 0;; ++attempt) {
            ensure_connected(what);
            try {
                return f(attempt > 0);
            } catch (const ConnectionLost& e) {
                conn_.reset();
                log_->warn("postgres: lost the connection to {} during {}: {}", target_, what, e.message);
                if (attempt == 0) continue;
                throw Error(Errc::io, what + " failed: lost the connection to " + target_ + " (" + e.message +
                                          "); nothing was acknowledged, the next call reconnects");
            }
        }
    }

    /// Execute one statement on the live connection (call inside with_conn).
    result_ptr exec(const std::string& sql, const Params& params, const std::string& what) {
        std::vector<const char*> vals;
        vals.reserve(params.size());
        for (const auto& p : params) vals.push_back(p ? p->c_str() : nullptr);
        result_ptr r(PQexecParams(conn_.get(), sql.c_str(), static_cast<int>(vals.size()), nullptr, vals.data(), nullptr,
                                  nullptr, 0));
        const auto status = r ? PQresultStatus(r.get()) : PGRES_FATAL_ERROR;
        if (status == PGRES_COMMAND_OK || status == PGRES_TUPLES_OK) return r;
        if (!r || PQstatus(conn_.get()) != CONNECTION_OK) throw ConnectionLost{conn_error(conn_.get(), st_)};
        const char* state = PQresultErrorField(r.get(), PG_DIAG_SQLSTATE);
        const char* primary = PQresultErrorField(r.get(), PG_DIAG_MESSAGE_PRIMARY);
        const std::string code = state ? state : "";
        const std::string msg = scrub(primary ? primary : conn_error(conn_.get(), st_), st_);
        // 57P01 admin_shutdown, 57P02 crash_shutdown, 57P03 cannot_connect_now, 08xxx connection exceptions
        if (code == "57P01" || code == "57P02" || code == "57P03" || code.rfind("08", 0) == 0)
            throw ConnectionLost{msg};
        throw SqlError{code, msg, what};
    }

    /// Abort the open transaction, if the connection is still there.
    void rollback_quietly() {
        if (conn_ && PQstatus(conn_.get()) == CONNECTION_OK) result_ptr(PQexec(conn_.get(), "ROLLBACK"));
    }

    const std::string& app() const { return app_; }
    const std::string& host() const { return host_; }

    /// Called with the mutex held after every (re)connection, before the
    /// call that connected goes on; it may exec().
    void after_connect(std::function<void()> f) { after_connect_ = std::move(f); }

    /// Run `f()` under the mutex without connecting: for work that only
    /// makes sense on the connection there is (releasing a lease).
    /// `f` gets whether that connection is live.
    template <class F>
    void if_connected(F&& f) {
        std::lock_guard lk(mu_);
        f(conn_ && PQstatus(conn_.get()) == CONNECTION_OK);
    }

    /// Forget a connection found broken (inside with_conn / if_connected).
    void drop() { conn_.reset(); }

private:
    void ensure_connected(const std::string& what) {
        if (conn_ && PQstatus(conn_.get()) == CONNECTION_OK) return;
        conn_.reset();
        const auto now = std::chrono::steady_clock::now();
        if (now < next_attempt_) {
            const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(next_attempt_ - now).count();
            throw Error(Errc::io, what + " failed: PostgreSQL at " + target_ + " is unreachable (" + last_error_ +
                                      "); the next reconnect attempt is in " + std::to_string(ms) +
                                      " ms (backoff), nothing was written");
        }
        std::string err;
        conn_ptr c = connect(st_, err);
        if (c) {
            conn_ = std::move(c);
            try {
                setup_session();
                if (!migrated_) migrate();
                migrated_ = true;
                if (after_connect_) after_connect_();
            } catch (const ConnectionLost& e) {
                conn_.reset();
                err = e.message;
            } catch (const SqlError& e) {
                conn_.reset();
                backoff(e.message);
                throw Error(Errc::io, what + " failed: preparing the connection to " + target_ + " failed: " +
                                          e.message + " (SQLSTATE " + e.code + ")");
            } catch (...) {
                conn_.reset();
                throw;
            }
        }
        if (!conn_) {
            backoff(err);
            throw Error(Errc::io, what + " failed: cannot connect to PostgreSQL at " + target_ + ": " + err +
                                      "; nothing was written, retrying in " + std::to_string(backoff_ms_) + " ms");
        }
        if (had_connection_) log_->warn("postgres: reconnected to {}", target_);
        else log_->info("postgres: connected to {} (schema {}, version {})", target_, st_.schema, schema_version_supported);
        had_connection_ = true;
        backoff_ms_ = 0;
        next_attempt_ = {};
    }

    void backoff(const std::string& err) {
        backoff_ms_ = backoff_ms_ == 0 ? st_.retry_initial_ms : std::min(backoff_ms_ * 2, st_.retry_max_ms);
        next_attempt_ = std::chrono::steady_clock::now() + std::chrono::milliseconds(backoff_ms_);
        last_error_ = err;
        log_->warn("postgres: cannot reach {}: {}; next attempt in {} ms", target_, err, backoff_ms_);
    }

    void setup_session() {
        // A lease lives as long as this connection: never let the server
        // time it out for idleness; let it notice a vanished client within
        // about lease_seconds (TCP only; ignored on Unix sockets).
        const int idle = std::max(1, st_.lease_seconds / 3), interval = std::max(1, st_.lease_seconds / 6);
        (void)exec("SELECT set_config('idle_session_timeout', '0', false), "
                   "set_config('idle_in_transaction_session_timeout', '0', false), "
                   "set_config('tcp_keepalives_idle', $1, false), set_config('tcp_keepalives_interval', $2, false), "
                   "set_config('tcp_keepalives_count', '3', false), set_config('tcp_user_timeout', $3, false)",
                   {std::to_string(idle), std::to_string(interval), std::to_string(st_.lease_seconds * 1000)},
                   "set up the session");
    }

    void migrate() {
        const std::string& s = s_;
        const std::string lock = "SELECT pg_advisory_xact_lock(hashtextextended('tradestate-migrate:" + st_.schema + "', 0))";
        (void)exec("BEGIN", {}, "migrate");
        try {
            (void)exec(lock, {}, "migrate");
            (void)exec("CREATE SCHEMA IF NOT EXISTS " + s, {}, "create schema");
            (void)exec("CREATE TABLE IF NOT EXISTS " + s +
                           ".schema_version (version integer PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT "
                           "now(), applied_by text)",
                       {}, "create schema_version");
            auto r = exec("SELECT coalesce(max(version), 0) FROM " + s + ".schema_version", {}, "read schema version");
            const auto have = to_i64(PQgetvalue(r.get(), 0, 0));
            if (have > schema_version_supported) {
                (void)exec("ROLLBACK", {}, "migrate");
                throw Error(Errc::config, "the tables in schema " + st_.schema + " at " + target_ + " are version " +
                                              std::to_string(have) + ", newer than this plugin understands (" +
                                              std::to_string(schema_version_supported) +
                                              "): upgrade tradestate on this host, or use another schema");
            }
            if (have < 1) migrate_v1();
            if (have < 2) migrate_v2();
            if (have < 3) migrate_v3();
            (void)exec("COMMIT", {}, "migrate");
            if (have < schema_version_supported)
                log_->info("postgres: schema {} at {} migrated from version {} to {}", st_.schema, target_, have,
                           schema_version_supported);
        } catch (const SqlError&) {
            rollback_quietly();
            throw;
        } catch (const Error&) {
            rollback_quietly();
            throw;
        }
    }

    // The migrations' SQL and PL/pgSQL live in sql/*.sql, embedded into the
    // plugin at build time (postgres_sql.hpp, generated by cmake/embed_text.cmake).

    /// Version 1: sessions, snapshots, views, leases and the functions that
    /// save and read snapshots.
    void migrate_v1() {
        run_ddl(postgres_sql::schema_v1, "create tables"); // sql/schema_v1.sql
    }

    /// Version 2: the per-trade journal (Backend::journal_*). One head row
    /// per session names the current journal and its base; records after
    /// the base live in `journal`; records a new journal replaced before
    /// any snapshot held them are moved to `journal_replaced`, never dropped.
    void migrate_v2() {
        run_ddl(postgres_sql::schema_v2, "create the journal tables"); // sql/schema_v2.sql
    }

    /// Version 3 (tradestate 0.3): the session envelope (lineage, journal id
    /// and seq) stored with each snapshot; journal_heads.last_seq, the
    /// highest record ever appended, so records deleted behind the writer's
    /// back are named; rename_session() for a fresh start's backup.
    void migrate_v3() {
        run_ddl(postgres_sql::schema_v3, "add the session envelope (schema 3)"); // sql/schema_v3.sql
    }

    /// Run a multi-statement DDL script: `S.` becomes the quoted schema,
    /// SCHEMANAME its name, CHANNEL the notification channel.
    void run_ddl(std::string_view ddl, const char* what) {
        const std::string& s = s_;
        std::string sql;
        for (std::size_t i = 0; i < ddl.size();) {
            if (ddl.compare(i, 2, "S.") == 0 && (i == 0 || !std::isalnum(static_cast<unsigned char>(ddl[i - 1])))) {
                sql += s + ".";
                i += 2;
            } else if (ddl.compare(i, 10, "SCHEMANAME") == 0) {
                sql += st_.schema;
                i += 10;
            } else if (ddl.compare(i, 7, "CHANNEL") == 0) {
                sql += notify_channel(st_);
                i += 7;
            } else {
                sql.push_back(ddl[i++]);
            }
        }
        result_ptr r(PQexec(conn_.get(), sql.c_str()));
        if (PQresultStatus(r.get()) != PGRES_COMMAND_OK) {
            if (PQstatus(conn_.get()) != CONNECTION_OK) throw ConnectionLost{conn_error(conn_.get(), st_)};
            const char* state = PQresultErrorField(r.get(), PG_DIAG_SQLSTATE);
            throw SqlError{state ? state : "", conn_error(conn_.get(), st_), what};
        }
    }

    Settings st_;
    std::shared_ptr<spdlog::logger> log_;
    std::string target_, s_, app_, host_;
    std::mutex mu_;
    conn_ptr conn_;
    bool migrated_ = false, had_connection_ = false;
    std::chrono::steady_clock::time_point next_attempt_{};
    int backoff_ms_ = 0;
    std::string last_error_;
    std::function<void()> after_connect_;
};


} // namespace tradestate::postgres
