// tradestate — the "postgres" backend plugin: sessions in a PostgreSQL
// database, so that several runners and dashboards on several hosts share
// one store. See docs/scale-out.md for deployment, settings and semantics.
//
// Tables (schema from [persistence.postgres] schema, created and migrated
// here, version in <schema>.schema_version):
//   sessions(name, sequence, created_at, updated_at)
//   snapshots(session, sequence, saved_at, iteration, positions, cash_paise,
//             checksum, doc_text, document jsonb, save_token, written_at,
//             lineage, journal_id, journal_seq)                        (envelope: version 3)
//   views(session, name, doc_text, document jsonb, updated_at)
//   leases(session, generation, app, host, pid, backend_pid, acquired_at, released_at)
//   journal_heads(session, journal_id, base_seq, started_at, last_seq)  (version 2; last_seq: 3)
//   journal(session, seq, payload, checksum, written_at)
//   journal_replaced(session, journal_id, seq, payload, checksum, written_at, replaced_at)
//
// `doc_text` is the exact compact JSON the host handed over (key order kept;
// JSONB would reorder keys), checksummed with XXH3 and verified on every
// load; `document` is the same as JSONB for SQL queries. A save is one
// transaction: BEGIN, <schema>.save_snapshot(...), COMMIT (three round
// trips; COMMIT is sent only after the function returned, so a save of a
// process that dies never lands later). It also NOTIFYs tradestate_<schema>
// with '<session>:<seq>'.
//
// Single writer: acquire_writer() takes a session-level advisory lock on
// the backend's connection and bumps the lease row's generation; saves
// under a lease check that generation in their transaction (fencing), and
// saves without a lease take the same advisory lock in shared mode, so
// they are refused while another process holds the lease.
#include <tradestate/plugin.hpp>
#include <tradestate/postgres/common.hpp>
#include <tradestate/timestamp.hpp>

#include <tradestate/detail/checksum.hpp>
#include <tradestate/detail/json.hpp>
#include <tradestate/detail/session_name.hpp>

#include "postgres_sql.hpp"

#include <spdlog/logger.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <chrono>
#include <mutex>
#include <random>
#include <string_view>
#include <thread>

#include <unistd.h>

namespace tradestate::postgres {
namespace {

namespace json = boost::json;
using clock_type = std::chrono::steady_clock;

constexpr int schema_version_supported = 3;

/// The connection broke (as opposed to an SQL error on a live connection).
struct ConnectionLost {
    std::string message;
};

/// Parameters of one statement, as text (NULL when empty optional).
using Params = std::vector<std::optional<std::string>>;

std::string hostname() {
    char buf[256] = {};
    if (::gethostname(buf, sizeof buf - 1) != 0) return "unknown-host";
    return buf;
}

std::string random_token() {
    std::random_device rd;
    std::uint64_t a = (static_cast<std::uint64_t>(rd()) << 32) ^ rd();
    std::uint64_t b = (static_cast<std::uint64_t>(rd()) << 32) ^ rd() ^ static_cast<std::uint64_t>(::getpid());
    return detail::checksum_text(a).substr(5) + detail::checksum_text(b).substr(5);
}

std::int64_t to_i64(const char* s) { return std::strtoll(s, nullptr, 10); }

struct LeaseState {
    std::string session;
    std::int64_t generation = 0;
    std::atomic<bool> lost{false};
    std::string lost_reason;
};

/// Connection, reconnect/backoff, migration and lease registry. Shared by
/// the backend and its leases (a lease may be dropped after the backend).
class Core {
public:
    Core(Settings st, std::shared_ptr<spdlog::logger> log)
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
                throw Error(errc::io, what + " failed: lost the connection to " + target_ + " (" + e.message +
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

    struct SqlError {
        std::string code, message, what;
    };

    /// Abort the open transaction, if the connection is still there.
    void rollback_quietly() {
        if (conn_ && PQstatus(conn_.get()) == CONNECTION_OK) result_ptr(PQexec(conn_.get(), "ROLLBACK"));
    }

    // ---- leases ----------------------------------------------------------
    std::shared_ptr<LeaseState> find_lease(const std::string& session) {
        for (auto& l : leases_)
            if (l->session == session) return l;
        return nullptr;
    }
    void add_lease(std::shared_ptr<LeaseState> l) { leases_.push_back(std::move(l)); }

    /// Drop a lease: unlock and mark the row released (best effort).
    void release(const std::shared_ptr<LeaseState>& l) {
        std::lock_guard lk(mu_);
        leases_.erase(std::remove(leases_.begin(), leases_.end(), l), leases_.end());
        if (l->lost || !conn_ || PQstatus(conn_.get()) != CONNECTION_OK) return;
        try {
            (void)exec("SELECT pg_advisory_unlock(" + s_ + ".lock_key($1))", {l->session}, "release lease");
            (void)exec("UPDATE " + s_ + ".leases SET released_at = now() WHERE session = $1 AND generation = $2",
                       {l->session, std::to_string(l->generation)}, "release lease");
            log_->info("postgres: released the writer lease on session '{}' (generation {})", l->session, l->generation);
        } catch (const ConnectionLost& e) {
            conn_.reset();
            log_->warn("postgres: connection lost while releasing the lease on '{}': {} (the server frees it)",
                       l->session, e.message);
        } catch (const SqlError& e) {
            log_->warn("postgres: releasing the lease on '{}' failed: {}", l->session, e.message);
        }
    }

    void mark_lost(LeaseState& l, const std::string& why) {
        if (!l.lost.exchange(true)) {
            l.lost_reason = why;
            log_->error("postgres: lost the writer lease on session '{}': {}; this process must stop writing it",
                        l.session, why);
        }
    }

    /// Holder of a session's lease, for messages.
    std::string describe_holder(const std::string& session) {
        auto r = exec("SELECT app, host, pid, backend_pid, to_char(acquired_at AT TIME ZONE 'UTC', "
                      "'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'), released_at IS NOT NULL, generation FROM " +
                          s_ + ".leases WHERE session = $1",
                      {session}, "read lease holder");
        if (PQntuples(r.get()) == 0) return "another process (no lease row)";
        std::string s = std::string(PQgetvalue(r.get(), 0, 0)) + " (pid " + PQgetvalue(r.get(), 0, 2) + " on host " +
                        PQgetvalue(r.get(), 0, 1) + ", server backend pid " + PQgetvalue(r.get(), 0, 3) +
                        ", lease generation " + PQgetvalue(r.get(), 0, 6) + " since " + PQgetvalue(r.get(), 0, 4) + ")";
        if (std::string(PQgetvalue(r.get(), 0, 5)) == "t") s = "a process that is saving right now, last holder " + s;
        return s;
    }

    const std::string& app() const { return app_; }
    const std::string& host() const { return host_; }

private:
    void ensure_connected(const std::string& what) {
        if (conn_ && PQstatus(conn_.get()) == CONNECTION_OK) return;
        conn_.reset();
        const auto now = clock_type::now();
        if (now < next_attempt_) {
            const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(next_attempt_ - now).count();
            throw Error(errc::io, what + " failed: PostgreSQL at " + target_ + " is unreachable (" + last_error_ +
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
                reacquire_leases();
            } catch (const ConnectionLost& e) {
                conn_.reset();
                err = e.message;
            } catch (const SqlError& e) {
                conn_.reset();
                backoff(e.message);
                throw Error(errc::io, what + " failed: preparing the connection to " + target_ + " failed: " +
                                          e.message + " (SQLSTATE " + e.code + ")");
            } catch (...) {
                conn_.reset();
                throw;
            }
        }
        if (!conn_) {
            backoff(err);
            throw Error(errc::io, what + " failed: cannot connect to PostgreSQL at " + target_ + ": " + err +
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
        next_attempt_ = clock_type::now() + std::chrono::milliseconds(backoff_ms_);
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
                throw Error(errc::config, "the tables in schema " + st_.schema + " at " + target_ + " are version " +
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

    /// After a reconnect: take back the advisory lock of every lease this
    /// backend held, if nobody took the lease over meanwhile.
    void reacquire_leases() {
        for (auto& l : leases_) {
            if (l->lost) continue;
            auto r = exec("SELECT pg_try_advisory_lock(" + s_ + ".lock_key($1)), (SELECT generation FROM " + s_ +
                              ".leases WHERE session = $1)",
                          {l->session}, "re-take lease");
            const bool got = std::string(PQgetvalue(r.get(), 0, 0)) == "t";
            const bool same = !PQgetisnull(r.get(), 0, 1) && to_i64(PQgetvalue(r.get(), 0, 1)) == l->generation;
            if (got && same) {
                (void)exec("UPDATE " + s_ + ".leases SET backend_pid = pg_backend_pid() WHERE session = $1",
                           {l->session}, "re-take lease");
                log_->warn("postgres: re-took the writer lease on session '{}' (generation {}) after reconnecting",
                           l->session, l->generation);
                continue;
            }
            if (got) (void)exec("SELECT pg_advisory_unlock(" + s_ + ".lock_key($1))", {l->session}, "re-take lease");
            mark_lost(*l, got ? "another process took the lease over while the connection was down (generation now " +
                                    std::string(PQgetisnull(r.get(), 0, 1) ? "none" : PQgetvalue(r.get(), 0, 1)) + ")"
                              : "after reconnecting, the lease is held by " + describe_holder(l->session));
        }
    }

    Settings st_;
    std::shared_ptr<spdlog::logger> log_;
    std::string target_, s_, app_, host_;
    std::mutex mu_;
    conn_ptr conn_;
    bool migrated_ = false, had_connection_ = false;
    clock_type::time_point next_attempt_{};
    int backoff_ms_ = 0;
    std::string last_error_;
    std::vector<std::shared_ptr<LeaseState>> leases_;
};

class PgLease final : public WriterLease {
public:
    PgLease(std::shared_ptr<Core> core, std::shared_ptr<LeaseState> st) : core_(std::move(core)), st_(std::move(st)) {}
    ~PgLease() override { core_->release(st_); }

    /// Checks with the server (one round trip) that the lease is still
    /// ours. When the server cannot be reached the answer is the last one
    /// known: no other process can write then either, and saves fail.
    [[nodiscard]] bool valid() const override {
        if (st_->lost) return false;
        try {
            core_->with_conn("check the writer lease on '" + st_->session + "'", [&](bool) {
                if (st_->lost) return;
                auto r = core_->exec("SELECT generation FROM " + core_->schema_q() + ".leases WHERE session = $1",
                                     {st_->session}, "check lease");
                if (PQntuples(r.get()) == 0 || to_i64(PQgetvalue(r.get(), 0, 0)) != st_->generation)
                    core_->mark_lost(*st_, "the lease row now has generation " +
                                               std::string(PQntuples(r.get()) ? PQgetvalue(r.get(), 0, 0) : "none") +
                                               ", this process held " + std::to_string(st_->generation));
            });
        } catch (const Error&) {
        } catch (const Core::SqlError&) {
        }
        return !st_->lost;
    }

private:
    std::shared_ptr<Core> core_;
    std::shared_ptr<LeaseState> st_;
};

class PostgresBackend final : public Backend {
public:
    explicit PostgresBackend(const BackendOptions& opts)
        : opts_(opts),
          core_(std::make_shared<Core>(parse_settings(opts.settings),
                                       opts.logger ? opts.logger : spdlog::default_logger())) {
        // Connect now so that a wrong URL is reported at startup. If the
        // server is merely down, the backend still opens and every call
        // retries (with backoff) until it is back.
        try {
            core_->with_conn("connect", [](bool) {});
        } catch (const Error& e) {
            if (e.code() != errc::io) throw;
            core_->log().warn("postgres: {}", e.what());
        }
    }

    [[nodiscard]] std::string name() const override { return "postgres"; }

    std::uint64_t save(const std::string& session, const Document& doc, const SaveMeta& meta) override {
        validate_session_name(session);
        const std::string text = detail::print(doc.main, {-1});
        const std::string sum = detail::checksum_text(detail::xxh3(text));
        std::optional<std::string> views;
        if (!doc.views.empty()) views = detail::print(json::value(doc.views), {-1});
        const std::string token = random_token();
        const std::string what = "saving session '" + session + "' to " + core_->target();
        const std::string& s = core_->schema_q();
        const auto seq = core_->with_conn(what, [&](bool retry) -> std::int64_t {
            std::optional<std::string> gen;
            if (auto l = core_->find_lease(session)) {
                if (l->lost)
                    throw Error(errc::locked, what + " refused: this process lost its writer lease (" + l->lost_reason +
                                                  "); stop this writer and resume from the stored state");
                gen = std::to_string(l->generation);
            }
            if (retry) {
                // The connection broke during the previous attempt: did the commit land?
                auto r = core_->exec("SELECT sequence FROM " + s + ".snapshots WHERE session = $1 AND save_token = $2",
                                     {session, token}, what);
                if (PQntuples(r.get()) == 1) return to_i64(PQgetvalue(r.get(), 0, 0));
            }
            // An explicit transaction, committed only after the function
            // returned: if this process dies before sending COMMIT, the
            // server rolls the save back, so a save never lands after its
            // writer is gone (the function holds the session's save lock
            // until COMMIT; load() waits for it).
            try {
                (void)core_->exec("BEGIN", {}, what);
                auto r = core_->exec("SELECT " + s + ".save_snapshot($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, "
                                         "$13, $14, $15)",
                                     {session, gen, meta.saved_at, std::to_string(meta.iteration),
                                      std::to_string(meta.positions), std::to_string(meta.cash_paise), sum, text, views,
                                      std::to_string(core_->settings().keep_history), token,
                                      std::string(core_->settings().jsonb ? "true" : "false"),
                                      detail::hex64(meta.lineage), detail::hex64(meta.journal_id),
                                      std::to_string(meta.journal_seq)},
                                     what);
                const auto saved_seq = to_i64(PQgetvalue(r.get(), 0, 0));
                (void)core_->exec("COMMIT", {}, what);
                return saved_seq;
            } catch (const Core::SqlError& e) {
                core_->rollback_quietly();
                throw_write_error(e, session, what);
            }
        });
        core_->log().debug("postgres: saved session '{}' sequence {} ({} bytes)", session, seq, text.size());
        return static_cast<std::uint64_t>(seq);
    }

    [[nodiscard]] std::optional<LoadResult> load(const std::string& session) override {
        validate_session_name(session);
        return load_impl(session, std::nullopt);
    }

    [[nodiscard]] std::vector<SessionInfo> list() override {
        const std::string& s = core_->schema_q();
        return core_->with_conn("listing sessions in " + core_->target(), [&](bool) {
            auto r = sql("SELECT s.name, s.sequence, n.saved_at, n.iteration, n.positions, n.cash_paise, "
                         "(SELECT string_agg(v.name || chr(9) || to_char(v.updated_at AT TIME ZONE 'UTC', "
                         "'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"'), chr(10) ORDER BY v.name) FROM " +
                             s + ".views v WHERE v.session = s.name) FROM " + s + ".sessions s LEFT JOIN " + s +
                             ".snapshots n ON n.session = s.name AND n.sequence = s.sequence ORDER BY s.name COLLATE \"C\"",
                         {}, "list sessions");
            std::vector<SessionInfo> out;
            for (int i = 0; i < PQntuples(r.get()); ++i) {
                SessionInfo info;
                info.session = PQgetvalue(r.get(), i, 0);
                info.sequence = static_cast<std::uint64_t>(to_i64(PQgetvalue(r.get(), i, 1)));
                info.meta.saved_at = PQgetvalue(r.get(), i, 2);
                info.meta.iteration = to_i64(PQgetvalue(r.get(), i, 3));
                info.meta.positions = to_i64(PQgetvalue(r.get(), i, 4));
                info.meta.cash_paise = to_i64(PQgetvalue(r.get(), i, 5));
                info.location = location(info.session);
                if (PQgetisnull(r.get(), i, 1) == 0 && PQgetisnull(r.get(), i, 2)) info.location += " (newest snapshot missing)";
                std::string comp = PQgetvalue(r.get(), i, 6);
                for (std::size_t pos = 0; !comp.empty() && pos <= comp.size();) {
                    auto nl = comp.find('\n', pos);
                    if (nl == std::string::npos) nl = comp.size();
                    const auto line = comp.substr(pos, nl - pos);
                    const auto tab = line.find('\t');
                    if (tab != std::string::npos) // as every time we write: ISO 8601 in IST (+05:30)
                        info.companions.emplace_back(core_->settings().schema + ".views[" + line.substr(0, tab) + "]",
                                                     tradestate::Timestamp::from_iso(line.substr(tab + 1)).to_iso());
                    pos = nl + 1;
                }
                out.push_back(std::move(info));
            }
            return out;
        });
    }

    [[nodiscard]] bool exists(const std::string& session) override {
        validate_session_name(session);
        return core_->with_conn("looking up session '" + session + "' in " + core_->target(), [&](bool) {
            auto r = sql("SELECT 1 FROM " + core_->schema_q() + ".sessions WHERE name = $1", {session}, "exists");
            return PQntuples(r.get()) > 0;
        });
    }

    bool remove(const std::string& session) override {
        validate_session_name(session);
        const std::string what = "removing session '" + session + "' from " + core_->target();
        const std::string& s = core_->schema_q();
        const bool removed = core_->with_conn(what, [&](bool) {
            (void)sql("BEGIN", {}, what);
            try {
                const bool mine = static_cast<bool>(core_->find_lease(session));
                if (!mine) {
                    auto l = sql("SELECT pg_try_advisory_xact_lock_shared(" + s + ".lock_key($1))", {session}, what);
                    if (std::string(PQgetvalue(l.get(), 0, 0)) != "t") {
                        const std::string holder = core_->describe_holder(session);
                        (void)sql("ROLLBACK", {}, what);
                        throw Error(errc::locked, what + " refused: the session is being written by " + holder);
                    }
                }
                auto r = sql("DELETE FROM " + s + ".sessions WHERE name = $1", {session}, what);
                auto j = sql("DELETE FROM " + s + ".journal_heads WHERE session = $1", {session}, what);
                (void)sql("DELETE FROM " + s + ".journal_replaced WHERE session = $1", {session}, what);
                (void)sql("COMMIT", {}, what);
                return std::string(PQcmdTuples(r.get())) != "0" || std::string(PQcmdTuples(j.get())) != "0";
            } catch (const Error& e) {
                if (e.code() != errc::locked) (void)rollback();
                throw;
            }
        });
        if (removed) core_->log().info("postgres: removed session '{}' from {}", session, core_->target());
        return removed;
    }

    [[nodiscard]] VerifyReport verify(const std::string& session) override {
        validate_session_name(session);
        VerifyReport rep;
        rep.session = session;
        using sev = Finding::severity;
        const std::string& s = core_->schema_q();
        core_->with_conn("verifying session '" + session + "' in " + core_->target(), [&](bool) {
            rep.findings.clear();
            auto head = sql("SELECT sequence FROM " + s + ".sessions WHERE name = $1", {session}, "verify");
            if (PQntuples(head.get()) == 0) {
                rep.findings.push_back({sev::error, location(session), "session '" + session + "' does not exist"});
                return;
            }
            const auto head_seq = to_i64(PQgetvalue(head.get(), 0, 0));
            auto r = sql("SELECT sequence, checksum, doc_text, document IS NOT NULL FROM " + s +
                             ".snapshots WHERE session = $1 ORDER BY sequence DESC",
                         {session}, "verify");
            bool newest_ok = false, any_ok = false;
            std::int64_t first_good = 0;
            const int n = PQntuples(r.get());
            if (n == 0) rep.findings.push_back({sev::error, location(session), "the session has no snapshot at all"});
            for (int i = 0; i < n; ++i) {
                const auto seq = to_i64(PQgetvalue(r.get(), i, 0));
                const std::string where = location(session) + " sequence " + std::to_string(seq);
                std::string problem = check_snapshot(PQgetvalue(r.get(), i, 1), PQgetvalue(r.get(), i, 2), where);
                if (problem.empty() && i == 0 && seq != head_seq)
                    rep.findings.push_back({sev::warning, where,
                                            "sessions.sequence is " + std::to_string(head_seq) +
                                                " but the newest snapshot is " + std::to_string(seq)});
                if (problem.empty()) {
                    if (i == 0) newest_ok = true;
                    if (!any_ok) first_good = seq;
                    any_ok = true;
                    if (i == 0)
                        rep.findings.push_back({sev::info, where,
                                                "ok: newest of " + std::to_string(n) + " snapshot(s), checksum verified" +
                                                    (std::string(PQgetvalue(r.get(), i, 3)) == "t"
                                                         ? ""
                                                         : " (no JSONB copy: jsonb = false, or text JSONB cannot hold)")});
                } else {
                    rep.findings.push_back({i == 0 ? sev::error : sev::warning, where, problem});
                }
            }
            if (n > 0 && !newest_ok)
                rep.findings.push_back({any_ok ? sev::info : sev::error, location(session),
                                        any_ok ? "load falls back to sequence " + std::to_string(first_good)
                                               : std::string("no valid snapshot is left")});
        });
        return rep;
    }

    [[nodiscard]] std::unique_ptr<WriterLease> acquire_writer(const std::string& session) override {
        validate_session_name(session);
        const std::string what = "taking the writer lease on session '" + session + "' at " + core_->target();
        auto state = core_->with_conn(what, [&](bool) -> std::shared_ptr<LeaseState> {
            if (auto mine = core_->find_lease(session))
                throw Error(errc::locked, what + " refused: this backend already holds it" +
                                              (mine->lost ? " (lost: " + mine->lost_reason + ")" : std::string()) +
                                              "; drop the first lease before taking another");
            // A save without a lease holds the lock in shared mode for the
            // length of one transaction, and a holder that just died keeps
            // it until its server process has noticed the closed socket (a
            // few ms): retry briefly before giving up.
            const auto start = clock_type::now();
            for (;;) {
                auto r = sql("SELECT " + core_->schema_q() + ".acquire_lease($1, $2, $3, $4)",
                             {session, core_->app(), core_->host(), std::to_string(::getpid())}, what);
                if (!PQgetisnull(r.get(), 0, 0)) {
                    auto st = std::make_shared<LeaseState>();
                    st->session = session;
                    st->generation = to_i64(PQgetvalue(r.get(), 0, 0));
                    core_->add_lease(st);
                    return st;
                }
                auto h = sql("SELECT released_at IS NULL FROM " + core_->schema_q() + ".leases WHERE session = $1",
                             {session}, what);
                const bool held = PQntuples(h.get()) == 1 && std::string(PQgetvalue(h.get(), 0, 0)) == "t";
                if (clock_type::now() - start > std::chrono::milliseconds(held ? 300 : 1000))
                    throw Error(errc::locked, "session '" + session + "' is already being written by " +
                                                  core_->describe_holder(session) + " (PostgreSQL lease at " +
                                                  core_->target() + "); stop that process or use another session");
                std::this_thread::sleep_for(std::chrono::milliseconds(20));
            }
        });
        core_->log().info("postgres: took the writer lease on session '{}' (generation {}) as {} pid {} on {}", session,
                          state->generation, core_->app(), ::getpid(), core_->host());
        return std::make_unique<PgLease>(core_, std::move(state));
    }

    // ---- per-trade journal ---------------------------------------------
    [[nodiscard]] bool has_journal() const override { return true; }

    [[nodiscard]] std::optional<StoredJournal> journal_read(const std::string& session) override {
        validate_session_name(session);
        const std::string what = "reading the journal of session '" + session + "' in " + core_->target();
        return core_->with_conn(what, [&](bool) -> std::optional<StoredJournal> {
            // One snapshot of both tables.
            (void)sql("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY", {}, what);
            try {
                auto h = sql("SELECT journal_id, base_seq, coalesce(last_seq, 0) FROM " + core_->schema_q() +
                                 ".journal_heads WHERE session = $1",
                             {session}, what);
                if (PQntuples(h.get()) == 0) {
                    (void)sql("COMMIT", {}, what);
                    return std::nullopt;
                }
                StoredJournal j;
                j.location = location(session);
                j.id = parse_id(PQgetvalue(h.get(), 0, 0), j.location);
                j.base_seq = static_cast<std::uint64_t>(to_i64(PQgetvalue(h.get(), 0, 1)));
                j.last_appended = static_cast<std::uint64_t>(to_i64(PQgetvalue(h.get(), 0, 2)));
                auto r = sql("SELECT seq, payload, checksum FROM " + core_->schema_q() +
                                 ".journal WHERE session = $1 AND seq > $2 ORDER BY seq",
                             {session, std::to_string(j.base_seq)}, what);
                (void)sql("COMMIT", {}, what);
                for (int i = 0; i < PQntuples(r.get()); ++i) {
                    JournalEntry e;
                    e.seq = static_cast<std::uint64_t>(to_i64(PQgetvalue(r.get(), i, 0)));
                    e.payload.assign(PQgetvalue(r.get(), i, 1), static_cast<std::size_t>(PQgetlength(r.get(), i, 1)));
                    e.checksum = parse_id(PQgetvalue(r.get(), i, 2),
                                          j.location + " journal record " + std::to_string(e.seq));
                    j.records.push_back(std::move(e));
                }
                return j;
            } catch (const Error&) {
                (void)rollback();
                throw;
            }
        });
    }

    void journal_start(const std::string& session, std::uint64_t id, std::uint64_t base_seq) override {
        validate_session_name(session);
        const std::string what = "starting a journal for session '" + session + "' in " + core_->target();
        const auto r = fenced(session, what, "journal_start($1, $2, $3, $4)",
                              {detail::hex64(id), std::to_string(base_seq)}, true);
        const auto kept = r.empty() ? 0 : to_i64(r.c_str());
        if (kept > 0)
            core_->log().warn("postgres: {} records of the previous journal of session '{}' were in no snapshot; kept "
                              "in {}.journal_replaced",
                              kept, session, core_->schema_q());
    }

    void journal_append(const std::string& session, std::uint64_t id, const std::vector<JournalEntry>& records,
                        bool durable) override {
        validate_session_name(session);
        if (records.empty()) return;
        const std::string what = "appending journal record " + std::to_string(records.front().seq) +
                                 (records.size() > 1 ? ".." + std::to_string(records.back().seq) : std::string()) +
                                 " of session '" + session + "' to " + core_->target();
        std::vector<std::string> payloads, sums;
        for (const auto& e : records) {
            payloads.push_back(e.payload);
            sums.push_back(detail::hex64(e.checksum));
        }
        (void)fenced(session, what, "journal_append($1, $2, $3, $4, $5, $6)",
                     {detail::hex64(id), std::to_string(records.front().seq), text_array(payloads), text_array(sums)},
                     durable);
    }

    void journal_compact(const std::string& session, std::uint64_t id, std::uint64_t through_seq) override {
        validate_session_name(session);
        const std::string what = "compacting the journal of session '" + session + "' through record " +
                                 std::to_string(through_seq) + " in " + core_->target();
        (void)fenced(session, what, "journal_compact($1, $2, $3, $4)",
                     {detail::hex64(id), std::to_string(through_seq)}, true);
    }

    [[nodiscard]] bool has_history() const override { return true; }

    /// The snapshots a load can fall back to: keep_history of them (0: all).
    [[nodiscard]] std::size_t fallback_depth() const override {
        const auto k = core_->settings().keep_history;
        return k > 0 ? static_cast<std::size_t>(k) : 16;
    }

    void rename(const std::string& from, const std::string& to) override {
        validate_session_name(from);
        validate_session_name(to);
        const std::string what = "renaming session '" + from + "' to '" + to + "' in " + core_->target();
        try {
            (void)fenced(from, what, "rename_session($1, $3, $2)", {to}, true);
        } catch (const Error& e) {
            if (std::string_view(e.what()).find("TSR01") != std::string_view::npos)
                throw Error(errc::invalid_argument, what + ": session '" + to + "' exists");
            throw;
        }
        core_->log().info("postgres: session '{}' is now session '{}'", from, to);
    }

    [[nodiscard]] std::vector<SnapshotInfo> history(const std::string& session) override {
        validate_session_name(session);
        return core_->with_conn("reading the history of session '" + session + "' in " + core_->target(), [&](bool) {
            auto r = sql("SELECT sequence, saved_at, iteration, positions, cash_paise, octet_length(doc_text) FROM " +
                             core_->schema_q() + ".snapshots WHERE session = $1 ORDER BY sequence",
                         {session}, "history");
            std::vector<SnapshotInfo> out;
            for (int i = 0; i < PQntuples(r.get()); ++i) {
                SnapshotInfo si;
                si.sequence = static_cast<std::uint64_t>(to_i64(PQgetvalue(r.get(), i, 0)));
                si.meta.saved_at = PQgetvalue(r.get(), i, 1);
                si.meta.iteration = to_i64(PQgetvalue(r.get(), i, 2));
                si.meta.positions = to_i64(PQgetvalue(r.get(), i, 3));
                si.meta.cash_paise = to_i64(PQgetvalue(r.get(), i, 4));
                si.stored_bytes = static_cast<std::uint64_t>(to_i64(PQgetvalue(r.get(), i, 5)));
                out.push_back(std::move(si));
            }
            return out;
        });
    }

    [[nodiscard]] std::optional<LoadResult> load_at(const std::string& session, std::uint64_t sequence) override {
        validate_session_name(session);
        return load_impl(session, sequence);
    }

private:
    /// Run SQL inside with_conn; SQL errors become Error(io).
    /// One transaction calling `<schema>.<call>` with ($1 session, $2 lease
    /// generation or NULL, then `args`), fenced like save(); returns the
    /// first column as text. `durable` false: asynchronous commit (the
    /// server flushes it within a few hundred ms; a crash of this process
    /// loses nothing once COMMIT returned).
    std::string fenced(const std::string& session, const std::string& what, const std::string& call,
                       const std::vector<std::string>& args, bool durable) {
        return core_->with_conn(what, [&](bool) -> std::string {
            Params params{session, std::nullopt};
            if (auto l = core_->find_lease(session)) {
                if (l->lost)
                    throw Error(errc::locked, what + " refused: this process lost its writer lease (" + l->lost_reason +
                                                  "); stop this writer and resume from the stored state");
                params[1] = std::to_string(l->generation);
            }
            for (const auto& a : args) params.emplace_back(a);
            try {
                (void)core_->exec("BEGIN", {}, what);
                if (!durable) (void)core_->exec("SET LOCAL synchronous_commit = off", {}, what);
                auto r = core_->exec("SELECT " + core_->schema_q() + "." + call, params, what);
                std::string first = PQntuples(r.get()) > 0 && !PQgetisnull(r.get(), 0, 0) ? PQgetvalue(r.get(), 0, 0) : "";
                (void)core_->exec("COMMIT", {}, what);
                return first;
            } catch (const Core::SqlError& e) {
                core_->rollback_quietly();
                throw_write_error(e, session, what);
            }
        });
    }

    /// The Error for a failed write transaction (inside with_conn): lease
    /// conflicts (TSL01 another holder, TSL02 this process lost its lease),
    /// journal conflicts (TSJ01 wrong journal, TSJ02 gap or other record).
    [[noreturn]] void throw_write_error(const Core::SqlError& e, const std::string& session, const std::string& what) {
        if (e.code == "TSL01")
            throw Error(errc::locked, what + " refused: session '" + session + "' is being written by " +
                                          core_->describe_holder(session) + "; stop that writer or use another session");
        if (e.code == "TSL02") {
            if (auto l = core_->find_lease(session)) core_->mark_lost(*l, e.message);
            throw Error(errc::locked, what + " refused: this process lost its writer lease (" + e.message +
                                          "; the lease is now held by " + core_->describe_holder(session) +
                                          "); stop this writer");
        }
        if (e.code == "TSJ01" || e.code == "TSJ02") throw Error(errc::corrupt, what + " refused: " + e.message);
        throw Error(errc::io, what + " failed: " + e.message + " (SQLSTATE " + e.code + ")");
    }

    /// A PostgreSQL text[] literal.
    static std::string text_array(const std::vector<std::string>& items) {
        std::string out = "{";
        for (std::size_t i = 0; i < items.size(); ++i) {
            if (i) out.push_back(',');
            out.push_back('"');
            for (char c : items[i]) {
                if (c == '"' || c == '\\') out.push_back('\\');
                out.push_back(c);
            }
            out.push_back('"');
        }
        out.push_back('}');
        return out;
    }

    /// 16 hex digits as stored for journal ids and checksums.
    static std::uint64_t parse_id(const char* text, const std::string& where) {
        std::uint64_t v = 0;
        const std::string_view t(text);
        if (t.size() != 16) throw Error(errc::corrupt, where + ": '" + std::string(t) + "' is not 16 hex digits");
        for (char c : t) {
            int d = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
            if (d < 0) throw Error(errc::corrupt, where + ": '" + std::string(t) + "' is not 16 hex digits");
            v = (v << 4) | static_cast<std::uint64_t>(d);
        }
        return v;
    }

    result_ptr sql(const std::string& text, const Params& params, const std::string& what) {
        try {
            return core_->exec(text, params, what);
        } catch (const Core::SqlError& e) {
            throw Error(errc::io, what + " failed at " + core_->target() + ": " + e.message + " (SQLSTATE " + e.code + ")");
        }
    }

    bool rollback() {
        try {
            (void)core_->exec("ROLLBACK", {}, "rollback");
            return true;
        } catch (...) {
            return false;
        }
    }

    [[nodiscard]] std::string location(const std::string& session) const {
        return core_->target() + " " + core_->settings().schema + ".snapshots session '" + session + "'";
    }

    /// Empty when the snapshot is intact, else what is wrong.
    [[nodiscard]] static std::string check_snapshot(const std::string& stored_sum, const std::string& text,
                                                    const std::string& where) {
        const std::string actual = detail::checksum_text(detail::xxh3(text));
        if (actual != stored_sum)
            return "checksum mismatch: stored " + stored_sum + ", computed " + actual + " over " +
                   std::to_string(text.size()) + " bytes";
        try {
            (void)detail::parse(text, where);
        } catch (const Error& e) {
            return e.what();
        }
        return {};
    }

    std::optional<LoadResult> load_impl(const std::string& session, std::optional<std::uint64_t> at) {
        const std::string what = "loading session '" + session + "' from " + core_->target();
        const std::string& s = core_->schema_q();
        return core_->with_conn(what, [&](bool) -> std::optional<LoadResult> {
            const std::string read = "SELECT * FROM " + s + ".read_snapshot($1, $2, $3)";
            const std::optional<std::string> none;
            std::vector<std::string> warnings;
            std::optional<std::int64_t> below;
            for (;;) {
                result_ptr r;
                if (at)
                    r = sql(read, {session, none, std::to_string(*at)}, what);
                else if (below)
                    r = sql(read, {session, std::to_string(*below), none}, what);
                else
                    r = sql(read, {session, none, none}, what);
                if (PQntuples(r.get()) == 0) {
                    if (at || !below) return std::nullopt; // no such snapshot / never saved
                    throw Error(errc::corrupt, what + " failed: no intact snapshot is left (" + join(warnings) +
                                                   "); restore the database from a backup");
                }
                const auto seq = to_i64(PQgetvalue(r.get(), 0, 0));
                const std::string where = location(session) + " sequence " + std::to_string(seq);
                const std::string text = PQgetvalue(r.get(), 0, 6);
                std::string problem;
                const std::string actual = detail::checksum_text(detail::xxh3(text));
                if (actual != PQgetvalue(r.get(), 0, 5))
                    problem = "checksum mismatch (stored " + std::string(PQgetvalue(r.get(), 0, 5)) + ", computed " +
                              actual + ")";
                LoadResult out;
                if (problem.empty()) {
                    try {
                        out.doc = detail::parse(text, where);
                    } catch (const Error& e) {
                        problem = e.what();
                    }
                }
                if (!problem.empty()) {
                    if (at) throw Error(errc::corrupt, where + " is damaged: " + problem);
                    core_->log().error("postgres: {} is damaged: {}; trying the previous snapshot", where, problem);
                    warnings.push_back("sequence " + std::to_string(seq) + " is damaged: " + problem);
                    below = seq;
                    continue;
                }
                out.sequence = static_cast<std::uint64_t>(seq);
                out.meta.saved_at = PQgetvalue(r.get(), 0, 1);
                out.meta.iteration = to_i64(PQgetvalue(r.get(), 0, 2));
                out.meta.positions = to_i64(PQgetvalue(r.get(), 0, 3));
                out.meta.cash_paise = to_i64(PQgetvalue(r.get(), 0, 4));
                if (!PQgetisnull(r.get(), 0, 7)) {
                    out.meta.lineage = parse_id(PQgetvalue(r.get(), 0, 7), where + " lineage");
                    out.meta.journal_id = parse_id(PQgetvalue(r.get(), 0, 8), where + " journal_id");
                    out.meta.journal_seq = static_cast<std::uint64_t>(to_i64(PQgetvalue(r.get(), 0, 9)));
                }
                out.source = where;
                out.recovered = !warnings.empty();
                for (auto& w : warnings) out.warnings.push_back(w + "; loaded sequence " + std::to_string(seq));
                return out;
            }
        });
    }

    static std::string join(const std::vector<std::string>& v) {
        std::string s;
        for (const auto& x : v) s += (s.empty() ? "" : "; ") + x;
        return s;
    }

    BackendOptions opts_;
    std::shared_ptr<Core> core_;
};

std::unique_ptr<Backend> create_backend(const BackendOptions& opts) { return std::make_unique<PostgresBackend>(opts); }

} // namespace
} // namespace tradestate::postgres

TRADESTATE_PLUGIN("postgres", tradestate::postgres::create_backend, tradestate::plugin_storage::external)
