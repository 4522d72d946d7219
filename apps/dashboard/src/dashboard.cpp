// tradestate dashboard — snapshot hub, JSON shapes and the HTTP server.
#include <tradestate_dashboard/dashboard.hpp>

#include <tradestate/error.hpp>
#include <tradestate/money.hpp>

#include "dashboard_assets.hpp"

#include <boost/json.hpp>
#include <httplib.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstring>
#include <map>
#include <mutex>
#include <string>
#include <string_view>

#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

namespace tradestate::dashboard {

const char* to_string(Source s) noexcept {
    switch (s) {
    case Source::waiting: return "waiting";
    case Source::live: return "live";
    case Source::saved: return "saved";
    }
    return "waiting";
}

// ---- SnapshotHub -----------------------------------------------------------

SnapshotHub::SnapshotHub(std::size_t history_capacity, int refresh_ms)
    : capacity_(std::max<std::size_t>(history_capacity, 1)), refresh_ms_(refresh_ms),
      history_(std::make_shared<const std::vector<HistoryPoint>>()) {
    auto s = std::make_shared<Snapshot>();
    s->history = history_;
    s->sessions = std::make_shared<const std::vector<SessionRow>>();
    s->published_at = std::chrono::system_clock::now();
    s->published_steady = std::chrono::steady_clock::now();
    s->refresh_ms = refresh_ms_;
    s->history_capacity = capacity_;
    current_.store(std::move(s));
}

std::shared_ptr<const Snapshot> SnapshotHub::current() const { return current_.load(std::memory_order_acquire); }

void SnapshotHub::swap_in_locked(std::shared_ptr<Snapshot> next) {
    next->version = current_.load(std::memory_order_relaxed)->version + 1;
    next->published_at = std::chrono::system_clock::now();
    next->published_steady = std::chrono::steady_clock::now();
    next->refresh_ms = refresh_ms_;
    next->history_capacity = capacity_;
    next->history = history_;
    current_.store(std::move(next), std::memory_order_release);
}

void SnapshotHub::publish(Source source, std::string session, std::optional<StateView> state, std::string notice) {
    std::lock_guard lock(publish_mu_);
    auto prev = current_.load(std::memory_order_relaxed);
    auto next = std::make_shared<Snapshot>();
    next->source = source;
    next->session = std::move(session);
    next->backend = prev->backend;
    next->notice = std::move(notice);
    next->sessions = prev->sessions;
    if (state) {
        double t = state->epoch_seconds;
        if (t <= 0) {
            t = std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
        }
        HistoryPoint p{t, state->iteration, state->total_value_paise, state->total_pnl_paise(), state->realized_pnl_paise};
        bool add = ring_.empty() || ring_.back().iteration != p.iteration || ring_.back().t != p.t;
        if (add) {
            // A state older than the newest point means the session was
            // rewound to its last save (a restarted runner): drop the points
            // that no longer happened so the chart's time axis stays ordered.
            while (!ring_.empty() && ring_.back().t >= p.t) ring_.pop_back();
            ring_.push_back(p);
            while (ring_.size() > capacity_) ring_.pop_front();
            history_ = std::make_shared<const std::vector<HistoryPoint>>(ring_.begin(), ring_.end());
        }
    }
    next->state = std::move(state);
    swap_in_locked(std::move(next));
}

void SnapshotHub::set_sessions(std::vector<SessionRow> sessions) {
    std::lock_guard lock(publish_mu_);
    auto next = std::make_shared<Snapshot>(*current_.load(std::memory_order_relaxed));
    next->sessions = std::make_shared<const std::vector<SessionRow>>(std::move(sessions));
    swap_in_locked(std::move(next));
}

void SnapshotHub::set_backend(std::string backend) {
    std::lock_guard lock(publish_mu_);
    auto next = std::make_shared<Snapshot>(*current_.load(std::memory_order_relaxed));
    next->backend = std::move(backend);
    swap_in_locked(std::move(next));
}

void SnapshotHub::reset_history(std::vector<HistoryPoint> points) {
    std::lock_guard lock(publish_mu_);
    std::sort(points.begin(), points.end(), [](const auto& a, const auto& b) { return a.t < b.t; });
    ring_.assign(points.begin(), points.end());
    while (ring_.size() > capacity_) ring_.pop_front();
    history_ = std::make_shared<const std::vector<HistoryPoint>>(ring_.begin(), ring_.end());
    auto next = std::make_shared<Snapshot>(*current_.load(std::memory_order_relaxed));
    swap_in_locked(std::move(next));
}

// ---- JSON shapes ------------------------------------------------------------

namespace {

namespace json = boost::json;

std::string iso_utc(std::chrono::system_clock::time_point tp) {
    auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(tp.time_since_epoch()).count();
    std::time_t secs = static_cast<std::time_t>(ms / 1000);
    std::tm tm{};
    gmtime_r(&secs, &tm);
    char buf[96];
    std::snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900, tm.tm_mon + 1,
                  tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, static_cast<int>(ms % 1000));
    return buf;
}

json::value opt(const std::optional<std::int64_t>& v) {
    if (v) return json::value(*v);
    return json::value(nullptr);
}

/// P&L as basis points of the initial cash, rounded half away from zero,
/// with integers only.
std::int64_t basis_points(std::int64_t pnl, std::int64_t base) {
    if (base <= 0) return 0;
    // |pnl| * 10000 overflows only beyond ~9.2e14 paise (9.2 lakh crore).
    std::int64_t num = pnl * 10000;
    std::int64_t q = num / base, r = num % base;
    if (2 * (r < 0 ? -r : r) >= base) q += (num < 0 ? -1 : 1);
    return q;
}

json::object state_object(const StateView& v) {
    json::object summary;
    summary["initial_cash_paise"] = v.initial_cash_paise;
    summary["cash_paise"] = v.cash_paise;
    summary["total_value_paise"] = v.total_value_paise;
    summary["total_pnl_paise"] = v.total_pnl_paise();
    summary["total_pnl_bp"] = basis_points(v.total_pnl_paise(), v.initial_cash_paise);
    summary["realized_pnl_paise"] = v.realized_pnl_paise;
    summary["unrealized_pnl_paise"] = v.unrealized_pnl_paise();
    summary["active_positions"] = static_cast<std::int64_t>(v.positions.size());
    summary["trades_count"] = v.trades_count;

    json::array positions;
    for (const auto& p : v.positions) {
        positions.push_back(json::object{
            {"symbol", p.symbol},
            {"strategy", p.strategy},
            {"quantity", p.quantity},
            {"lots", opt(p.lots)},
            {"entry_price_paise", p.entry_price_paise},
            {"last_price_paise", p.last_price_paise},
            {"stop_loss_paise", opt(p.stop_loss_paise)},
            {"take_profit_paise", opt(p.take_profit_paise)},
            {"unrealized_pnl_paise", p.unrealized_pnl_paise},
            {"entry_time", p.entry_time},
        });
    }
    json::array trades;
    for (const auto& t : v.trades) {
        trades.push_back(json::object{
            {"time", t.time},
            {"side", t.side},
            {"symbol", t.symbol},
            {"strategy", t.strategy},
            {"quantity", t.quantity},
            {"price_paise", t.price_paise},
            {"realized_pnl_paise", opt(t.realized_pnl_paise)},
            {"reason", t.reason},
        });
    }
    json::object o;
    o["timestamp"] = v.timestamp;
    o["trading_mode"] = v.trading_mode;
    o["iteration"] = v.iteration;
    o["last_saved"] = v.last_saved.empty() ? json::value(nullptr) : json::value(v.last_saved);
    o["summary"] = std::move(summary);
    o["positions"] = std::move(positions);
    o["trades"] = std::move(trades);
    return o;
}

} // namespace

std::string state_json(const Snapshot& s) {
    json::object o;
    o["status"] = to_string(s.source);
    o["session"] = s.session;
    o["backend"] = s.backend;
    o["version"] = s.version;
    o["published_at"] = iso_utc(s.published_at);
    o["refresh_ms"] = s.refresh_ms;
    o["money_grouping"] = std::string(tradestate::to_string(tradestate::money_grouping()));
    o["notice"] = s.notice.empty() ? json::value(nullptr) : json::value(s.notice);
    o["state"] = s.state ? json::value(state_object(*s.state)) : json::value(nullptr);
    return json::serialize(o);
}

std::string history_json(const Snapshot& s) {
    json::array t, it, value, pnl, realized;
    if (s.history) {
        t.reserve(s.history->size());
        it.reserve(s.history->size());
        value.reserve(s.history->size());
        pnl.reserve(s.history->size());
        realized.reserve(s.history->size());
        for (const auto& p : *s.history) {
            t.push_back(p.t);
            it.push_back(p.iteration);
            value.push_back(p.total_value_paise);
            pnl.push_back(p.pnl_paise);
            realized.push_back(p.realized_pnl_paise);
        }
    }
    json::object o;
    o["session"] = s.session;
    o["version"] = s.version;
    o["capacity"] = static_cast<std::uint64_t>(s.history_capacity);
    o["t"] = std::move(t);
    o["iteration"] = std::move(it);
    o["total_value_paise"] = std::move(value);
    o["pnl_paise"] = std::move(pnl);
    o["realized_pnl_paise"] = std::move(realized);
    return json::serialize(o);
}

std::string sessions_json(const Snapshot& s) {
    json::array a;
    if (s.sessions) {
        for (const auto& r : *s.sessions) {
            a.push_back(json::object{
                {"session", r.session},
                {"saved_at", r.saved_at},
                {"iteration", r.iteration},
                {"positions", r.positions},
                {"cash_paise", r.cash_paise},
                {"sequence", r.sequence},
                {"location", r.location},
            });
        }
    }
    json::object o;
    o["backend"] = s.backend;
    o["current"] = s.session;
    o["sessions"] = std::move(a);
    return json::serialize(o);
}

std::string health_json(const Snapshot& s, std::chrono::steady_clock::time_point started) {
    auto now = std::chrono::steady_clock::now();
    auto ms = [](auto d) { return std::chrono::duration_cast<std::chrono::milliseconds>(d).count(); };
    json::object o;
    o["status"] = "ok";
    o["source"] = to_string(s.source);
    o["session"] = s.session;
    o["backend"] = s.backend;
    o["version"] = s.version;
    o["iteration"] = s.state ? json::value(s.state->iteration) : json::value(nullptr);
    o["snapshot_age_ms"] = ms(now - s.published_steady);
    o["uptime_ms"] = ms(now - started);
    o["history_points"] = static_cast<std::uint64_t>(s.history ? s.history->size() : 0);
    o["chart_bundled"] = assets::complete;
    return json::serialize(o);
}

// ---- Server -------------------------------------------------------------------

namespace {

/// A connection's stream with deadlines cpp-httplib lacks: its read
/// timeout restarts with every byte, so a client sending one header line
/// every 2 s held a worker for as long as it liked. Here a request must
/// arrive whole within `request_timeout` of the server starting to wait for
/// it, and a response must be taken within `write_timeout`.
class DeadlineStream final : public httplib::Stream {
public:
    DeadlineStream(socket_t sock, std::chrono::milliseconds request_timeout, std::chrono::milliseconds write_timeout)
        : sock_(sock), request_timeout_(request_timeout), write_timeout_(write_timeout) {}

    /// Start waiting for the next request; false when none began in time
    /// (an idle keep-alive connection, or a client that sends nothing).
    bool begin_request() {
        phase_ = Phase::reading;
        deadline_ = clock::now() + request_timeout_;
        return pos_ < len_ || wait(POLLIN);
    }
    [[nodiscard]] bool expired() const noexcept { return expired_; }

    bool is_readable() const override { return pos_ < len_ || wait(POLLIN); }
    bool is_writable() const override { return wait(POLLOUT); }

    ssize_t read(char* ptr, size_t size) override {
        if (phase_ != Phase::reading) {
            phase_ = Phase::reading;
            deadline_ = clock::now() + request_timeout_;
        }
        if (pos_ == len_) {
            if (!wait(POLLIN)) return fail();
            ssize_t n;
            do n = ::recv(sock_, buf_, sizeof buf_, 0);
            while (n < 0 && errno == EINTR);
            if (n <= 0) return n;
            pos_ = 0;
            len_ = static_cast<std::size_t>(n);
        }
        const std::size_t k = std::min(size, len_ - pos_);
        std::memcpy(ptr, buf_ + pos_, k);
        pos_ += k;
        return static_cast<ssize_t>(k);
    }

    ssize_t write(const char* ptr, size_t size) override {
        if (phase_ != Phase::writing) {
            phase_ = Phase::writing;
            deadline_ = clock::now() + write_timeout_;
        }
        if (!wait(POLLOUT)) return fail();
        ssize_t n;
        do n = ::send(sock_, ptr, size, MSG_NOSIGNAL);
        while (n < 0 && errno == EINTR);
        return n;
    }

    void get_remote_ip_and_port(std::string& ip, int& port) const override { address_of(::getpeername, ip, port); }
    void get_local_ip_and_port(std::string& ip, int& port) const override { address_of(::getsockname, ip, port); }
    socket_t socket() const override { return sock_; }

    /// "127.0.0.1" for the peer of `sock`.
    static std::string peer_ip(socket_t sock) {
        DeadlineStream s(sock, {}, {});
        std::string ip;
        int port = 0;
        s.get_remote_ip_and_port(ip, port);
        return ip;
    }

private:
    using clock = std::chrono::steady_clock;
    enum class Phase { reading, writing };

    ssize_t fail() {
        expired_ = true;
        return -1;
    }
    /// poll() for `events` until the deadline; true when the socket is ready.
    bool wait(short events) const {
        for (;;) {
            const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline_ - clock::now()).count();
            if (left <= 0) return false;
            pollfd p{sock_, events, 0};
            const int r = ::poll(&p, 1, static_cast<int>(std::min<long long>(left, 1000)));
            if (r > 0) return true;
            if (r < 0 && errno != EINTR) return false;
        }
    }
    template <class F>
    void address_of(F get, std::string& ip, int& port) const {
        sockaddr_storage a{};
        socklen_t len = sizeof a;
        ip.clear();
        port = 0;
        if (get(sock_, reinterpret_cast<sockaddr*>(&a), &len) != 0) return;
        char text[INET6_ADDRSTRLEN] = {};
        if (a.ss_family == AF_INET) {
            const auto* v4 = reinterpret_cast<const sockaddr_in*>(&a);
            ::inet_ntop(AF_INET, &v4->sin_addr, text, sizeof text);
            port = ntohs(v4->sin_port);
        } else if (a.ss_family == AF_INET6) {
            const auto* v6 = reinterpret_cast<const sockaddr_in6*>(&a);
            ::inet_ntop(AF_INET6, &v6->sin6_addr, text, sizeof text);
            port = ntohs(v6->sin6_port);
        }
        ip = text;
    }

    socket_t sock_;
    std::chrono::milliseconds request_timeout_, write_timeout_;
    clock::time_point deadline_{};
    Phase phase_ = Phase::writing;
    bool expired_ = false;
    char buf_[4096];
    std::size_t pos_ = 0, len_ = 0;
};

/// cpp-httplib's server with the connection limits of ServerOptions: each
/// connection is served through a DeadlineStream, and a client address
/// holds at most `max_per_client` connections at once (more get 503 and
/// are closed at once, so they never wait for a worker).
class GuardedServer final : public httplib::Server {
public:
    GuardedServer(const ServerOptions& o)
        : request_timeout_(o.request_timeout), write_timeout_(o.write_timeout),
          max_per_client_(std::max(1, o.max_connections_per_client)), logger_(o.logger) {}

    /// cpp-httplib listens with a backlog of 5: a burst of clients beyond
    /// that waits for SYN retries (1 s, 3 s, 7 s). Listening again on the
    /// bound socket raises it.
    void widen_backlog() {
        if (svr_sock_ != INVALID_SOCKET) (void)::listen(svr_sock_, SOMAXCONN);
    }

private:
    bool process_and_close_socket(socket_t sock) override {
        const std::string ip = DeadlineStream::peer_ip(sock);
        bool ret = false;
        if (admit(ip)) {
            struct Leave {
                GuardedServer& s;
                const std::string& ip;
                ~Leave() { s.leave(ip); }
            } leave{*this, ip};
            DeadlineStream strm(sock, request_timeout_, write_timeout_);
            for (std::size_t left = keep_alive_max_count_; left > 0 && svr_sock_ != INVALID_SOCKET; --left) {
                if (!strm.begin_request()) break;
                bool closed = false;
                ret = process_request(strm, left == 1, closed, nullptr);
                // A request that ran out of time got its 400; it is not
                // kept alive for another slow one.
                if (!ret || closed || strm.expired()) break;
            }
        } else {
            static constexpr std::string_view body =
                R"({"error":"too many connections from this address; retry in a while"})";
            const std::string busy =
                "HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\nRetry-After: 2\r\n"
                "Cache-Control: no-store\r\nConnection: close\r\nContent-Length: " +
                std::to_string(body.size()) + "\r\n\r\n" + std::string(body);
            (void)::send(sock, busy.data(), busy.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
        }
        ::shutdown(sock, SHUT_RDWR);
        ::close(sock);
        return ret;
    }

    bool admit(const std::string& ip) {
        std::lock_guard lock(mu_);
        int& n = per_client_[ip];
        if (n < max_per_client_) {
            ++n;
            return true;
        }
        ++refused_;
        const auto now = std::chrono::steady_clock::now();
        if (now - last_report_ > std::chrono::seconds(10)) {
            last_report_ = now;
            if (logger_)
                logger_->warn("dashboard: {} holds {} connections, the most one address may; refused {} "
                              "connection(s) with 503 so far",
                              ip, n, refused_);
        }
        return false;
    }
    void leave(const std::string& ip) {
        std::lock_guard lock(mu_);
        auto it = per_client_.find(ip);
        if (it != per_client_.end() && --it->second <= 0) per_client_.erase(it);
    }

    std::chrono::milliseconds request_timeout_, write_timeout_;
    int max_per_client_;
    std::shared_ptr<spdlog::logger> logger_;
    std::mutex mu_;
    std::map<std::string, int> per_client_;
    std::uint64_t refused_ = 0;
    std::chrono::steady_clock::time_point last_report_{};
};

} // namespace

struct Server::Impl {
    explicit Impl(const ServerOptions& o) : http(o) {
        // cpp-httplib's default sets SO_REUSEPORT, with which a second server
        // of ours binds the same port and the kernel spreads clients over
        // both. SO_REUSEADDR alone: a restart may reuse a port in TIME_WAIT,
        // a busy one is refused whoever holds it.
        http.set_socket_options([](socket_t fd) {
            int yes = 1;
            (void)::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof yes);
        });
    }
    GuardedServer http;
    std::chrono::steady_clock::time_point started = std::chrono::steady_clock::now();
};

namespace {

const assets::Asset* find_asset(std::string_view path) {
    for (const auto& a : assets::all)
        if (a.path == path) return &a;
    return nullptr;
}

/// Why binding host:port fails, as strerror text (the HTTP library only
/// says that it failed).
std::string bind_failure_reason(const std::string& host, int port) {
    addrinfo hints{};
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE;
    addrinfo* res = nullptr;
    std::string service = std::to_string(port);
    if (int rc = ::getaddrinfo(host.c_str(), service.c_str(), &hints, &res); rc != 0) {
        return std::string("cannot resolve the address: ") + ::gai_strerror(rc);
    }
    std::string reason = "unknown reason";
    for (auto* ai = res; ai; ai = ai->ai_next) {
        int fd = ::socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, ai->ai_protocol);
        if (fd < 0) {
            reason = std::strerror(errno);
            continue;
        }
        int yes = 1;
        ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof yes);
        if (::bind(fd, ai->ai_addr, ai->ai_addrlen) != 0) {
            int e = errno;
            reason = std::strerror(e);
            if (e == EADDRINUSE) reason += " (another program is listening on it)";
        } else if (::listen(fd, 1) != 0) {
            reason = std::strerror(errno);
        } else {
            reason = "it was busy a moment ago";
        }
        ::close(fd);
        break;
    }
    ::freeaddrinfo(res);
    return reason;
}

} // namespace

namespace {
ServerOptions with_logger(ServerOptions o) {
    if (!o.logger) o.logger = spdlog::default_logger();
    return o;
}
} // namespace

Server::Server(std::shared_ptr<SnapshotHub> hub, ServerOptions options)
    : hub_(std::move(hub)), options_(with_logger(std::move(options))), impl_(std::make_unique<Impl>(options_)) {
    if (!hub_) throw Error(Errc::invalid_argument, "dashboard server needs a snapshot hub");
    auto& http = impl_->http;
    const int threads = std::max(1, options_.threads);
    http.new_task_queue = [threads] { return new httplib::ThreadPool(static_cast<std::size_t>(threads)); };
    http.set_keep_alive_max_count(20); // a busy keep-alive client gives its worker back regularly
    http.set_payload_max_length(64 * 1024);
    http.set_default_headers({
        {"X-Content-Type-Options", "nosniff"},
        {"Referrer-Policy", "no-referrer"},
        {"X-Frame-Options", "DENY"},
        {"Content-Security-Policy",
         "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
         "connect-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'"},
    });

    auto shared_hub = hub_;
    auto started = impl_->started;

    // Read-only: anything but GET/HEAD is refused before routing.
    http.set_pre_routing_handler([](const httplib::Request& req, httplib::Response& res) {
        if (req.method == "GET" || req.method == "HEAD") return httplib::Server::HandlerResponse::Unhandled;
        res.status = 405;
        res.set_header("Allow", "GET, HEAD");
        res.set_header("Cache-Control", "no-store");
        res.set_content(R"J({"error":"method not allowed: the dashboard is read-only (GET, HEAD)"})J",
                        "application/json");
        return httplib::Server::HandlerResponse::Handled;
    });

    auto serve_asset = [](std::string_view path) {
        return [path](const httplib::Request&, httplib::Response& res) {
            const auto* a = find_asset(path);
            if (!a) {
                res.status = 404;
                return;
            }
            res.set_header("Cache-Control", "no-cache");
            res.set_content(std::string(a->body), std::string(a->content_type));
        };
    };
    http.Get("/", serve_asset("/index.html"));
    http.Get("/index.html", serve_asset("/index.html"));
    http.Get(R"(/assets/([A-Za-z0-9_.-]+))", [](const httplib::Request& req, httplib::Response& res) {
        const auto* a = find_asset(req.path);
        if (!a) {
            res.status = 404;
            res.set_content("not found: " + std::string(req.path), "text/plain; charset=utf-8");
            return;
        }
        res.set_header("Cache-Control", "no-cache");
        res.set_content(std::string(a->body), std::string(a->content_type));
    });
    auto api = [shared_hub](auto make) {
        return [hub = shared_hub, make](const httplib::Request&, httplib::Response& res) {
            auto snap = hub->current(); // one atomic load; nothing locked while answering
            res.set_header("Cache-Control", "no-store");
            res.set_content(make(*snap), "application/json");
        };
    };
    http.Get("/api/state", api([](const Snapshot& s) { return state_json(s); }));
    http.Get("/api/history", api([](const Snapshot& s) { return history_json(s); }));
    http.Get("/api/sessions", api([](const Snapshot& s) { return sessions_json(s); }));
    http.Get("/api/health", api([started](const Snapshot& s) { return health_json(s, started); }));
    http.Get("/favicon.ico", [](const httplib::Request&, httplib::Response& res) { res.status = 204; });
    http.Get(".*", [](const httplib::Request& req, httplib::Response& res) {
        res.status = 404;
        res.set_header("Cache-Control", "no-store");
        if (req.path.rfind("/api/", 0) == 0) {
            boost::json::object o{{"error", "no such API endpoint: " + req.path +
                                                 " (try /api/state, /api/history, /api/sessions, /api/health)"}};
            res.set_content(boost::json::serialize(o), "application/json");
        } else {
            res.set_content("not found\n", "text/plain; charset=utf-8");
        }
    });
    http.set_exception_handler([log = options_.logger](const httplib::Request& req, httplib::Response& res,
                                                       std::exception_ptr ep) {
        std::string what = "unknown error";
        try {
            if (ep) std::rethrow_exception(ep);
        } catch (const std::exception& e) {
            what = e.what();
        } catch (...) {
        }
        log->error("dashboard: {} {} failed: {}", req.method, req.path, what);
        res.status = 500;
        res.set_content(R"({"error":"internal error; see the server log"})", "application/json");
    });
}

Server::~Server() { stop(); }

bool Server::chart_bundled() noexcept { return assets::complete; }

void Server::start() {
    if (thread_.joinable()) return;
    auto& http = impl_->http;
    bool ok;
    if (options_.port == 0) {
        port_ = http.bind_to_any_port(options_.bind);
        ok = port_ > 0;
    } else {
        ok = http.bind_to_port(options_.bind, options_.port);
        port_ = options_.port;
    }
    if (!ok) {
        std::string reason = bind_failure_reason(options_.bind, options_.port);
        throw Error(Errc::io, "dashboard cannot listen on " + options_.bind + ":" + std::to_string(options_.port) +
                                  ": " + reason + "; stop the other program or choose another port in the "
                                  "[dashboard] section of config.toml (port = ...)");
    }
    impl_->http.widen_backlog();
    thread_ = std::thread([this] { impl_->http.listen_after_bind(); });
    // stop() is only reliable once the accept loop runs: wait for it.
    for (int i = 0; i < 2000 && !impl_->http.is_running(); ++i)
        std::this_thread::sleep_for(std::chrono::milliseconds(1));
    options_.logger->info("dashboard: serving http://{}:{}/ (chart library {})", options_.bind, port_,
                          assets::complete ? "embedded" : "missing: run scripts/bootstrap-web and rebuild");
}

void Server::stop() {
    if (!thread_.joinable()) return;
    impl_->http.stop();
    thread_.join();
}

bool Server::running() const { return thread_.joinable() && impl_->http.is_running(); }

std::string Server::url() const { return "http://" + options_.bind + ":" + std::to_string(port_) + "/"; }

} // namespace tradestate::dashboard
