// tradestate — the plugin interface: the only thing the host and a storage
// backend share. Everything here crosses a shared-library boundary, so any
// change to a type below must bump `plugin_abi_version` in version.hpp.
//
// A backend stores opaque *documents* (boost::json values) under session
// names. It knows nothing about portfolios: the host turns a user's state
// into a document (StatePersister) and hands it over together with a few
// metadata fields so that `list()` can answer without reading every byte.
#pragma once

#include <tradestate/error.hpp>
#include <tradestate/version.hpp>

#include <boost/json/object.hpp>
#include <boost/json/value.hpp>

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace spdlog {
class logger;
}

namespace tradestate {

/// Settings a backend is created with (from `[persistence]` in config.toml).
struct BackendOptions {
    std::filesystem::path state_dir;       ///< where file backends keep their files
    bool fsync = true;                     ///< flush to stable storage on every save
    int keep_backups = 5;                  ///< previous versions to keep, where the format has them
    std::uint64_t max_file_bytes = 1ull << 30; ///< refuse to load files larger than this
    boost::json::object settings;          ///< `[persistence.<backend>]` table, backend-specific
    std::shared_ptr<spdlog::logger> logger; ///< the host's logger; plugins log only through it
};

/// Summary of a saved document, stored beside it (the envelope).
struct SaveMeta {
    std::string saved_at;         ///< ISO 8601 timestamp of the state (not of the write)
    std::int64_t iteration = 0;   ///< monitoring-loop iteration of the state
    std::int64_t positions = 0;   ///< number of open positions
    std::int64_t cash_paise = 0;  ///< cash, in paise
    // Written by Session<State> (session.hpp); zeros for a plain StatePersister save.
    std::uint64_t lineage = 0;     ///< the session's lineage: a fresh start begins a new one
    std::uint64_t journal_id = 0;  ///< the journal this snapshot belongs to (0: none)
    std::uint64_t journal_seq = 0; ///< the last journal record the snapshot contains
};

/// What a save hands to a backend.
struct Document {
    boost::json::value main;   ///< the complete state; a load returns exactly this
    boost::json::object views; ///< derived read-only views (name -> document) that
                               ///< a backend may publish for other tools (json-files
                               ///< writes `shared_portfolio_state` and `current_state`)
};

/// One saved session, as `list()` reports it.
struct SessionInfo {
    std::string session;
    SaveMeta meta;
    std::uint64_t sequence = 0;   ///< save counter of this session (monotonic)
    std::string location;         ///< human-readable place: a path, a table, a URL without password
    /// Other files or objects that belong to the session with their
    /// last-modified time (ISO 8601), e.g. the dashboard view.
    std::vector<std::pair<std::string, std::string>> companions;
};

/// A loaded document and how it was obtained.
struct LoadResult {
    boost::json::value doc;
    SaveMeta meta;
    std::uint64_t sequence = 0;
    std::string source;                 ///< where it came from (path, slot, record)
    std::vector<std::string> warnings;  ///< e.g. "checksum failed, loaded backup 1"
    bool recovered = false;             ///< true when the newest copy was unusable
    /// With `recovered`: the unusable newest copy is a save that never
    /// completed (a record the file ends inside: a crash in the middle of an
    /// append), not damage to a finished one.
    bool interrupted = false;
    bool checked = true;                ///< false: the copy has no envelope/checksum (written by another program)
    std::vector<std::string> kept_aside; ///< damaged files this load kept for inspection (paths)
};

/// One earlier version of a session, for backends that keep history.
struct SnapshotInfo {
    std::uint64_t sequence = 0;
    SaveMeta meta;
    std::uint64_t stored_bytes = 0;
};

/// What `verify()` found.
struct Finding {
    enum class Severity { info, warning, error };
    Severity level = Severity::error;
    std::string where;   ///< file and offset / record / slot
    std::string message;
};
struct VerifyReport {
    std::string session;
    std::vector<Finding> findings;
    [[nodiscard]] bool ok() const noexcept {
        for (const auto& f : findings)
            if (f.level == Finding::Severity::error) return false;
        return true;
    }
};

/// One record of a per-trade journal kept by a backend (see journal.hpp):
/// the host makes the payload and checksum, the backend stores them as they are.
struct JournalEntry {
    std::uint64_t seq = 0;       ///< base_seq + 1, + 2, ... without gaps
    std::string payload;         ///< one compact JSON object (a journal operation)
    std::uint64_t checksum = 0;  ///< XXH3 of seq (8 bytes, little-endian) followed by the payload
};

/// A session's journal as a backend returns it.
struct StoredJournal {
    std::uint64_t id = 0;        ///< names the journal inside the snapshots it belongs to
    std::uint64_t base_seq = 0;  ///< records up to this one were dropped (a snapshot holds them)
    std::vector<JournalEntry> records; ///< the records after base_seq, in order
    std::string location;        ///< human-readable place, for messages
    std::uint64_t last_appended = 0; ///< the highest record ever appended to this journal (0: unknown);
                                     ///< records missing up to it were lost from the store
};

/// Held while a process is the single writer of a session. Dropping it
/// releases the claim.
class WriterLease {
public:
    virtual ~WriterLease() = default;
    /// False once the lease was lost (e.g. a database lease taken over):
    /// the holder must stop writing.
    [[nodiscard]] virtual bool valid() const = 0;
};

/// A storage backend. Implementations throw `tradestate::Error` with a
/// sentence naming the file/record involved; they never leave a partially
/// written state visible to `load()`.
class Backend {
public:
    virtual ~Backend() = default;

    /// The registered name, e.g. "json-files".
    [[nodiscard]] virtual std::string name() const = 0;

    /// Whether save() keeps `Document::views`. A backend that ignores them
    /// says so, and the host does not build them.
    [[nodiscard]] virtual bool stores_views() const { return true; }

    /// Store `doc` as the newest state of `session`, atomically: after a
    /// crash at any point `load()` returns either this document or the one
    /// before it. Returns the sequence number the save got (1, 2, ...,
    /// increasing per session); `meta` is stored as it is and comes back
    /// from load() and list().
    virtual std::uint64_t save(const std::string& session, const Document& doc, const SaveMeta& meta) = 0;

    /// The newest valid state of `session`, or nullopt if it was never saved.
    /// Falls back to an older valid copy (with a warning in the result)
    /// when the newest is corrupt; throws when no valid copy is left.
    [[nodiscard]] virtual std::optional<LoadResult> load(const std::string& session) = 0;

    /// Every session in the store, sorted by name.
    [[nodiscard]] virtual std::vector<SessionInfo> list() = 0;

    [[nodiscard]] virtual bool exists(const std::string& session) = 0;

    /// Delete `session`; returns false if it did not exist.
    virtual bool remove(const std::string& session) = 0;

    /// Check every stored copy of `session` without changing anything.
    [[nodiscard]] virtual VerifyReport verify(const std::string& session) = 0;

    /// Claim the single-writer role for `session`; throws Errc::locked
    /// naming the holder when another process has it.
    [[nodiscard]] virtual std::unique_ptr<WriterLease> acquire_writer(const std::string& session) = 0;

    // ---- what the session layer asks of every backend -----------------
    /// How many of the newest saves load() can fall back to, the newest
    /// included (json-files: the main file and its backups; mmap-binary: 2
    /// slots). The session keeps journal records back to the oldest of them.
    [[nodiscard]] virtual std::size_t fallback_depth() const { return 1; }

    /// Cheap check, called after every acknowledged operation: false when
    /// the newest save of `session` is no longer where load() would look
    /// (its file was deleted or replaced behind the writer's back). A
    /// backend that cannot tell says true.
    [[nodiscard]] virtual bool in_place(const std::string& /*session*/) { return true; }

    /// Give session `from`, with every copy and backup it has, the name `to`
    /// (which must not exist). The writer holds the lease of `from`.
    virtual void rename(const std::string& /*from*/, const std::string& /*to*/) {
        throw Error(Errc::unsupported, "backend '" + name() + "' cannot rename sessions");
    }

    // ---- history (optional) -------------------------------------------
    [[nodiscard]] virtual bool has_history() const { return false; }
    [[nodiscard]] virtual std::vector<SnapshotInfo> history(const std::string& /*session*/) {
        throw Error(Errc::unsupported, "backend '" + name() + "' keeps no history");
    }
    /// The snapshot `sequence` of `session`; nullopt when the backend does
    /// not hold it (never saved, or dropped by retention), as load() does
    /// for a session never saved. Conformance: HistoryListsEverySaveAndLoadAtReturnsEach.
    [[nodiscard]] virtual std::optional<LoadResult> load_at(const std::string& /*session*/,
                                                            std::uint64_t /*sequence*/) {
        throw Error(Errc::unsupported, "backend '" + name() + "' keeps no history");
    }
    // ---- per-trade journal (optional) ----------------------------------
    // A backend that keeps the journal beside its snapshots (postgres) says
    // so here; for the others the host keeps `<state_dir>/<session>.journal`.
    // Appends and compactions are fenced by the writer lease like saves.
    [[nodiscard]] virtual bool has_journal() const { return false; }
    /// The session's current journal, or nullopt when none was started.
    [[nodiscard]] virtual std::optional<StoredJournal> journal_read(const std::string& /*session*/) {
        throw Error(Errc::unsupported, "backend '" + name() + "' keeps no journal");
    }
    /// Start journal `id` after record `base_seq`. Records of a previous
    /// journal of the session that no snapshot holds are kept aside, never dropped.
    virtual void journal_start(const std::string& /*session*/, std::uint64_t /*id*/, std::uint64_t /*base_seq*/) {
        throw Error(Errc::unsupported, "backend '" + name() + "' keeps no journal");
    }
    /// Append `records` (consecutive, after the last one) to journal `id` in
    /// one atomic step. `durable`: on stable storage before returning.
    virtual void journal_append(const std::string& /*session*/, std::uint64_t /*id*/,
                                const std::vector<JournalEntry>& /*records*/, bool /*durable*/) {
        throw Error(Errc::unsupported, "backend '" + name() + "' keeps no journal");
    }
    /// Drop the records up to `through_seq` of journal `id` (a durable
    /// snapshot holds them); base_seq becomes `through_seq`.
    virtual void journal_compact(const std::string& /*session*/, std::uint64_t /*id*/, std::uint64_t /*through_seq*/) {
        throw Error(Errc::unsupported, "backend '" + name() + "' keeps no journal");
    }

    /// Move completed history out of the live store (compressed-archive:
    /// into state/archive/). Returns a one-line summary.
    virtual std::string archive(const std::string& /*session*/) {
        throw Error(Errc::unsupported, "backend '" + name() + "' has nothing to archive");
    }
};

/// Where a backend keeps a session, exported by the plugin
/// (`tradestate_plugin_storage()`, TRADESTATE_PLUGIN's third argument) so
/// that the host can ask without constructing a backend.
enum class PluginStorage : std::uint32_t {
    state_dir = 1, ///< files under BackendOptions::state_dir (the host keeps the journal beside them)
    external = 2,  ///< elsewhere (a database): the state_dir holds none of its data
};

/// Signature of the factory every plugin exports under the alias
/// `tradestate_create_backend` (see TRADESTATE_PLUGIN below).
using backend_factory = std::unique_ptr<Backend>(const BackendOptions&);

} // namespace tradestate
