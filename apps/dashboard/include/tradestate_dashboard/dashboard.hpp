// tradestate dashboard — the read-only web dashboard: an immutable snapshot
// published by the trading loop (SnapshotHub) and an HTTP server that
// serves it as JSON plus the embedded page (Server).
//
// The loop calls SnapshotHub::publish() once per iteration; that builds a new
// immutable Snapshot and swaps it in with one atomic store. HTTP handlers
// take the current snapshot with one atomic load and never hold a lock
// while they answer, so a slow client cannot slow the loop down.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

namespace spdlog {
class logger;
}

namespace tradestate::dashboard {

/// One open position as the page shows it. Money in exact paise.
struct PositionRow {
    std::string symbol;
    std::string strategy;
    std::int64_t quantity = 0;
    std::optional<std::int64_t> lots;
    std::int64_t entry_price_paise = 0;
    std::int64_t last_price_paise = 0;
    std::optional<std::int64_t> stop_loss_paise;
    std::optional<std::int64_t> take_profit_paise;
    std::int64_t unrealized_pnl_paise = 0;
    std::string entry_time;
};

/// One executed trade (newest first in StateView::trades).
struct TradeRow {
    std::string time;
    std::string side;   ///< "BUY" / "SELL" / whatever the runner records
    std::string symbol;
    std::string strategy;
    std::int64_t quantity = 0;
    std::int64_t price_paise = 0;
    std::optional<std::int64_t> realized_pnl_paise;
    std::string reason;
};

/// Everything the page shows about one session at one moment.
struct StateView {
    std::string timestamp;     ///< the state's own ISO 8601 time
    double epoch_seconds = 0;  ///< the same instant as Unix time (chart x axis); 0 = use the publish time
    std::string trading_mode;
    std::int64_t iteration = 0;
    std::string last_saved;    ///< ISO 8601 of the last successful save, empty if never saved
    std::int64_t initial_cash_paise = 0;
    std::int64_t cash_paise = 0;
    std::int64_t total_value_paise = 0;   ///< cash + market value of open positions
    std::int64_t realized_pnl_paise = 0;
    std::int64_t trades_count = 0;
    std::vector<PositionRow> positions;
    std::vector<TradeRow> trades;         ///< recent trades, newest first

    [[nodiscard]] std::int64_t total_pnl_paise() const { return total_value_paise - initial_cash_paise; }
    [[nodiscard]] std::int64_t unrealized_pnl_paise() const {
        std::int64_t s = 0;
        for (const auto& p : positions) s += p.unrealized_pnl_paise;
        return s;
    }
};

/// A saved session as `/api/sessions` lists it.
struct SessionRow {
    std::string session;
    std::string saved_at;
    std::int64_t iteration = 0;
    std::int64_t positions = 0;
    std::int64_t cash_paise = 0;
    std::uint64_t sequence = 0;
    std::string location;
};

/// One point of the equity/P&L chart.
struct HistoryPoint {
    double t = 0;   ///< Unix seconds
    std::int64_t iteration = 0;
    std::int64_t total_value_paise = 0;
    std::int64_t pnl_paise = 0;          ///< total (realized + unrealized) against the initial cash
    std::int64_t realized_pnl_paise = 0; ///< closed trades, net of charges
};

/// Where the data on the page comes from.
enum class Source {
    waiting, ///< nothing published yet (runner starting, or no saved state)
    live,    ///< published by the running trading loop
    saved,   ///< read back from the store by fno_dashboard
};
[[nodiscard]] const char* to_string(Source s) noexcept;

/// An immutable view of the dashboard's data; shared by all requests.
struct Snapshot {
    std::uint64_t version = 0;      ///< increments with every publish
    Source source = Source::waiting;
    std::string session;
    std::string backend;
    std::string notice;             ///< banner text (e.g. "runner offline — last saved ..."), empty for none
    std::optional<StateView> state;
    std::shared_ptr<const std::vector<HistoryPoint>> history;
    std::shared_ptr<const std::vector<SessionRow>> sessions;
    std::chrono::system_clock::time_point published_at{};
    std::chrono::steady_clock::time_point published_steady{};
    int refresh_ms = 2000;
    std::size_t history_capacity = 0;
};

/// Holds the current snapshot. One or more publishers (normally the
/// trading loop), any number of concurrent readers.
class SnapshotHub {
public:
    explicit SnapshotHub(std::size_t history_capacity = 2000, int refresh_ms = 2000);

    /// Publish a new state. Appends a chart point when the iteration or
    /// the state's time differs from the last point. Cheap: copies the view
    /// and, when a point is added, the history ring (at most capacity points).
    void publish(Source source, std::string session, std::optional<StateView> state,
                 std::string notice = {});

    /// Replace the saved-sessions list shown by `/api/sessions`.
    void set_sessions(std::vector<SessionRow> sessions);

    /// Set the backend name reported by the API.
    void set_backend(std::string backend);

    /// Replace the chart history (e.g. seeded from a store's history);
    /// keeps the newest `capacity` points.
    void reset_history(std::vector<HistoryPoint> points);

    /// The current snapshot (never null). Lock-free for readers apart from
    /// the atomic shared_ptr itself.
    [[nodiscard]] std::shared_ptr<const Snapshot> current() const;

    [[nodiscard]] std::size_t history_capacity() const noexcept { return capacity_; }

private:
    void swap_in_locked(std::shared_ptr<Snapshot> next);

    std::size_t capacity_;
    int refresh_ms_;
    std::mutex publish_mu_; // serializes publishers only; readers never take it
    std::deque<HistoryPoint> ring_;
    std::shared_ptr<const std::vector<HistoryPoint>> history_;
    std::atomic<std::shared_ptr<const Snapshot>> current_;
};

/// JSON bodies of the API, built from a snapshot (exposed for tests and
/// for tools that want the same shapes).
[[nodiscard]] std::string state_json(const Snapshot& s);
[[nodiscard]] std::string history_json(const Snapshot& s);
[[nodiscard]] std::string sessions_json(const Snapshot& s);
[[nodiscard]] std::string health_json(const Snapshot& s, std::chrono::steady_clock::time_point started);

struct ServerOptions {
    std::string bind = "127.0.0.1";
    int port = 8888;             ///< 0: any free port (see Server::port())
    int threads = 64;            ///< worker threads: bounds the connections served at once
    /// Connections one client address may hold at once; more are answered
    /// 503 at once, so one client never takes every worker.
    int max_connections_per_client = 16;
    /// A request must arrive whole within this, counted from when the
    /// server starts waiting for it (an idle keep-alive connection closes
    /// after it too): a client sending a byte at a time holds a worker no
    /// longer than this.
    std::chrono::milliseconds request_timeout{5000};
    /// A response must be taken by the client within this.
    std::chrono::milliseconds write_timeout{10000};
    std::shared_ptr<spdlog::logger> logger; ///< null: spdlog's default logger
};

/// The HTTP server. Serves only GET/HEAD; every other method gets 405,
/// unknown paths 404. Pages and scripts come from the binary itself.
class Server {
public:
    Server(std::shared_ptr<SnapshotHub> hub, ServerOptions options);
    ~Server();
    Server(const Server&) = delete;
    Server& operator=(const Server&) = delete;

    /// Bind and start serving on a background thread. Throws
    /// tradestate::Error(Errc::io) naming the address and port when it
    /// cannot listen (e.g. the port is busy).
    void start();
    /// Stop serving and join the thread (idempotent).
    void stop();

    [[nodiscard]] bool running() const;
    /// The port actually bound (useful with port 0).
    [[nodiscard]] int port() const noexcept { return port_; }
    [[nodiscard]] std::string url() const;

    /// Whether the chart library was embedded at build time.
    [[nodiscard]] static bool chart_bundled() noexcept;

private:
    struct Impl;
    std::shared_ptr<SnapshotHub> hub_;
    ServerOptions options_;
    std::unique_ptr<Impl> impl_;
    std::thread thread_;
    int port_ = 0;
};

} // namespace tradestate::dashboard
