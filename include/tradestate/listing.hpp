// tradestate — the seed's "📂 SAVED TRADING SESSIONS" listing, and its JSON twin.
#pragma once

#include <tradestate/backend.hpp>
#include <tradestate/money.hpp>
#include <tradestate/timestamp.hpp>

#include <boost/json/array.hpp>
#include <boost/json/object.hpp>

#include <string>
#include <utility>
#include <vector>

namespace tradestate {

/// "2025-09-29 11:49:10 IST" from an ISO 8601 time (as shown for companion files); the text itself if it is not one.
[[nodiscard]] inline std::string display_time(const std::string& iso) {
    try {
        return Timestamp::from_iso(iso).to_display();
    } catch (const Error&) {
        return iso;
    }
}

/// The listing the seed prints for `--show-sessions`, one block per session.
[[nodiscard]] inline std::string format_sessions(const std::vector<SessionInfo>& sessions) {
    std::string out = "📂 SAVED TRADING SESSIONS\n" + std::string(50, '=') + "\n";
    if (sessions.empty()) return out + "   (no saved sessions)\n";
    for (const auto& s : sessions) {
        out += s.session == "default" ? "📊 Main Session:\n" : "📊 Session '" + s.session + "':\n";
        out += "   • Saved: " + s.meta.saved_at + "\n";
        out += "   • Iteration: " + std::to_string(s.meta.iteration) + "\n";
        out += "   • Positions: " + std::to_string(s.meta.positions) + "\n";
        out += "   • Cash: " + Money::from_paise(s.meta.cash_paise).format() + "\n";
        if (!s.location.empty()) out += "   • Stored in: " + s.location + "\n";
        for (const auto& [name, mtime] : s.companions) {
            if (name.find("shared_portfolio_state") != std::string::npos)
                out += "📋 Portfolio State: Last updated " + display_time(mtime) + "\n";
            else if (name.find("current_state") != std::string::npos)
                out += "📈 Current State: Last updated " + display_time(mtime) + "\n";
            else
                out += "📄 " + name + ": Last updated " + display_time(mtime) + "\n";
        }
    }
    return out;
}

/// The same information as JSON (for `tradestate show-sessions --json`).
[[nodiscard]] inline boost::json::array sessions_json(const std::vector<SessionInfo>& sessions) {
    boost::json::array a;
    for (const auto& s : sessions) {
        boost::json::object o;
        o["session"] = s.session;
        o["saved_at"] = s.meta.saved_at;
        o["iteration"] = s.meta.iteration;
        o["positions"] = s.meta.positions;
        o["cash"] = boost::json::value_from(Money::from_paise(s.meta.cash_paise));
        o["cash_paise"] = s.meta.cash_paise;
        o["sequence"] = s.sequence;
        o["location"] = s.location;
        boost::json::object comp;
        for (const auto& [name, mtime] : s.companions) comp[name] = mtime;
        o["companions"] = std::move(comp);
        a.push_back(std::move(o));
    }
    return a;
}

} // namespace tradestate
