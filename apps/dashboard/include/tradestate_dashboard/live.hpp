// tradestate dashboard — serving a running trading loop. The loop calls
// publish(state) after every iteration (e.g. from the runner's
// on_iteration hook); the server answers from the published snapshot.
#pragma once

#include <tradestate_dashboard/dashboard.hpp>
#include <tradestate_dashboard/session_view.hpp>

#include <tradestate/config.hpp>
#include <tradestate/persister.hpp>
#include <tradestate/session_state.hpp>

#include <spdlog/spdlog.h>

#include <chrono>
#include <memory>
#include <string>

namespace tradestate::dashboard {

class LiveDashboard {
public:
    using Persister = StatePersister<SessionState>;

    /// Start serving `[dashboard]` of `cfg` for `session`. When it cannot
    /// listen (busy port, bad address) it logs an error naming the address
    /// and returns nullptr: the caller keeps trading without a dashboard.
    [[nodiscard]] static std::unique_ptr<LiveDashboard> start(const Config& cfg, std::string session,
                                                              PriceLookup price_of,
                                                              std::shared_ptr<Persister> persister,
                                                              std::shared_ptr<spdlog::logger> log) {
        if (!log) log = spdlog::default_logger();
        auto d = std::unique_ptr<LiveDashboard>(new LiveDashboard(cfg, std::move(session), std::move(price_of),
                                                                  std::move(persister), log));
        try {
            d->server_->start();
        } catch (const std::exception& e) {
            log->error("{}", e.what());
            log->error("the web dashboard is off; trading continues");
            return nullptr;
        }
        return d;
    }

    /// Publish the loop's current state (call from the loop thread). Never
    /// waits on a client; asks the store for the session list at most once
    /// a second to show when it last saved.
    void publish(const SessionState& s) {
        const auto now = std::chrono::steady_clock::now();
        if (persister_ && now - last_list_ >= std::chrono::seconds(1)) {
            last_list_ = now;
            try {
                auto list = persister_->list();
                for (const auto& i : list)
                    if (i.session == session_) last_saved_ = i.meta.saved_at;
                hub_->set_sessions(session_rows(list));
            } catch (const std::exception& e) {
                log_->warn("dashboard: listing saved sessions failed: {}", e.what());
            }
        }
        if (!seeded_) {
            // A resumed session brings its equity curve: the chart goes on
            // from where the last run left it instead of starting empty.
            hub_->reset_history(saved_history(s));
            seeded_ = true;
        }
        hub_->publish(Source::live, session_, make_view(s, price_of_, last_saved_));
    }

    [[nodiscard]] int port() const noexcept { return server_->port(); }
    [[nodiscard]] std::string url() const { return server_->url(); }
    [[nodiscard]] const std::shared_ptr<SnapshotHub>& hub() const noexcept { return hub_; }

private:
    LiveDashboard(const Config& cfg, std::string session, PriceLookup price_of, std::shared_ptr<Persister> persister,
                  std::shared_ptr<spdlog::logger> log)
        : session_(std::move(session)), price_of_(std::move(price_of)), persister_(std::move(persister)),
          log_(std::move(log)),
          hub_(std::make_shared<SnapshotHub>(2000, static_cast<int>(cfg.dashboard.refresh_ms))) {
        hub_->set_backend(cfg.persistence.backend);
        ServerOptions o;
        o.bind = cfg.dashboard.bind;
        o.port = static_cast<int>(cfg.dashboard.port);
        o.logger = log_;
        server_ = std::make_unique<Server>(hub_, o);
    }

    std::string session_;
    PriceLookup price_of_;
    std::shared_ptr<Persister> persister_;
    std::shared_ptr<spdlog::logger> log_;
    std::shared_ptr<SnapshotHub> hub_;
    std::unique_ptr<Server> server_;
    std::string last_saved_;
    bool seeded_ = false; // chart seeded from the session's saved equity curve
    std::chrono::steady_clock::time_point last_list_{};
};

} // namespace tradestate::dashboard
