// The postgres plugin's writer leases: a session-level advisory lock on
// the backend's connection plus a row in <schema>.leases whose generation
// fences every write (docs/scale-out.md). Private to the plugin.
#pragma once

#include "connection.hpp"

#include <tradestate/backend.hpp>

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace tradestate::postgres {

/// One lease this process holds.
struct LeaseState {
    std::string session;
    std::int64_t generation = 0;
    std::atomic<bool> lost{false};
    std::string lost_reason;
};

/// The leases held through one connection. Called with the connection's
/// mutex held (inside Connection::with_conn), except release().
class Leases {
public:
    explicit Leases(Connection& db) : db_(db) {
        db_.after_connect([this] { reacquire(); });
    }
    Leases(const Leases&) = delete;
    Leases& operator=(const Leases&) = delete;

    std::shared_ptr<LeaseState> find(const std::string& session) {
        for (auto& l : leases_)
            if (l->session == session) return l;
        return nullptr;
    }
    void add(std::shared_ptr<LeaseState> l) { leases_.push_back(std::move(l)); }

    /// Drop a lease: unlock and mark the row released (best effort).
    void release(const std::shared_ptr<LeaseState>& l) {
        db_.if_connected([&](bool live) {
            leases_.erase(std::remove(leases_.begin(), leases_.end(), l), leases_.end());
            if (l->lost || !live) return;
            try {
                (void)db_.exec("SELECT pg_advisory_unlock(" + db_.schema_q() + ".lock_key($1))", {l->session},
                               "release lease");
                (void)db_.exec("UPDATE " + db_.schema_q() + ".leases SET released_at = now() WHERE session = $1 AND generation = $2",
                               {l->session, std::to_string(l->generation)}, "release lease");
                db_.log().info("postgres: released the writer lease on session '{}' (generation {})", l->session,
                               l->generation);
            } catch (const ConnectionLost& e) {
                db_.drop();
                db_.log().warn("postgres: connection lost while releasing the lease on '{}': {} (the server frees it)",
                               l->session, e.message);
            } catch (const SqlError& e) {
                db_.log().warn("postgres: releasing the lease on '{}' failed: {}", l->session, e.message);
            }
        });
    }

    void mark_lost(LeaseState& l, const std::string& why) {
        if (!l.lost.exchange(true)) {
            l.lost_reason = why;
            db_.log().error("postgres: lost the writer lease on session '{}': {}; this process must stop writing it",
                        l.session, why);
        }
    }

    /// Holder of a session's lease, for messages.
    std::string describe_holder(const std::string& session) {
        auto r = db_.exec("SELECT app, host, pid, backend_pid, to_char(acquired_at AT TIME ZONE 'UTC', "
                      "'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'), released_at IS NOT NULL, generation FROM " +
                          db_.schema_q() + ".leases WHERE session = $1",
                      {session}, "read lease holder");
        if (PQntuples(r.get()) == 0) return "another process (no lease row)";
        std::string s = std::string(PQgetvalue(r.get(), 0, 0)) + " (pid " + PQgetvalue(r.get(), 0, 2) + " on host " +
                        PQgetvalue(r.get(), 0, 1) + ", server backend pid " + PQgetvalue(r.get(), 0, 3) +
                        ", lease generation " + PQgetvalue(r.get(), 0, 6) + " since " + PQgetvalue(r.get(), 0, 4) + ")";
        if (std::string(PQgetvalue(r.get(), 0, 5)) == "t") s = "a process that is saving right now, last holder " + s;
        return s;
    }

    /// The lease generation a write of `session` must carry (fencing), or
    /// none when this process holds no lease on it; refuses when it held
    /// one and lost it.
    [[nodiscard]] std::optional<std::string> generation_for_write(const std::string& session, const std::string& what) {
        const auto l = find(session);
        if (!l) return std::nullopt;
        if (l->lost)
            throw Error(Errc::locked, what + " refused: this process lost its writer lease (" + l->lost_reason +
                                          "); stop this writer and resume from the stored state");
        return std::to_string(l->generation);
    }

private:
    /// After a reconnect: take back the advisory lock of every lease this
    /// backend held, if nobody took the lease over meanwhile.
    void reacquire() {
        for (auto& l : leases_) {
            if (l->lost) continue;
            auto r = db_.exec("SELECT pg_try_advisory_lock(" + db_.schema_q() + ".lock_key($1)), (SELECT generation FROM " + db_.schema_q() +
                              ".leases WHERE session = $1)",
                          {l->session}, "re-take lease");
            const bool got = std::string(PQgetvalue(r.get(), 0, 0)) == "t";
            const bool same = !PQgetisnull(r.get(), 0, 1) && to_i64(PQgetvalue(r.get(), 0, 1)) == l->generation;
            if (got && same) {
                (void)db_.exec("UPDATE " + db_.schema_q() + ".leases SET backend_pid = pg_backend_pid() WHERE session = $1",
                           {l->session}, "re-take lease");
                db_.log().warn("postgres: re-took the writer lease on session '{}' (generation {}) after reconnecting",
                           l->session, l->generation);
                continue;
            }
            if (got) (void)db_.exec("SELECT pg_advisory_unlock(" + db_.schema_q() + ".lock_key($1))", {l->session}, "re-take lease");
            mark_lost(*l, got ? "another process took the lease over while the connection was down (generation now " +
                                    std::string(PQgetisnull(r.get(), 0, 1) ? "none" : PQgetvalue(r.get(), 0, 1)) + ")"
                              : "after reconnecting, the lease is held by " + describe_holder(l->session));
        }
    }

    Connection& db_;
    std::vector<std::shared_ptr<LeaseState>> leases_;
};

/// What the backend and its leases share; a lease may be dropped after
/// the backend that took it.
struct Core {
    Core(Settings st, std::shared_ptr<spdlog::logger> log) : db(std::move(st), std::move(log)), leases(db) {}
    Connection db;
    Leases leases;
};

/// A writer lease handed to the host.
class PgLease final : public WriterLease {
public:
    PgLease(std::shared_ptr<Core> core, std::shared_ptr<LeaseState> st) : core_(std::move(core)), st_(std::move(st)) {}
    ~PgLease() override { core_->leases.release(st_); }

    /// Checks with the server (one round trip) that the lease is still
    /// ours. When the server cannot be reached the answer is the last one
    /// known: no other process can write then either, and saves fail.
    [[nodiscard]] bool valid() const override {
        if (st_->lost) return false;
        try {
            core_->db.with_conn("check the writer lease on '" + st_->session + "'", [&](bool) {
                if (st_->lost) return;
                auto r = core_->db.exec("SELECT generation FROM " + core_->db.schema_q() + ".leases WHERE session = $1",
                                     {st_->session}, "check lease");
                if (PQntuples(r.get()) == 0 || to_i64(PQgetvalue(r.get(), 0, 0)) != st_->generation)
                    core_->leases.mark_lost(*st_, "the lease row now has generation " +
                                               std::string(PQntuples(r.get()) ? PQgetvalue(r.get(), 0, 0) : "none") +
                                               ", this process held " + std::to_string(st_->generation));
            });
        } catch (const Error&) {
        } catch (const SqlError&) {
        }
        return !st_->lost;
    }

private:
    std::shared_ptr<Core> core_;
    std::shared_ptr<LeaseState> st_;
};

} // namespace tradestate::postgres
