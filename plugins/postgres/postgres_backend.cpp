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
// The connection (reconnect, backoff, migrations) is connection.hpp, the
// writer leases lease.hpp, the SQL sql/schema_v*.sql.
//
// Single writer: acquire_writer() takes a session-level advisory lock on
// the backend's connection and bumps the lease row's generation; saves
// under a lease check that generation in their transaction (fencing), and
// saves without a lease take the same advisory lock in shared mode, so
// they are refused while another process holds the lease.
#include "lease.hpp"

#include <tradestate/plugin.hpp>
#include <tradestate/postgres/common.hpp>
#include <tradestate/timestamp.hpp>

#include <tradestate/detail/checksum.hpp>
#include <tradestate/detail/json.hpp>
#include <tradestate/detail/session_name.hpp>

#include <spdlog/logger.h>
#include <spdlog/spdlog.h>

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

#include <unistd.h>

namespace tradestate::postgres {
namespace {

namespace json = boost::json;

std::string random_token() {
    std::random_device rd;
    std::uint64_t a = (static_cast<std::uint64_t>(rd()) << 32) ^ rd();
    std::uint64_t b = (static_cast<std::uint64_t>(rd()) << 32) ^ rd() ^ static_cast<std::uint64_t>(::getpid());
    return detail::checksum_text(a).substr(5) + detail::checksum_text(b).substr(5);
}

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
            db().with_conn("connect", [](bool) {});
        } catch (const Error& e) {
            if (e.code() != Errc::io) throw;
            db().log().warn("postgres: {}", e.what());
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
        const std::string what = "saving session '" + session + "' to " + db().target();
        const std::string& s = db().schema_q();
        const auto seq = db().with_conn(what, [&](bool retry) -> std::int64_t {
            const std::optional<std::string> gen = leases().generation_for_write(session, what);
            if (retry) {
                // The connection broke during the previous attempt: did the commit land?
                auto r = db().exec("SELECT sequence FROM " + s + ".snapshots WHERE session = $1 AND save_token = $2",
                                     {session, token}, what);
                if (PQntuples(r.get()) == 1) return to_i64(PQgetvalue(r.get(), 0, 0));
            }
            // An explicit transaction, committed only after the function
            // returned: if this process dies before sending COMMIT, the
            // server rolls the save back, so a save never lands after its
            // writer is gone (the function holds the session's save lock
            // until COMMIT; load() waits for it).
            try {
                (void)db().exec("BEGIN", {}, what);
                auto r = db().exec("SELECT " + s + ".save_snapshot($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, "
                                         "$13, $14, $15)",
                                     {session, gen, meta.saved_at, std::to_string(meta.iteration),
                                      std::to_string(meta.positions), std::to_string(meta.cash_paise), sum, text, views,
                                      std::to_string(db().settings().keep_history), token,
                                      std::string(db().settings().jsonb ? "true" : "false"),
                                      detail::hex64(meta.lineage), detail::hex64(meta.journal_id),
                                      std::to_string(meta.journal_seq)},
                                     what);
                const auto saved_seq = to_i64(PQgetvalue(r.get(), 0, 0));
                (void)db().exec("COMMIT", {}, what);
                return saved_seq;
            } catch (const SqlError& e) {
                db().rollback_quietly();
                throw_write_error(e, session, what);
            }
        });
        db().log().debug("postgres: saved session '{}' sequence {} ({} bytes)", session, seq, text.size());
        return static_cast<std::uint64_t>(seq);
    }

    [[nodiscard]] std::optional<LoadResult> load(const std::string& session) override {
        validate_session_name(session);
        return load_impl(session, std::nullopt);
    }

    [[nodiscard]] std::vector<SessionInfo> list() override {
        const std::string& s = db().schema_q();
        return db().with_conn("listing sessions in " + db().target(), [&](bool) {
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
                        info.companions.emplace_back(db().settings().schema + ".views[" + line.substr(0, tab) + "]",
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
        return db().with_conn("looking up session '" + session + "' in " + db().target(), [&](bool) {
            auto r = sql("SELECT 1 FROM " + db().schema_q() + ".sessions WHERE name = $1", {session}, "exists");
            return PQntuples(r.get()) > 0;
        });
    }

    bool remove(const std::string& session) override {
        validate_session_name(session);
        const std::string what = "removing session '" + session + "' from " + db().target();
        const std::string& s = db().schema_q();
        const bool removed = db().with_conn(what, [&](bool) {
            (void)sql("BEGIN", {}, what);
            try {
                const bool mine = static_cast<bool>(leases().find(session));
                if (!mine) {
                    auto l = sql("SELECT pg_try_advisory_xact_lock_shared(" + s + ".lock_key($1))", {session}, what);
                    if (std::string(PQgetvalue(l.get(), 0, 0)) != "t") {
                        const std::string holder = leases().describe_holder(session);
                        (void)sql("ROLLBACK", {}, what);
                        throw Error(Errc::locked, what + " refused: the session is being written by " + holder);
                    }
                }
                auto r = sql("DELETE FROM " + s + ".sessions WHERE name = $1", {session}, what);
                auto j = sql("DELETE FROM " + s + ".journal_heads WHERE session = $1", {session}, what);
                (void)sql("DELETE FROM " + s + ".journal_replaced WHERE session = $1", {session}, what);
                (void)sql("COMMIT", {}, what);
                return std::string(PQcmdTuples(r.get())) != "0" || std::string(PQcmdTuples(j.get())) != "0";
            } catch (const Error& e) {
                if (e.code() != Errc::locked) (void)rollback();
                throw;
            }
        });
        if (removed) db().log().info("postgres: removed session '{}' from {}", session, db().target());
        return removed;
    }

    [[nodiscard]] VerifyReport verify(const std::string& session) override {
        validate_session_name(session);
        VerifyReport rep;
        rep.session = session;
        using sev = Finding::Severity;
        const std::string& s = db().schema_q();
        db().with_conn("verifying session '" + session + "' in " + db().target(), [&](bool) {
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
        const std::string what = "taking the writer lease on session '" + session + "' at " + db().target();
        auto state = db().with_conn(what, [&](bool) -> std::shared_ptr<LeaseState> {
            if (auto mine = leases().find(session))
                throw Error(Errc::locked, what + " refused: this backend already holds it" +
                                              (mine->lost ? " (lost: " + mine->lost_reason + ")" : std::string()) +
                                              "; drop the first lease before taking another");
            // A save without a lease holds the lock in shared mode for the
            // length of one transaction, and a holder that just died keeps
            // it until its server process has noticed the closed socket (a
            // few ms): retry briefly before giving up.
            const auto start = std::chrono::steady_clock::now();
            for (;;) {
                auto r = sql("SELECT " + db().schema_q() + ".acquire_lease($1, $2, $3, $4)",
                             {session, db().app(), db().host(), std::to_string(::getpid())}, what);
                if (!PQgetisnull(r.get(), 0, 0)) {
                    auto st = std::make_shared<LeaseState>();
                    st->session = session;
                    st->generation = to_i64(PQgetvalue(r.get(), 0, 0));
                    leases().add(st);
                    return st;
                }
                auto h = sql("SELECT released_at IS NULL FROM " + db().schema_q() + ".leases WHERE session = $1",
                             {session}, what);
                const bool held = PQntuples(h.get()) == 1 && std::string(PQgetvalue(h.get(), 0, 0)) == "t";
                if (std::chrono::steady_clock::now() - start > std::chrono::milliseconds(held ? 300 : 1000))
                    throw Error(Errc::locked, "session '" + session + "' is already being written by " +
                                                  leases().describe_holder(session) + " (PostgreSQL lease at " +
                                                  db().target() + "); stop that process or use another session");
                std::this_thread::sleep_for(std::chrono::milliseconds(20));
            }
        });
        db().log().info("postgres: took the writer lease on session '{}' (generation {}) as {} pid {} on {}", session,
                          state->generation, db().app(), ::getpid(), db().host());
        return std::make_unique<PgLease>(core_, std::move(state));
    }

    // ---- per-trade journal ---------------------------------------------
    [[nodiscard]] bool has_journal() const override { return true; }

    [[nodiscard]] std::optional<StoredJournal> journal_read(const std::string& session) override {
        validate_session_name(session);
        const std::string what = "reading the journal of session '" + session + "' in " + db().target();
        return db().with_conn(what, [&](bool) -> std::optional<StoredJournal> {
            // One snapshot of both tables.
            (void)sql("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY", {}, what);
            try {
                auto h = sql("SELECT journal_id, base_seq, coalesce(last_seq, 0) FROM " + db().schema_q() +
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
                auto r = sql("SELECT seq, payload, checksum FROM " + db().schema_q() +
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
        const std::string what = "starting a journal for session '" + session + "' in " + db().target();
        const auto r = fenced(session, what, "journal_start($1, $2, $3, $4)",
                              {detail::hex64(id), std::to_string(base_seq)}, true);
        const auto kept = r.empty() ? 0 : to_i64(r.c_str());
        if (kept > 0)
            db().log().warn("postgres: {} records of the previous journal of session '{}' were in no snapshot; kept "
                              "in {}.journal_replaced",
                              kept, session, db().schema_q());
    }

    void journal_append(const std::string& session, std::uint64_t id, const std::vector<JournalEntry>& records,
                        bool durable) override {
        validate_session_name(session);
        if (records.empty()) return;
        const std::string what = "appending journal record " + std::to_string(records.front().seq) +
                                 (records.size() > 1 ? ".." + std::to_string(records.back().seq) : std::string()) +
                                 " of session '" + session + "' to " + db().target();
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
                                 std::to_string(through_seq) + " in " + db().target();
        (void)fenced(session, what, "journal_compact($1, $2, $3, $4)",
                     {detail::hex64(id), std::to_string(through_seq)}, true);
    }

    [[nodiscard]] bool has_history() const override { return true; }

    /// The snapshots a load can fall back to: keep_history of them (0: all).
    [[nodiscard]] std::size_t fallback_depth() const override {
        const auto k = db().settings().keep_history;
        return k > 0 ? static_cast<std::size_t>(k) : 16;
    }

    void rename(const std::string& from, const std::string& to) override {
        validate_session_name(from);
        validate_session_name(to);
        const std::string what = "renaming session '" + from + "' to '" + to + "' in " + db().target();
        try {
            (void)fenced(from, what, "rename_session($1, $3, $2)", {to}, true);
        } catch (const Error& e) {
            if (std::string_view(e.what()).find("TSR01") != std::string_view::npos)
                throw Error(Errc::invalid_argument, what + ": session '" + to + "' exists");
            throw;
        }
        db().log().info("postgres: session '{}' is now session '{}'", from, to);
    }

    [[nodiscard]] std::vector<SnapshotInfo> history(const std::string& session) override {
        validate_session_name(session);
        return db().with_conn("reading the history of session '" + session + "' in " + db().target(), [&](bool) {
            auto r = sql("SELECT sequence, saved_at, iteration, positions, cash_paise, octet_length(doc_text) FROM " +
                             db().schema_q() + ".snapshots WHERE session = $1 ORDER BY sequence",
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
        return db().with_conn(what, [&](bool) -> std::string {
            Params params{session, leases().generation_for_write(session, what)};
            for (const auto& a : args) params.emplace_back(a);
            try {
                (void)db().exec("BEGIN", {}, what);
                if (!durable) (void)db().exec("SET LOCAL synchronous_commit = off", {}, what);
                auto r = db().exec("SELECT " + db().schema_q() + "." + call, params, what);
                std::string first = PQntuples(r.get()) > 0 && !PQgetisnull(r.get(), 0, 0) ? PQgetvalue(r.get(), 0, 0) : "";
                (void)db().exec("COMMIT", {}, what);
                return first;
            } catch (const SqlError& e) {
                db().rollback_quietly();
                throw_write_error(e, session, what);
            }
        });
    }

    /// The Error for a failed write transaction (inside with_conn): lease
    /// conflicts (TSL01 another holder, TSL02 this process lost its lease),
    /// journal conflicts (TSJ01 wrong journal, TSJ02 gap or other record).
    [[noreturn]] void throw_write_error(const SqlError& e, const std::string& session, const std::string& what) {
        if (e.code == "TSL01")
            throw Error(Errc::locked, what + " refused: session '" + session + "' is being written by " +
                                          leases().describe_holder(session) + "; stop that writer or use another session");
        if (e.code == "TSL02") {
            if (auto l = leases().find(session)) leases().mark_lost(*l, e.message);
            throw Error(Errc::locked, what + " refused: this process lost its writer lease (" + e.message +
                                          "; the lease is now held by " + leases().describe_holder(session) +
                                          "); stop this writer");
        }
        if (e.code == "TSJ01" || e.code == "TSJ02") throw Error(Errc::corrupt, what + " refused: " + e.message);
        throw Error(Errc::io, what + " failed: " + e.message + " (SQLSTATE " + e.code + ")");
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
        if (t.size() != 16) throw Error(Errc::corrupt, where + ": '" + std::string(t) + "' is not 16 hex digits");
        for (char c : t) {
            int d = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
            if (d < 0) throw Error(Errc::corrupt, where + ": '" + std::string(t) + "' is not 16 hex digits");
            v = (v << 4) | static_cast<std::uint64_t>(d);
        }
        return v;
    }

    result_ptr sql(const std::string& text, const Params& params, const std::string& what) {
        try {
            return db().exec(text, params, what);
        } catch (const SqlError& e) {
            throw Error(Errc::io, what + " failed at " + db().target() + ": " + e.message + " (SQLSTATE " + e.code + ")");
        }
    }

    bool rollback() {
        try {
            (void)db().exec("ROLLBACK", {}, "rollback");
            return true;
        } catch (...) {
            return false;
        }
    }

    [[nodiscard]] std::string location(const std::string& session) const {
        return db().target() + " " + db().settings().schema + ".snapshots session '" + session + "'";
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
        const std::string what = "loading session '" + session + "' from " + db().target();
        const std::string& s = db().schema_q();
        return db().with_conn(what, [&](bool) -> std::optional<LoadResult> {
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
                    throw Error(Errc::corrupt, what + " failed: no intact snapshot is left (" + join(warnings) +
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
                    if (at) throw Error(Errc::corrupt, where + " is damaged: " + problem);
                    db().log().error("postgres: {} is damaged: {}; trying the previous snapshot", where, problem);
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
    Connection& db() { return core_->db; }
    const Connection& db() const { return core_->db; }
    Leases& leases() { return core_->leases; }

    std::shared_ptr<Core> core_;
};

std::unique_ptr<Backend> create_backend(const BackendOptions& opts) { return std::make_unique<PostgresBackend>(opts); }

} // namespace
} // namespace tradestate::postgres

TRADESTATE_PLUGIN("postgres", tradestate::postgres::create_backend, tradestate::PluginStorage::external)
