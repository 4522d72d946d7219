// tradestate — StatePersister<State>: save and load any state type through
// any backend.
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
#include <tradestate/config.hpp>
#include <tradestate/detail/json_reader.hpp>
#include <tradestate/detail/session_name.hpp>
#include <tradestate/plugin_loader.hpp>
#include <tradestate/timestamp.hpp>

#include <boost/json/monotonic_resource.hpp>
#include <boost/json/value_from.hpp>
#include <boost/json/value_to.hpp>

#include <spdlog/spdlog.h>

#include <algorithm>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace tradestate {

inline constexpr const char* default_session = "default";

/// A state read back, with everything worth telling the user about it.
template <class State> struct Loaded {
    State state;
    std::uint64_t sequence = 0;
    std::string source;                 ///< where it came from
    std::vector<std::string> warnings;  ///< fallbacks, missing optional fields, ...
    bool recovered = false;             ///< the newest copy was unusable; an older one was loaded
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

} // namespace detail

template <class State> class StatePersister {
public:
    /// Use an already opened backend.
    explicit StatePersister(std::shared_ptr<Backend> backend,
                            std::shared_ptr<spdlog::logger> logger = spdlog::default_logger())
        : backend_(std::move(backend)), logger_(std::move(logger)) {
        if (!backend_) throw Error(errc::invalid_argument, "StatePersister needs a backend");
    }

    /// Load the backend `cfg.persistence.backend` from the plugin directory
    /// and open it on `cfg.persistence.state_dir`.
    /// When the configured backend has no sessions but another file backend
    /// has some in the same state dir (the user switched `backend`), this
    /// throws errc::not_found naming them and the `tradestate convert`
    /// command, rather than silently starting empty.
    [[nodiscard]] static StatePersister open(const Config& cfg,
                                             std::shared_ptr<spdlog::logger> logger = spdlog::default_logger()) {
        auto backend = open_backend(cfg, logger);
        if (backend->list().empty()) refuse_if_other_backend_has_sessions(cfg, logger);
        return StatePersister(std::move(backend), logger);
    }

    /// The file backends shipped with tradestate, checked by `open`.
    static constexpr const char* file_backends[] = {"json-files", "mmap-binary", "compressed-archive"};

    static void refuse_if_other_backend_has_sessions(const Config& cfg, const std::shared_ptr<spdlog::logger>& logger) {
        PluginLoader loader(plugin_search_dirs(cfg.persistence.plugin_dir), logger);
        const auto available = loader.available();
        for (const char* other : file_backends) {
            if (other == cfg.persistence.backend ||
                std::find(available.begin(), available.end(), other) == available.end())
                continue;
            Config c = cfg;
            c.persistence.backend = other;
            std::vector<SessionInfo> found;
            try {
                found = open_backend(c, logger)->list();
            } catch (const Error&) {
                continue;
            }
            if (found.empty()) continue;
            std::string names;
            for (const auto& f : found) names += (names.empty() ? "" : ", ") + f.session;
            const auto dir = cfg.persistence.state_dir.string();
            throw Error(errc::not_found,
                        "config.toml selects backend '" + cfg.persistence.backend + "', which has no sessions in " + dir +
                            ", but backend '" + other + "' has: " + names + ". Convert them with `tradestate convert --from " +
                            other + ":" + dir + " --to " + cfg.persistence.backend + ":" + dir +
                            "`, or set persistence.backend = \"" + other + "\" again, or use another state_dir to start empty");
        }
    }

    /// The backend a config names, loaded through the plugin loader.
    [[nodiscard]] static std::shared_ptr<Backend> open_backend(const Config& cfg,
                                                              const std::shared_ptr<spdlog::logger>& logger) {
        BackendOptions o;
        o.state_dir = cfg.persistence.state_dir;
        o.fsync = cfg.persistence.fsync;
        o.keep_backups = static_cast<int>(cfg.persistence.keep_backups);
        o.max_file_bytes = cfg.persistence.max_file_bytes;
        o.settings = cfg.backend_settings_for(cfg.persistence.backend);
        o.logger = logger;
        PluginLoader loader(plugin_search_dirs(cfg.persistence.plugin_dir), logger);
        return loader.open(cfg.persistence.backend, std::move(o));
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
            throw Error(errc::schema, where + ": " + e.what());
        }
    }

    /// Save `s` as the newest state of `session`.
    void save(const State& s, const std::string& session = default_session) {
        validate_session_name(session);
        Document d = to_document(s, backend_->stores_views());
        const SaveMeta meta = detail::meta_of(d.main);
        backend_->save(session, d, meta);
    }

    /// Save an already built document (the async writer and tools use this).
    void save_document(const Document& d, const std::string& session = default_session) {
        validate_session_name(session);
        backend_->save(session, d, detail::meta_of(d.main));
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
                for (auto& x : w) rep.findings.push_back({Finding::severity::warning, r->source, x});
            }
        } catch (const Error& e) {
            rep.findings.push_back({Finding::severity::error, session, e.what()});
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
        // Backends log their own warnings through this logger; log only ours.
        std::vector<std::string> ours;
        out.state = from_document(r.doc, out.source, &ours);
        for (const auto& w : ours) logger_->warn("{}", w);
        out.warnings = std::move(r.warnings);
        out.warnings.insert(out.warnings.end(), ours.begin(), ours.end());
        if (out.recovered)
            logger_->error("session '{}': the newest saved state was unusable; loaded an older copy from {}", session,
                           out.source);
        return out;
    }

    std::shared_ptr<Backend> backend_;
    std::shared_ptr<spdlog::logger> logger_;
};

} // namespace tradestate
