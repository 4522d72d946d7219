// tradestate — log lines stamped in IST with the zone written out.
//
// Every time a person reads is IST ("2026-12-02 19:41:51 IST"), whatever
// the host's time zone: the trading day is Indian. spdlog's own time flags
// use the host's local time, so a program builds its sink formatters here:
//
//     sink->set_formatter(tradestate::ist_log_formatter("[%*] [%l] %v"));
//
// `%*` is "2026-12-02 19:41:51.123 IST", `%~` is "19:41:51 IST"; every
// other spdlog flag keeps its meaning. Include this header only where
// loggers are built: it pulls in spdlog's pattern formatter.
#pragma once

#include <tradestate/timestamp.hpp>

#include <spdlog/details/log_msg.h>
#include <spdlog/pattern_formatter.h>

#include <chrono>
#include <cstdint>
#include <ctime>
#include <memory>
#include <string>

namespace tradestate {

namespace detail {

class IstTimeFlag final : public spdlog::custom_flag_formatter {
public:
    explicit IstTimeFlag(bool with_date) noexcept : with_date_(with_date) {}

    void format(const spdlog::details::log_msg& msg, const std::tm&, spdlog::memory_buf_t& dest) override {
        using namespace std::chrono;
        const auto us = duration_cast<microseconds>(msg.time.time_since_epoch()).count();
        // "YYYY-MM-DD HH:MM:SS IST"
        const std::string d = Timestamp::from_micros(us).to_display();
        const std::size_t clock = d.size() - 12; // start of "HH:MM:SS IST"
        const char* from = with_date_ ? d.data() : d.data() + clock;
        const char* secs_end = d.data() + d.size() - 4; // before " IST"
        dest.append(from, secs_end);
        if (with_date_) {
            const auto ms = static_cast<int>((us % 1'000'000 + 1'000'000) % 1'000'000 / 1000);
            const char frac[4] = {'.', static_cast<char>('0' + ms / 100), static_cast<char>('0' + ms / 10 % 10),
                                  static_cast<char>('0' + ms % 10)};
            dest.append(frac, frac + 4);
        }
        dest.append(secs_end, d.data() + d.size());
    }

    [[nodiscard]] std::unique_ptr<custom_flag_formatter> clone() const override {
        return std::make_unique<IstTimeFlag>(with_date_);
    }

private:
    bool with_date_;
};

} // namespace detail

/// A spdlog formatter for `pattern`, where `%*` is the IST date and time
/// with milliseconds and `%~` the IST time of day, both ending in " IST".
[[nodiscard]] inline std::unique_ptr<spdlog::formatter> ist_log_formatter(const std::string& pattern) {
    auto f = std::make_unique<spdlog::pattern_formatter>();
    f->add_flag<detail::IstTimeFlag>('*', true);
    f->add_flag<detail::IstTimeFlag>('~', false);
    f->set_pattern(pattern);
    return f;
}

} // namespace tradestate
