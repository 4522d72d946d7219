// tradestate — StatePersister<State>: save and load any state type through
// any backend (open.hpp opens one from config.toml; Session<State> in
// session.hpp adds the journal and the recovery rules on top).
//
// State needs only Boost.JSON conversions (`value_from` / `value_to`, e.g.
// `tag_invoke` overloads beside the type). Optional hooks found by ADL:
//   boost::json::object tradestate_views(const State&)  — derived documents
//       a backend may publish beside the state (SessionState has one).
// The metadata `list()` shows (saved time, iteration, positions, cash) is
// read from the document's seed-layout fields when present: "timestamp",
// "iteration", "portfolio.positions", "portfolio.cash".
#pragma once

#include <tradestate/backend.hpp>
#include <tradestate/detail/json_reader.hpp>
#include <tradestate/detail/session_name.hpp>
#include <tradestate/error.hpp>
#include <tradestate/money.hpp>
#include <tradestate/timestamp.hpp>

#include <boost/json/monotonic_resource.hpp>
#include <boost/json/value_from.hpp>
#include <boost/json/value_to.hpp>

#include <spdlog/logger.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <concepts>
#include <cstdint>
#include <exception>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace tradestate {

inline constexpr const char* default_session = "default";

/// A state read back, with everything worth telling the user about it.
template <class State> struct Loaded {
    State state;
    std::uint64_t sequence = 0;
    SaveMeta meta;                      ///< the envelope stored with it (lineage and journal mark included)
    std::string source;                 ///< where it came from
    /// Fallbacks, missing optional fields, files of another program, ...:
    /// what the caller should show the user. load() does not log them.
    std::vector<std::string> warnings;
    bool recovered = false;             ///< the newest copy was unusable; an older one was loaded
    bool interrupted = false;           ///< ... because its save never completed (LoadResult::interrupted)
    bool checked = true;                ///< false: no envelope/checksum (written by another program)
    std::vector<std::string> kept_aside; ///< damaged files the backend kept for inspection
};

namespace detail {

template <class State>
concept has_views = requires(const State& s) {
    { tradestate_views(s) } -> std::convertible_to<boost::json::object>;
};

/// The hook may also take the storage to build the views in.
template <class State>
concept has_views_in = requires(const State& s, boost::json::storage_ptr sp) {
    { tradestate_views(s, sp) } -> std::convertible_to<boost::json::object>;
};

/// The list() metadata of a seed-layout document (zeros where absent).
[[nodiscard]] inline SaveMeta meta_of(const boost::json::value& doc) {
    SaveMeta m;
    const auto* o = doc.if_object();
    if (!o) return m;
    if (const auto* t = o->if_contains("timestamp"); t && t->is_string()) m.saved_at = std::string(t->get_string());
    if (const auto* i = o->if_contains("iteration"); i && i->is_int64()) m.iteration = i->get_int64();
    if (const auto* pf = o->if_contains("portfolio"); pf && pf->is_object()) {
        if (const auto* pos = pf->get_object().if_contains("positions"); pos && pos->is_object())
            m.positions = static_cast<std::int64_t>(pos->get_object().size());
        if (const auto* cash = pf->get_object().if_contains("cash"); cash && cash->is_number()) {
            try {
                m.cash_paise = boost::json::value_to<Money>(*cash).paise();
            } catch (const Error&) {
            }
        }
    }
    if (m.saved_at.empty()) m.saved_at = Timestamp::now().to_iso();
    return m;
}

/// tradestate 0.2 kept a snapshot's journal mark inside the document, as
/// `runner.journal = {"id": "<16 hex>", "seq": N}`. Move it into `meta` (when
/// the envelope has none) and out of the document.
inline void take_legacy_journal_mark(boost::json::value& doc, SaveMeta& meta) {
    auto* o = doc.if_object();
    if (!o) return;
    auto* run = o->if_contains("runner");
    if (!run || !run->is_object()) return;
    auto& r = run->get_object();
    const auto* j = r.if_contains("journal");
    if (!j) return;
    if (meta.journal_id == 0 && j->is_object()) {
        const auto* id = j->get_object().if_contains("id");
        const auto* seq = j->get_object().if_contains("seq");
        if (id && id->is_string() && id->get_string().size() == 16 && seq && seq->is_int64() && seq->get_int64() >= 0) {
            std::uint64_t v = 0;
            bool ok = true;
            for (char ch : id->get_string()) {
                const int d = (ch >= '0' && ch <= '9') ? ch - '0' : (ch >= 'a' && ch <= 'f') ? ch - 'a' + 10 : -1;
                if (d < 0) ok = false;
                v = (v << 4) | static_cast<std::uint64_t>(d < 0 ? 0 : d);
            }
            if (ok) {
                meta.journal_id = v;
                meta.journal_seq = static_cast<std::uint64_t>(seq->get_int64());
            }
        }
    }
    r.erase("journal");
}

} // namespace detail

template <class State> class StatePersister {
public:
    /// Use an already opened backend.
    explicit StatePersister(std::shared_ptr<Backend> backend,
                            std::shared_ptr<spdlog::logger> logger = spdlog::default_logger())
        : backend_(std::move(backend)), logger_(std::move(logger)) {
        if (!backend_) throw Error(Errc::invalid_argument, "StatePersister needs a backend");
    }

    /// The document a state is saved as. It is built in one monotonic
    /// arena that lives as long as the document: one save allocates a few
    /// large blocks instead of a node per member (conversions of the
    /// library's types allocate from the value they fill).
    /// `with_views` false skips the views (for backends that do not store them).
    [[nodiscard]] static Document to_document(const State& s, bool with_views = true) {
        boost::json::storage_ptr arena = boost::json::make_shared_resource<boost::json::monotonic_resource>();
        Document d{boost::json::value_from(s, arena), boost::json::object(arena)};
        if (!with_views) return d;
        if constexpr (detail::has_views_in<State>) d.views = tradestate_views(s, arena);
        else if constexpr (detail::has_views<State>) d.views = tradestate_views(s);
        return d;
    }

    /// Convert a document back, with errors naming `where`.
    [[nodiscard]] static State from_document(const boost::json::value& doc, const std::string& where,
                                             std::vector<std::string>* warnings = nullptr) {
        detail::load_warnings().clear();
        try {
            State s = boost::json::value_to<State>(doc);
            if (warnings)
                for (auto& w : detail::load_warnings()) warnings->push_back(where + ": " + w);
            detail::load_warnings().clear();
            return s;
        } catch (const Error& e) {
            detail::load_warnings().clear();
            throw Error(e.code(), where + ": " + e.what());
        } catch (const std::exception& e) { // conversions of user types may throw anything
            detail::load_warnings().clear();
            throw Error(Errc::schema, where + ": " + e.what());
        }
    }

    /// Save `s` as the newest state of `session`; returns the sequence the
    /// backend gave it. `envelope` carries the session layer's lineage and
    /// journal mark (Session<State> passes it; plain saves have none).
    std::uint64_t save(const State& s, const std::string& session = default_session, const SaveMeta* envelope = nullptr) {
        validate_session_name(session);
        Document d = to_document(s, backend_->stores_views());
        return backend_->save(session, d, meta_for(d.main, envelope));
    }

    /// Save an already built document (the async writer and tools use this).
    std::uint64_t save_document(const Document& d, const std::string& session = default_session,
                                const SaveMeta* envelope = nullptr) {
        validate_session_name(session);
        return backend_->save(session, d, meta_for(d.main, envelope));
    }

    /// The stored metadata of a document: what it says, plus the envelope's session fields.
    [[nodiscard]] static SaveMeta meta_for(const boost::json::value& doc, const SaveMeta* envelope) {
        SaveMeta m = detail::meta_of(doc);
        if (envelope) {
            m.lineage = envelope->lineage;
            m.journal_id = envelope->journal_id;
            m.journal_seq = envelope->journal_seq;
        }
        return m;
    }

    /// The newest valid state of `session`, or nullopt if never saved.
    [[nodiscard]] std::optional<Loaded<State>> load(const std::string& session = default_session) {
        validate_session_name(session);
        auto r = backend_->load(session);
        if (!r) return std::nullopt;
        return convert(std::move(*r), session);
    }

    /// An earlier version (backends with history).
    [[nodiscard]] std::optional<Loaded<State>> load_at(const std::string& session, std::uint64_t sequence) {
        validate_session_name(session);
        auto r = backend_->load_at(session, sequence);
        if (!r) return std::nullopt;
        return convert(std::move(*r), session);
    }

    [[nodiscard]] std::vector<SessionInfo> list() { return backend_->list(); }
    [[nodiscard]] bool exists(const std::string& session = default_session) {
        validate_session_name(session);
        return backend_->exists(session);
    }
    bool remove(const std::string& session) {
        validate_session_name(session);
        return backend_->remove(session);
    }

    /// The backend's checks plus: the newest document converts to State.
    [[nodiscard]] VerifyReport verify(const std::string& session = default_session) {
        validate_session_name(session);
        VerifyReport rep = backend_->verify(session);
        try {
            if (auto r = backend_->load(session)) {
                std::vector<std::string> w;
                (void)from_document(r->doc, r->source, &w);
                for (auto& x : w) rep.findings.push_back({Finding::Severity::warning, r->source, x});
            }
        } catch (const Error& e) {
            rep.findings.push_back({Finding::Severity::error, session, e.what()});
        }
        return rep;
    }

    [[nodiscard]] std::unique_ptr<WriterLease> acquire_writer(const std::string& session = default_session) {
        validate_session_name(session);
        return backend_->acquire_writer(session);
    }

    [[nodiscard]] Backend& backend() noexcept { return *backend_; }
    [[nodiscard]] const std::shared_ptr<Backend>& backend_ptr() const noexcept { return backend_; }
    [[nodiscard]] const std::shared_ptr<spdlog::logger>& logger() const noexcept { return logger_; }

private:
    Loaded<State> convert(LoadResult&& r, const std::string& session) {
        Loaded<State> out;
        out.sequence = r.sequence;
        out.source = r.source.empty() ? session : r.source;
        out.recovered = r.recovered;
        out.interrupted = r.recovered && r.interrupted;
        out.checked = r.checked;
        out.kept_aside = r.kept_aside;
        detail::take_legacy_journal_mark(r.doc, r.meta);
        out.meta = r.meta;
        // Nothing is logged here: the warnings (the backend's and the
        // conversion's) and `recovered` go back to the caller, which shows
        // them once (Session puts them in its ResumeReport; the programs
        // print that). Logging them here too printed each one several times.
        std::vector<std::string> ours;
        out.state = from_document(r.doc, out.source, &ours);
        out.warnings = std::move(r.warnings);
        out.warnings.insert(out.warnings.end(), ours.begin(), ours.end());
        if (out.recovered)
            logger_->debug("session '{}': loaded {} from {} ({} warning(s))", session,
                           out.interrupted ? "the copy before an interrupted save" : "an older copy", out.source,
                           out.warnings.size());
        return out;
    }

    std::shared_ptr<Backend> backend_;
    std::shared_ptr<spdlog::logger> logger_;
};

} // namespace tradestate
