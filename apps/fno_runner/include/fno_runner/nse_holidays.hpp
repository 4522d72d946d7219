// fno_runner — NSE trading holidays (equity derivatives segment) used by the
// simulated calendar when config.toml gives no `[instruments] holidays`.
//
// Sources (checked 2025/2026, see docs/runner.md):
// - 2025: NSE circular "Trading Holidays for the calendar year 2025"
//   (December 2024), equity / equity derivatives / SLB segments.
// - 2026: NSE circular "Trading Holidays for the calendar year 2026"
//   (December 2025), plus 15 January 2026 (Municipal Corporation election,
//   Maharashtra) declared by NSE in January 2026.
// Holidays that fall on a Saturday or Sunday are omitted: weekends are
// closed anyway.
#pragma once

#include <array>
#include <string_view>

namespace fno {

inline constexpr std::array<std::string_view, 31> default_nse_holidays = {
    // 2025
    "2025-02-26", // Mahashivratri
    "2025-03-14", // Holi
    "2025-03-31", // Id-Ul-Fitr (Ramadan Eid)
    "2025-04-10", // Shri Mahavir Jayanti
    "2025-04-14", // Dr. Baba Saheb Ambedkar Jayanti
    "2025-04-18", // Good Friday
    "2025-05-01", // Maharashtra Day
    "2025-08-15", // Independence Day
    "2025-08-27", // Ganesh Chaturthi
    "2025-10-02", // Mahatma Gandhi Jayanti / Dussehra
    "2025-10-21", // Diwali Laxmi Pujan (Muhurat trading only)
    "2025-10-22", // Diwali Balipratipada
    "2025-11-05", // Prakash Gurpurb Sri Guru Nanak Dev
    "2025-12-25", // Christmas
    // 2026
    "2026-01-15", // Municipal Corporation election, Maharashtra
    "2026-01-26", // Republic Day
    "2026-03-03", // Holi
    "2026-03-26", // Shri Ram Navami
    "2026-03-31", // Shri Mahavir Jayanti
    "2026-04-03", // Good Friday
    "2026-04-14", // Dr. Baba Saheb Ambedkar Jayanti
    "2026-05-01", // Maharashtra Day
    "2026-05-28", // Bakri Id
    "2026-06-26", // Muharram
    "2026-09-14", // Ganesh Chaturthi
    "2026-10-02", // Mahatma Gandhi Jayanti
    "2026-10-20", // Dussehra
    "2026-11-10", // Diwali Balipratipada
    "2026-11-24", // Prakash Gurpurb Sri Guru Nanak Dev
    "2026-12-25", // Christmas
    "2026-11-08", // Diwali Laxmi Pujan (a Sunday; Muhurat trading only) — kept for completeness
};

} // namespace fno
