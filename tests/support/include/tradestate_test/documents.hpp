// tradestate tests — documents and states to save: seed-shaped JSON,
// SessionStates, a deterministic stream of operations.
#pragma once

#include <tradestate/backend.hpp>
#include <tradestate/session_state.hpp>

#include <boost/json/object.hpp>
#include <boost/json/value.hpp>

#include <cstddef>
#include <cstdint>
#include <string>

namespace tradestate::testing {

/// A seed-shaped state document: `positions` open positions, `trades` closed
/// trades, values derived from `seed` (the same arguments give the same document).
[[nodiscard]] boost::json::value make_doc(std::size_t positions, std::size_t trades, std::uint64_t seed,
                                          std::int64_t iteration, const std::string& strategy = "straddle");
/// The metadata a host would hand over with a seed-shaped document.
[[nodiscard]] SaveMeta doc_meta(const boost::json::value& doc);
/// The document with the seed's two views.
[[nodiscard]] Document as_document(const boost::json::value& doc);
/// Save `doc` (views and meta as a host would), returning the sequence.
std::uint64_t save_doc(Backend& b, const std::string& session, const boost::json::value& doc);
/// Byte-exact comparison (member order, number spelling) on top of value equality.
[[nodiscard]] bool same_doc(const boost::json::value& a, const boost::json::value& b);
/// The seed's example file, parsed.
[[nodiscard]] boost::json::value seed_doc();

/// A SessionState with `cash` and nothing open, at a fixed time.
[[nodiscard]] SessionState fresh_state(Money cash = Money::from_rupees(1'000'000));
/// A SessionState with `n` open positions (money invariant kept).
[[nodiscard]] SessionState state_with_positions(int n, std::int64_t iteration = 7);
/// Operation number k of a deterministic stream over `s`: opens, closes,
/// cash movements and steps, each valid for the state it follows.
[[nodiscard]] boost::json::object op_number(std::uint64_t k, const SessionState& s);

} // namespace tradestate::testing
