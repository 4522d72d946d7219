// tradestate — follow sessions stored by the postgres backend live, through
// PostgreSQL LISTEN/NOTIFY instead of polling (for a dashboard on another
// host). Header-only; link PostgreSQL::PostgreSQL, or the CMake target
// tradestate::postgres_follow which brings both the include path and libpq.
//
//     tradestate::postgres::Follower f(settings);   // [persistence.postgres] table
//     while (running)
//         if (auto ev = f.wait(std::chrono::seconds(1))) {
//             if (ev->resync) reload_everything();        // reconnected: events may have been missed
//             else reload(ev->session);                   // ev->sequence is the new save counter
//         }
//
// Every save in the schema notifies channel `tradestate_<schema>` with the
// payload `<session>:<sequence>`. Notifications are not stored: after a
// lost connection the follower reconnects on the next wait() and returns
// one event with `resync = true`, so that the caller re-reads what it shows.
#pragma once

#include <tradestate/postgres/common.hpp>

#include <chrono>
#include <cstdint>
#include <deque>
#include <optional>
#include <string>

#include <poll.h>

namespace tradestate::postgres {

class Follower {
public:
    struct Event {
        std::string session;         ///< empty when resync
        std::uint64_t sequence = 0;  ///< the save counter the session reached
        bool resync = false;         ///< (re)connected: re-read every session you show
    };

    explicit Follower(const boost::json::object& settings) : Follower(parse_settings(settings)) {}
    explicit Follower(Settings st) : st_(std::move(st)) { connect_or_throw(); }

    /// The channel listened to.
    [[nodiscard]] std::string channel() const { return notify_channel(st_); }

    /// The next event, waiting at most `timeout`; nullopt on timeout.
    /// Throws Error(Errc::io) when the server cannot be reached; the next
    /// call tries to reconnect.
    [[nodiscard]] std::optional<Event> wait(std::chrono::milliseconds timeout) {
        if (!pending_.empty()) return pop();
        if (!conn_ || PQstatus(conn_.get()) != CONNECTION_OK) {
            conn_.reset();
            connect_or_throw();
            pending_.push_back(Event{{}, 0, true});
            return pop();
        }
        const auto deadline = std::chrono::steady_clock::now() + timeout;
        for (;;) {
            drain();
            if (!pending_.empty()) return pop();
            if (!conn_) throw lost();
            const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
            if (left.count() <= 0) return std::nullopt;
            pollfd p{PQsocket(conn_.get()), POLLIN, 0};
            const int r = ::poll(&p, 1, static_cast<int>(left.count()));
            if (r < 0 && errno != EINTR) throw lost();
        }
    }

private:
    Event pop() {
        Event e = std::move(pending_.front());
        pending_.pop_front();
        return e;
    }

    Error lost() {
        std::string m = conn_ ? conn_error(conn_.get(), st_) : std::string("connection closed");
        conn_.reset();
        return Error(Errc::io, "lost the LISTEN connection to " + describe_target(st_) + ": " + m +
                                   "; the next wait() reconnects");
    }

    void drain() {
        if (!conn_) return;
        if (PQconsumeInput(conn_.get()) == 0) {
            conn_.reset();
            return;
        }
        while (PGnotify* n = PQnotifies(conn_.get())) {
            std::string payload = n->extra ? n->extra : "";
            PQfreemem(n);
            Event e;
            const auto colon = payload.rfind(':');
            e.session = payload.substr(0, colon == std::string::npos ? payload.size() : colon);
            if (colon != std::string::npos) e.sequence = std::strtoull(payload.c_str() + colon + 1, nullptr, 10);
            pending_.push_back(std::move(e));
        }
    }

    void connect_or_throw() {
        std::string err;
        conn_ = connect(st_, err);
        if (!conn_)
            throw Error(Errc::io, "cannot connect to " + describe_target(st_) + " to follow sessions: " + err);
        const std::string sql = "LISTEN \"" + notify_channel(st_) + "\"";
        result_ptr r(PQexec(conn_.get(), sql.c_str()));
        if (PQresultStatus(r.get()) != PGRES_COMMAND_OK) {
            std::string m = conn_error(conn_.get(), st_);
            conn_.reset();
            throw Error(Errc::io, "LISTEN on " + describe_target(st_) + " failed: " + m);
        }
    }

    Settings st_;
    conn_ptr conn_;
    std::deque<Event> pending_;
};

} // namespace tradestate::postgres
