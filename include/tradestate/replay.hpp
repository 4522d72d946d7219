// tradestate — replaying journaled operations over a state.
//
// A state type becomes journaled by offering, beside its type (found by
// ADL, as `tradestate_views` is):
//
//   void tradestate_apply(State& s, const boost::json::object& op, const std::string& where);
//       apply one operation (a JSON object with an "op" member); throw
//       tradestate::Error naming `where` when it cannot be applied.
//
// and optionally
//
//   std::int64_t tradestate_progress(const State& s);
//       a counter a person recognises (the runner's iteration), used to say
//       how much a loss covers ("iterations 21..40").
//
// SessionState's operations (open, close, cash, step, configure) live in
// session_state.hpp; examples/durable_session has a state type of its own.
#pragma once

#include <tradestate/error.hpp>
#include <tradestate/journal_format.hpp>

#include <boost/json/object.hpp>

#include <concepts>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <optional>
#include <string>
#include <string_view>
#include <utility>

namespace tradestate {

template <class State>
concept journaled_state = requires(State& s, const boost::json::object& op, const std::string& where) {
    tradestate_apply(s, op, where);
};

template <class State>
concept has_progress = requires(const State& s) {
    { tradestate_progress(s) } -> std::convertible_to<std::int64_t>;
};

/// The state's progress counter, or nullopt for types without one.
template <class State> [[nodiscard]] std::optional<std::int64_t> progress_of(const State& s) {
    if constexpr (has_progress<State>) return static_cast<std::int64_t>(tradestate_progress(s));
    else return std::nullopt;
}

/// Apply one operation, with every error naming `where` and the operation.
template <journaled_state State> void apply_op(State& s, const boost::json::object& op, const std::string& where) {
    try {
        tradestate_apply(s, op, where);
    } catch (const Error& e) {
        if (std::string_view(e.what()).rfind(where, 0) == 0) throw;
        std::string kind = "?";
        if (const auto* k = op.if_contains("op"); k && k->is_string()) kind = std::string(k->get_string());
        throw Error(e.code(), where + ": cannot apply \"" + kind + "\": " + e.what());
    } catch (const std::exception& e) { // user hooks may throw anything
        throw Error(Errc::schema, where + ": " + e.what());
    }
}

struct ReplayResult {
    std::size_t applied = 0;    ///< records applied
    std::size_t skipped = 0;    ///< records the state already contained (seq <= from_seq)
    std::uint64_t last_seq = 0; ///< the state's journal position afterwards
};

/// Apply the records of `contents` after `from_seq` to `s`, in order. All or
/// nothing: on error `s` is unchanged and the Error (Errc::corrupt) names the
/// record and its offset. The caller checks that the journal belongs to the
/// state (id) and starts early enough (base_seq <= from_seq).
template <journaled_state State>
ReplayResult replay_journal(State& s, const JournalContents& contents, std::uint64_t from_seq, const std::string& name) {
    ReplayResult r;
    r.last_seq = from_seq;
    bool any = false;
    for (const auto& rec : contents.records)
        if (rec.seq > from_seq) any = true;
    if (!any) {
        r.skipped = contents.records.size();
        return r;
    }
    State work = s;
    for (const auto& rec : contents.records) {
        if (rec.seq <= from_seq) {
            ++r.skipped;
            continue;
        }
        const std::string where =
            name + " record " + std::to_string(rec.seq) + (rec.offset ? " at offset " + std::to_string(rec.offset) : std::string());
        try {
            apply_op(work, rec.op, where);
        } catch (const Error& e) {
            throw Error(Errc::corrupt, e.what());
        }
        r.last_seq = rec.seq;
        ++r.applied;
    }
    s = std::move(work);
    return r;
}

} // namespace tradestate
