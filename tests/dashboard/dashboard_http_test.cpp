// HTTP tests of the dashboard server: a real server on 127.0.0.1 (any free
// port), real TCP clients.
#include <tradestate_dashboard/dashboard.hpp>

#include <tradestate/error.hpp>

#include <boost/json.hpp>
#include <gtest/gtest.h>
#include <httplib.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <string>
#include <thread>
#include <vector>

namespace td = tradestate::dashboard;
namespace json = boost::json;
using namespace std::chrono_literals;

namespace {

td::StateView sample_view(std::int64_t iteration) {
    td::StateView v;
    v.timestamp = "2025-09-29T11:49:10.218268+05:30";
    v.epoch_seconds = 1759126750.0 + static_cast<double>(iteration);
    v.trading_mode = "paper";
    v.iteration = iteration;
    v.last_saved = "2025-09-29T11:49:10.218268+05:30";
    v.initial_cash_paise = 100000000;
    v.cash_paise = 91446259;
    v.realized_pnl_paise = -2840;
    td::PositionRow p;
    p.symbol = "NIFTY25SEP24650CE";
    p.strategy = "straddle";
    p.quantity = 75;
    p.lots = 1;
    p.entry_price_paise = 22042;
    p.last_price_paise = 22100 + iteration;
    p.stop_loss_paise = 20719;
    p.take_profit_paise = 24687;
    p.unrealized_pnl_paise = (p.last_price_paise - p.entry_price_paise) * 75;
    p.entry_time = "2025-09-29T11:49:10.204428+05:30";
    v.positions.push_back(p);
    v.total_value_paise = v.cash_paise + p.last_price_paise * 75;
    td::TradeRow t;
    t.time = "2025-09-29T11:40:00.000000+05:30";
    t.side = "close long";
    t.symbol = "BANKNIFTY25SEP57200CE";
    t.strategy = "<script>alert(1)</script>";
    t.quantity = 30;
    t.price_paise = 39556;
    t.realized_pnl_paise = -2840;
    t.reason = "stop_loss";
    v.trades.push_back(t);
    v.trades_count = 5;
    return v;
}

struct Reply {
    int status = 0;
    std::string head;
    std::string body;
};

/// One request over a plain socket, for methods the client library does
/// not offer (TRACE, CONNECT) and to see the raw bytes.
Reply raw_request(int port, const std::string& method, const std::string& path, const std::string& body = {}) {
    int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(static_cast<std::uint16_t>(port));
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
        ::close(fd);
        return {};
    }
    std::string req = method + " " + path + " HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n";
    if (!body.empty() || method == "POST" || method == "PUT" || method == "PATCH")
        req += "Content-Type: application/json\r\nContent-Length: " + std::to_string(body.size()) + "\r\n";
    req += "\r\n" + body;
    (void)::send(fd, req.data(), req.size(), MSG_NOSIGNAL);
    std::string resp;
    char buf[4096];
    for (;;) {
        ssize_t n = ::recv(fd, buf, sizeof buf, 0);
        if (n <= 0) break;
        resp.append(buf, static_cast<std::size_t>(n));
    }
    ::close(fd);
    Reply r;
    auto sp = resp.find(' ');
    if (sp != std::string::npos) r.status = std::atoi(resp.c_str() + sp + 1);
    auto end = resp.find("\r\n\r\n");
    r.head = resp.substr(0, end);
    if (end != std::string::npos) r.body = resp.substr(end + 4);
    return r;
}

class DashboardServer : public ::testing::Test {
protected:
    void SetUp() override {
        hub = std::make_shared<td::SnapshotHub>(2000, 2000);
        hub->set_backend("json-files");
        td::ServerOptions o;
        o.port = 0;
        o.threads = 8;
        server = std::make_unique<td::Server>(hub, o);
        server->start();
        ASSERT_TRUE(server->running());
        ASSERT_GT(server->port(), 0);
    }
    void TearDown() override { server->stop(); }

    json::value get_json(const std::string& path) {
        httplib::Client c("127.0.0.1", server->port());
        auto r = c.Get(path);
        EXPECT_TRUE(r) << path;
        if (!r) return nullptr;
        EXPECT_EQ(r->status, 200) << path;
        EXPECT_EQ(r->get_header_value("Content-Type"), "application/json") << path;
        return json::parse(r->body);
    }

    std::shared_ptr<td::SnapshotHub> hub;
    std::unique_ptr<td::Server> server;
};

} // namespace

TEST_F(DashboardServer, StateBeforeAnythingIsPublishedSaysWaiting) {
    auto v = get_json("/api/state").as_object();
    EXPECT_EQ(v.at("status").as_string(), "waiting");
    EXPECT_TRUE(v.at("state").is_null());
    EXPECT_EQ(v.at("refresh_ms").as_int64(), 2000);
    auto h = get_json("/api/history").as_object();
    EXPECT_TRUE(h.at("t").as_array().empty());
}

TEST_F(DashboardServer, ApiShapes) {
    hub->set_sessions({td::SessionRow{"main", "2025-09-29T11:49:10+05:30", 25, 6, 89643916, 7, "state/fno_system_state.json"}});
    hub->publish(td::Source::live, "main", sample_view(24));
    hub->publish(td::Source::live, "main", sample_view(25));

    auto st = get_json("/api/state").as_object();
    EXPECT_EQ(st.at("status").as_string(), "live");
    EXPECT_EQ(st.at("session").as_string(), "main");
    EXPECT_EQ(st.at("backend").as_string(), "json-files");
    EXPECT_TRUE(st.at("notice").is_null());
    const auto& s = st.at("state").as_object();
    EXPECT_EQ(s.at("iteration").as_int64(), 25);
    EXPECT_EQ(s.at("trading_mode").as_string(), "paper");
    const auto& sum = s.at("summary").as_object();
    EXPECT_EQ(sum.at("cash_paise").as_int64(), 91446259);
    EXPECT_EQ(sum.at("initial_cash_paise").as_int64(), 100000000);
    const std::int64_t tv = 91446259 + (22100 + 25) * 75;
    EXPECT_EQ(sum.at("total_value_paise").as_int64(), tv);
    EXPECT_EQ(sum.at("total_pnl_paise").as_int64(), tv - 100000000);
    // -6,894,366 paise on 100,000,000 = -6.894366% -> -689 bp (rounded to nearest)
    EXPECT_EQ(sum.at("total_pnl_bp").as_int64(), -689);
    EXPECT_EQ(sum.at("active_positions").as_int64(), 1);
    const auto& pos = s.at("positions").as_array().at(0).as_object();
    EXPECT_EQ(pos.at("symbol").as_string(), "NIFTY25SEP24650CE");
    EXPECT_EQ(pos.at("quantity").as_int64(), 75);
    EXPECT_EQ(pos.at("lots").as_int64(), 1);
    EXPECT_EQ(pos.at("stop_loss_paise").as_int64(), 20719);
    EXPECT_EQ(pos.at("unrealized_pnl_paise").as_int64(), (22125 - 22042) * 75);
    const auto& tr = s.at("trades").as_array().at(0).as_object();
    EXPECT_EQ(tr.at("strategy").as_string(), "<script>alert(1)</script>");
    EXPECT_EQ(tr.at("realized_pnl_paise").as_int64(), -2840);

    auto h = get_json("/api/history").as_object();
    ASSERT_EQ(h.at("t").as_array().size(), 2u);
    EXPECT_EQ(h.at("iteration").as_array().at(1).as_int64(), 25);
    EXPECT_EQ(h.at("total_value_paise").as_array().at(1).as_int64(), tv);
    EXPECT_EQ(h.at("pnl_paise").as_array().at(1).as_int64(), tv - 100000000);
    EXPECT_EQ(h.at("realized_pnl_paise").as_array().at(1).as_int64(), -2840);
    EXPECT_EQ(h.at("capacity").as_int64(), 2000);

    auto ss = get_json("/api/sessions").as_object();
    ASSERT_EQ(ss.at("sessions").as_array().size(), 1u);
    EXPECT_EQ(ss.at("sessions").as_array()[0].at("iteration").as_int64(), 25);
    EXPECT_EQ(ss.at("sessions").as_array()[0].at("cash_paise").as_int64(), 89643916);

    auto health = get_json("/api/health").as_object();
    EXPECT_EQ(health.at("status").as_string(), "ok");
    EXPECT_EQ(health.at("iteration").as_int64(), 25);
    EXPECT_EQ(health.at("history_points").as_int64(), 2);
    EXPECT_GE(health.at("version").as_int64(), 3);
}

TEST_F(DashboardServer, PageAndAssetsAreEmbedded) {
    EXPECT_TRUE(td::Server::chart_bundled())
        << "uPlot was not embedded: run scripts/bootstrap (or scripts/bootstrap-web) and rebuild";
    httplib::Client c("127.0.0.1", server->port());
    auto r = c.Get("/");
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 200);
    EXPECT_EQ(r->get_header_value("Content-Type"), "text/html; charset=utf-8");
    EXPECT_NE(r->body.find("<title>"), std::string::npos);
    EXPECT_NE(r->get_header_value("Content-Security-Policy").find("script-src 'self'"), std::string::npos);
    EXPECT_EQ(r->get_header_value("X-Content-Type-Options"), "nosniff");
    for (const char* a : {"/assets/app.js", "/assets/app.css", "/assets/uPlot.iife.min.js", "/assets/uPlot.min.css"}) {
        auto x = c.Get(a);
        ASSERT_TRUE(x) << a;
        EXPECT_EQ(x->status, 200) << a;
        EXPECT_GT(x->body.size(), 100u) << a;
    }
    // The page script never turns data into markup.
    auto js = c.Get("/assets/app.js");
    ASSERT_TRUE(js);
    for (const char* bad : {"innerHTML", "outerHTML", "insertAdjacentHTML", "document.write"})
        EXPECT_EQ(js->body.find(bad), std::string::npos) << bad;
    EXPECT_NE(js->body.find("textContent"), std::string::npos);
}

TEST_F(DashboardServer, UnknownPathsAre404AndNoFileFromDiskIsServed) {
    for (const char* p : {"/nope", "/api/nope", "/api/state/extra", "/assets/missing.js", "/web/app.js",
                          "/etc/passwd", "/../../etc/passwd", "/assets/..%2f..%2fetc%2fpasswd", "/app.js",
                          "/CMakeLists.txt", "/index.htm"}) {
        auto r = raw_request(server->port(), "GET", p);
        EXPECT_EQ(r.status, 404) << p;
        EXPECT_EQ(r.body.find("root:"), std::string::npos) << p;
    }
    auto api = raw_request(server->port(), "GET", "/api/nope");
    auto err = json::parse(api.body).as_object();
    EXPECT_NE(std::string(err.at("error").as_string()).find("/api/state"), std::string::npos);
}

TEST_F(DashboardServer, EveryMethodButGetAndHeadIs405) {
    for (const char* path : {"/", "/api/state", "/api/history", "/api/sessions", "/api/health", "/nope"}) {
        for (const char* m : {"POST", "PUT", "DELETE", "PATCH", "OPTIONS", "TRACE", "CONNECT"}) {
            auto r = raw_request(server->port(), m, path, std::string(m) == "POST" ? "{\"x\":1}" : "");
            EXPECT_EQ(r.status, 405) << m << " " << path;
            EXPECT_NE(r.head.find("Allow: GET, HEAD"), std::string::npos) << m << " " << path;
        }
    }
    auto head = raw_request(server->port(), "HEAD", "/api/state");
    EXPECT_EQ(head.status, 200);
    EXPECT_TRUE(head.body.empty());
    // Nothing changed by any of that.
    auto v = get_json("/api/state").as_object();
    EXPECT_EQ(v.at("status").as_string(), "waiting");
}

TEST_F(DashboardServer, ConcurrentClientsWhileTheLoopPublishes) {
    std::atomic<bool> stop{false};
    std::atomic<std::int64_t> publishes{0};
    std::atomic<long long> worst_publish_us{0};
    // A client that opens a connection and never finishes its request must
    // not slow anything down.
    int stalled = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    {
        sockaddr_in a{};
        a.sin_family = AF_INET;
        a.sin_port = htons(static_cast<std::uint16_t>(server->port()));
        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        ASSERT_EQ(::connect(stalled, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
        const char partial[] = "GET /api/state HTTP/1.1\r\nHost: x\r\n";
        ASSERT_GT(::send(stalled, partial, sizeof partial - 1, MSG_NOSIGNAL), 0);
    }

    std::thread loop([&] {
        std::int64_t it = 0;
        while (!stop.load()) {
            auto v = sample_view(it);
            // invariant the readers check: one position per 10 iterations
            v.positions.resize(static_cast<std::size_t>(it % 10 == 0 ? 0 : 1));
            v.total_value_paise = v.cash_paise + (v.positions.empty() ? 0 : v.positions[0].last_price_paise * 75);
            auto t0 = std::chrono::steady_clock::now();
            hub->publish(td::Source::live, "main", std::move(v));
            auto us = std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::steady_clock::now() - t0).count();
            long long prev = worst_publish_us.load();
            while (us > prev && !worst_publish_us.compare_exchange_weak(prev, us)) {
            }
            publishes.fetch_add(1);
            ++it;
            std::this_thread::sleep_for(1ms);
        }
    });

    constexpr int clients = 8;
    std::atomic<int> ok{0}, bad{0};
    std::vector<std::thread> ts;
    const auto until = std::chrono::steady_clock::now() + 1500ms;
    for (int c = 0; c < clients; ++c) {
        ts.emplace_back([&, c] {
            httplib::Client cl("127.0.0.1", server->port());
            cl.set_keep_alive(c % 2 == 0);
            std::int64_t last_version = -1;
            while (std::chrono::steady_clock::now() < until) {
                auto r = cl.Get(c % 3 == 0 ? "/api/history" : "/api/state");
                if (!r || r->status != 200) {
                    ++bad;
                    continue;
                }
                auto v = json::parse(r->body).as_object();
                auto version = v.at("version").as_int64();
                if (version < last_version) ++bad; // never goes back in time
                last_version = version;
                if (c % 3 != 0 && !v.at("state").is_null()) {
                    const auto& s = v.at("state").as_object();
                    auto it = s.at("iteration").as_int64();
                    auto n = s.at("positions").as_array().size();
                    const auto& sum = s.at("summary").as_object();
                    std::int64_t expect_value = sum.at("cash_paise").as_int64() +
                                                (n ? s.at("positions").as_array()[0].at("last_price_paise").as_int64() * 75 : 0);
                    // a torn snapshot would break these
                    if (n != (it % 10 == 0 ? 0u : 1u) || sum.at("total_value_paise").as_int64() != expect_value) ++bad;
                } else if (c % 3 == 0) {
                    auto n = v.at("t").as_array().size();
                    if (n != v.at("iteration").as_array().size() || n > 2000) ++bad;
                }
                ++ok;
            }
        });
    }
    for (auto& t : ts) t.join();
    stop = true;
    loop.join();
    ::close(stalled);

    EXPECT_EQ(bad.load(), 0);
    EXPECT_GT(ok.load(), clients * 10);
    EXPECT_GT(publishes.load(), 100);
    // The loop never waited on a client: a publish is a copy and a pointer swap.
    EXPECT_LT(worst_publish_us.load(), 100000) << "a publish took " << worst_publish_us.load() << " us";
    RecordProperty("requests", ok.load());
    RecordProperty("publishes", static_cast<int>(publishes.load()));
    RecordProperty("worst_publish_us", static_cast<int>(worst_publish_us.load()));
}

TEST(DashboardHistory, RingIsBoundedAndRewindsOnResume) {
    td::SnapshotHub hub(10);
    for (int i = 0; i < 25; ++i) hub.publish(td::Source::live, "s", sample_view(i));
    auto snap = hub.current();
    ASSERT_EQ(snap->history->size(), 10u);
    EXPECT_EQ(snap->history->front().iteration, 15);
    EXPECT_EQ(snap->history->back().iteration, 24);
    // Same state published again: no new point.
    hub.publish(td::Source::live, "s", sample_view(24));
    EXPECT_EQ(hub.current()->history->size(), 10u);
    // A restarted runner resumes from its last save (iteration 20): the
    // points after it are gone, the chart's time axis stays ordered.
    hub.publish(td::Source::live, "s", sample_view(20));
    snap = hub.current();
    EXPECT_EQ(snap->history->back().iteration, 20);
    for (std::size_t i = 1; i < snap->history->size(); ++i)
        EXPECT_LT((*snap->history)[i - 1].t, (*snap->history)[i].t);
    // Old snapshots stay valid for readers that still hold them.
    EXPECT_EQ(snap->state->iteration, 20);
}

TEST(DashboardServerStart, BusyPortGivesAClearErrorNamingIt) {
    int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ASSERT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
    ASSERT_EQ(::listen(fd, 1), 0);
    socklen_t len = sizeof a;
    ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
    const int port = ntohs(a.sin_port);

    td::ServerOptions o;
    o.port = port;
    td::Server s(std::make_shared<td::SnapshotHub>(), o);
    try {
        s.start();
        FAIL() << "start() on a busy port should throw";
    } catch (const tradestate::Error& e) {
        const std::string msg = e.what();
        EXPECT_EQ(e.code(), tradestate::Errc::io);
        EXPECT_NE(msg.find("127.0.0.1:" + std::to_string(port)), std::string::npos) << msg;
        EXPECT_NE(msg.find("in use"), std::string::npos) << msg;
        EXPECT_NE(msg.find("[dashboard]"), std::string::npos) << msg;
    }
    EXPECT_FALSE(s.running());
    ::close(fd);
}

TEST(DashboardServerStart, ASecondServerOfOursOnTheSamePortIsRefused) {
    td::ServerOptions o;
    o.port = 0;
    td::Server first(std::make_shared<td::SnapshotHub>(), o);
    first.start();
    ASSERT_TRUE(first.running());
    td::ServerOptions same;
    same.port = first.port();
    td::Server second(std::make_shared<td::SnapshotHub>(), same);
    try {
        second.start();
        FAIL() << "a second server bound 127.0.0.1:" << same.port << " beside the first";
    } catch (const tradestate::Error& e) {
        const std::string msg = e.what();
        EXPECT_EQ(e.code(), tradestate::Errc::io);
        EXPECT_NE(msg.find("127.0.0.1:" + std::to_string(same.port)), std::string::npos) << msg;
        EXPECT_NE(msg.find("in use"), std::string::npos) << msg;
    }
    EXPECT_FALSE(second.running());
    EXPECT_TRUE(first.running());
}

namespace {

/// A TCP connection to 127.0.0.1:port from the loopback address `from`
/// (127.0.0.0/8 is all loopback: each address is a different client).
int connect_from(const char* from, int port) {
    int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in src{};
    src.sin_family = AF_INET;
    ::inet_pton(AF_INET, from, &src.sin_addr);
    sockaddr_in dst{};
    dst.sin_family = AF_INET;
    dst.sin_port = htons(static_cast<std::uint16_t>(port));
    dst.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (::bind(fd, reinterpret_cast<sockaddr*>(&src), sizeof src) != 0 ||
        ::connect(fd, reinterpret_cast<sockaddr*>(&dst), sizeof dst) != 0) {
        ::close(fd);
        return -1;
    }
    return fd;
}

/// Whatever the server sent so far, without waiting; `closed` once it
/// closed the connection.
std::string drain(int fd, bool& closed) {
    std::string got;
    char buf[4096];
    for (;;) {
        const ssize_t n = ::recv(fd, buf, sizeof buf, MSG_DONTWAIT);
        if (n > 0) {
            got.append(buf, static_cast<std::size_t>(n));
            continue;
        }
        if (n == 0 || (errno != EAGAIN && errno != EWOULDBLOCK)) closed = true;
        return got;
    }
}

} // namespace

// 50 connections from one client that send a header line a second, and 5
// that send nothing, while another client asks for the state twice a
// second: the well-behaved client is answered every time, the slow
// client holds at most max_connections_per_client connections (the rest
// get 503 at once), and the server closes each slow or idle connection
// once request_timeout has passed, whatever trickles in.
TEST(DashboardSlowClients, CannotStarveTheApiAndAreClosedAfterTheRequestTimeout) {
    auto hub = std::make_shared<td::SnapshotHub>(2000, 2000);
    hub->publish(td::Source::live, "main", sample_view(7));
    td::ServerOptions o; // the defaults the programs use
    o.port = 0;
    td::Server server(hub, o);
    server.start();
    const int port = server.port();
    using clock = std::chrono::steady_clock;
    const auto t0 = clock::now();
    const auto since = [&] { return std::chrono::duration<double>(clock::now() - t0).count(); };

    struct Conn {
        int fd = -1;
        bool idle = false;
        bool closed = false;
        double closed_at = 0;
        std::string got;
    };
    std::vector<Conn> conns;
    for (int i = 0; i < 50; ++i) {
        Conn c;
        c.fd = connect_from("127.0.0.1", port);
        ASSERT_GE(c.fd, 0);
        const std::string start = "GET /api/state HTTP/1.1\r\nHost: x\r\n";
        ASSERT_GT(::send(c.fd, start.data(), start.size(), MSG_NOSIGNAL), 0);
        conns.push_back(c);
    }
    for (int i = 0; i < 5; ++i) {
        Conn c;
        c.fd = connect_from("127.0.0.3", port);
        ASSERT_GE(c.fd, 0);
        c.idle = true;
        conns.push_back(c);
    }

    std::atomic<bool> stop{false};
    std::atomic<int> answered{0}, failed{0};
    std::atomic<long long> worst_ms{0};
    std::thread probe([&] {
        while (!stop) {
            const auto a = clock::now();
            const int fd = connect_from("127.0.0.2", port);
            std::string resp;
            if (fd >= 0) {
                timeval tv{3, 0};
                ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
                const std::string req = "GET /api/state HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
                (void)::send(fd, req.data(), req.size(), MSG_NOSIGNAL);
                char buf[4096];
                for (ssize_t n; (n = ::recv(fd, buf, sizeof buf, 0)) > 0;) resp.append(buf, static_cast<std::size_t>(n));
                ::close(fd);
            }
            const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(clock::now() - a).count();
            if (resp.rfind("HTTP/1.1 200", 0) == 0 && resp.find("\"iteration\":7") != std::string::npos) ++answered;
            else ++failed;
            if (ms > worst_ms) worst_ms = ms;
            std::this_thread::sleep_for(500ms);
        }
    });

    // The slow client trickles a header line a second into every open
    // connection for 9 s: without a whole-request deadline that holds a
    // worker for as long as it goes on. (The first line waits for the
    // 503s, so that none is lost to a reset from a line sent after it.)
    std::this_thread::sleep_for(500ms);
    while (since() < 9.0) {
        for (auto& c : conns) {
            if (c.closed) continue;
            c.got += drain(c.fd, c.closed);
            if (c.closed) {
                c.closed_at = since();
                continue;
            }
            if (!c.idle) (void)::send(c.fd, "X-Slow: y\r\n", 11, MSG_NOSIGNAL);
        }
        std::this_thread::sleep_for(1s);
    }
    stop = true;
    probe.join();

    int refused = 0, held = 0;
    for (auto& c : conns) {
        if (!c.closed) c.got += drain(c.fd, c.closed);
        ::close(c.fd);
        EXPECT_TRUE(c.closed) << "a " << (c.idle ? "silent" : "slow") << " connection was still open after 9 s";
        if (c.got.rfind("HTTP/1.1 503", 0) == 0) {
            ++refused;
            EXPECT_LT(c.closed_at, 2.5) << "a refused connection waited for its answer";
            continue;
        }
        // a request that never finished gets an error (cpp-httplib's 400) or nothing, never the state
        EXPECT_TRUE(c.got.empty() || c.got.rfind("HTTP/1.1 400", 0) == 0) << c.got.substr(0, 80);
        if (!c.idle) ++held;
        // closed once the 5 s to send the request whole were up, not before
        EXPECT_GE(c.closed_at, 4.0);
        EXPECT_LE(c.closed_at, 8.0); // 5 s, plus this loop's 1 s steps

    }
    EXPECT_EQ(held, o.max_connections_per_client);
    EXPECT_EQ(refused, 50 - o.max_connections_per_client);
    EXPECT_EQ(failed.load(), 0);
    EXPECT_GE(answered.load(), 12);
    EXPECT_LT(worst_ms.load(), 2000) << "the well-behaved client waited " << worst_ms.load() << " ms";
    RecordProperty("probe_answers", answered.load());
    RecordProperty("probe_worst_ms", static_cast<int>(worst_ms.load()));
    server.stop();
}
