// tradestate — the per-trade write-ahead journal.
//
// Every open, close and cash movement (and, from the runner, the end of each
// iteration) is appended to `<state_dir>/<session>.journal` and flushed
// according to `persistence.journal_fsync` before the trade counts as done.
// A load replays the records newer than the snapshot over it; a snapshot
// resets the journal. Layout (all integers little-endian):
//
//   header  (32 bytes): "TSJRNL01" | id u64 | base_seq u64 | xxh3(first 24 bytes) u64
//   record  (24 + n) : magic u32 "TSJ1" | n u32 | seq u64 | xxh3(seq bytes ‖ payload) u64 | payload (n bytes)
//
// The payload is one compact JSON object with an "op" member: "open",
// "close", "cash" or "step" (see journal_op). Sequence numbers start at
// base_seq + 1 and grow by one. The snapshot remembers which journal it
// belongs to and how far it already contains it in
// `SessionState::runner["journal"] = {"id": "<16 hex>", "seq": N}`, so a crash
// between a snapshot and the journal reset never applies a record twice.
//
// A torn or corrupt LAST record (a crash in the middle of an append) is
// reported and ignored; a bad record followed by valid data, a sequence gap
// or a bad header is an Error naming the file and the byte offset.
//
// A backend may keep the journal itself (Backend::has_journal(), postgres):
// the same records (seq, payload, checksum) go into its store, one
// transaction per append, and BackendJournal is the writer. Either way
// JournalWriter is what the runner appends to.
#pragma once

#include <tradestate/backend.hpp>
#include <tradestate/detail/atomic_file.hpp>
#include <tradestate/detail/checksum.hpp>
#include <tradestate/detail/json.hpp>
#include <tradestate/error.hpp>
#include <tradestate/session.hpp>

#include <boost/json/object.hpp>
#include <boost/json/value.hpp>
#include <boost/json/value_from.hpp>
#include <boost/json/value_to.hpp>

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <memory>
#include <mutex>
#include <random>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

namespace tradestate {

/// When appended records reach stable storage (like Redis's appendfsync).
enum class JournalFsync {
    always,       ///< fsync before append() returns: a trade survives power loss once acknowledged
    every_second, ///< a background thread fsyncs once a second: up to ~1 s lost on power loss
    never,        ///< left to the OS: survives a process crash (kill -9), not a power loss
};

[[nodiscard]] inline const char* to_string(JournalFsync f) noexcept {
    switch (f) {
    case JournalFsync::always: return "always";
    case JournalFsync::every_second: return "every_second";
    case JournalFsync::never: return "never";
    }
    return "always";
}

/// "always" | "every_second" | "never"; throws errc::invalid_argument otherwise.
[[nodiscard]] inline JournalFsync parse_journal_fsync(std::string_view s) {
    if (s == "always") return JournalFsync::always;
    if (s == "every_second") return JournalFsync::every_second;
    if (s == "never") return JournalFsync::never;
    throw Error(errc::invalid_argument,
                "journal_fsync must be \"always\", \"every_second\" or \"never\", found \"" + std::string(s) + "\"");
}

namespace detail {

inline constexpr char journal_magic[8] = {'T', 'S', 'J', 'R', 'N', 'L', '0', '1'};
inline constexpr std::uint32_t journal_record_magic = 0x314A5354u; // "TSJ1" little-endian
inline constexpr std::size_t journal_header_size = 32;
inline constexpr std::size_t journal_record_header_size = 24;
inline constexpr std::uint32_t journal_max_payload = 16u << 20;

inline void put_u32(std::string& out, std::uint32_t v) {
    for (int i = 0; i < 4; ++i) out.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}
inline void put_u64(std::string& out, std::uint64_t v) {
    for (int i = 0; i < 8; ++i) out.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}
[[nodiscard]] inline std::uint32_t get_u32(const char* p) noexcept {
    std::uint32_t v = 0;
    for (int i = 3; i >= 0; --i) v = (v << 8) | static_cast<unsigned char>(p[i]);
    return v;
}
[[nodiscard]] inline std::uint64_t get_u64(const char* p) noexcept {
    std::uint64_t v = 0;
    for (int i = 7; i >= 0; --i) v = (v << 8) | static_cast<unsigned char>(p[i]);
    return v;
}

[[nodiscard]] inline std::string journal_header(std::uint64_t id, std::uint64_t base_seq) {
    std::string h(journal_magic, sizeof journal_magic);
    put_u64(h, id);
    put_u64(h, base_seq);
    put_u64(h, xxh3(h));
    return h;
}

[[nodiscard]] inline std::uint64_t record_checksum(std::uint64_t seq, std::string_view payload) {
    std::string buf;
    buf.reserve(8 + payload.size());
    put_u64(buf, seq);
    buf.append(payload);
    return xxh3(buf);
}

[[nodiscard]] inline std::string journal_record(std::uint64_t seq, std::string_view payload) {
    std::string r;
    r.reserve(journal_record_header_size + payload.size());
    put_u32(r, journal_record_magic);
    put_u32(r, static_cast<std::uint32_t>(payload.size()));
    put_u64(r, seq);
    put_u64(r, record_checksum(seq, payload));
    r.append(payload);
    return r;
}

/// A fresh journal id (never 0).
[[nodiscard]] inline std::uint64_t random_journal_id() {
    std::random_device rd;
    const std::uint64_t id = (static_cast<std::uint64_t>(rd()) << 32) ^ rd() ^
                             static_cast<std::uint64_t>(std::chrono::steady_clock::now().time_since_epoch().count());
    return id == 0 ? 1 : id;
}

} // namespace detail

/// One decoded record.
struct JournalRecord {
    std::uint64_t seq = 0;
    std::uint64_t offset = 0; ///< byte offset of the record header in the file (0: kept by a backend)
    boost::json::object op;
};

/// A whole journal, decoded.
struct JournalContents {
    std::uint64_t id = 0;
    std::uint64_t base_seq = 0;
    std::vector<JournalRecord> records;
    std::uint64_t valid_bytes = 0; ///< header + intact records; anything after is a torn tail
    std::string torn_tail;         ///< empty, or a sentence describing the ignored tail
    [[nodiscard]] std::uint64_t last_seq() const noexcept { return records.empty() ? base_seq : records.back().seq; }
};

/// Decode journal bytes (`name` is used in messages). Throws errc::corrupt for
/// a bad header, a sequence gap or a bad record with valid data after it.
[[nodiscard]] inline JournalContents decode_journal(std::string_view bytes, const std::string& name) {
    using namespace detail;
    JournalContents c;
    if (bytes.size() < journal_header_size || std::memcmp(bytes.data(), journal_magic, sizeof journal_magic) != 0)
        throw Error(errc::corrupt, name + ": not a tradestate journal (bad or missing 32-byte header at offset 0); "
                                          "move it aside to start a new journal");
    if (get_u64(bytes.data() + 24) != xxh3(bytes.data(), 24))
        throw Error(errc::corrupt, name + ": journal header checksum mismatch at offset 0; move the file aside");
    c.id = get_u64(bytes.data() + 8);
    c.base_seq = get_u64(bytes.data() + 16);
    std::size_t off = journal_header_size;
    std::uint64_t expect = c.base_seq + 1;
    // Is there an intact record anywhere after `from`? (Then a bad record
    // before it is corruption, not a torn tail, whatever its length field says.)
    auto intact_record_after = [&](std::size_t from) {
        for (std::size_t i = from; i + journal_record_header_size <= bytes.size(); ++i) {
            const char* p = bytes.data() + i;
            if (get_u32(p) != journal_record_magic) continue;
            const std::uint32_t len = get_u32(p + 4);
            if (len > bytes.size() - i - journal_record_header_size) continue;
            if (record_checksum(get_u64(p + 8), bytes.substr(i + journal_record_header_size, len)) == get_u64(p + 16))
                return true;
        }
        return false;
    };
    while (off < bytes.size()) {
        const std::size_t left = bytes.size() - off;
        std::string problem;
        std::size_t end = bytes.size(); // where this (bad) record ends, if it were whole
        if (left < journal_record_header_size) {
            problem = "incomplete record header (" + std::to_string(left) + " bytes)";
        } else {
            const char* p = bytes.data() + off;
            const std::uint32_t magic = get_u32(p);
            const std::uint32_t len = get_u32(p + 4);
            const std::uint64_t seq = get_u64(p + 8);
            const std::uint64_t sum = get_u64(p + 16);
            if (magic != journal_record_magic) problem = "bad record magic";
            else if (len > journal_max_payload) problem = "record length " + std::to_string(len) + " over the limit";
            else if (len > left - journal_record_header_size) problem = "record cut short (needs " + std::to_string(len) +
                                                                       " payload bytes, " +
                                                                       std::to_string(left - journal_record_header_size) +
                                                                       " present)";
            else {
                end = off + journal_record_header_size + len;
                const std::string_view payload = bytes.substr(off + journal_record_header_size, len);
                if (record_checksum(seq, payload) != sum) problem = "checksum mismatch";
                else {
                    if (seq != expect)
                        throw Error(errc::corrupt, name + ": record at offset " + std::to_string(off) + " has sequence " +
                                                       std::to_string(seq) + ", expected " + std::to_string(expect) +
                                                       " (records missing or reordered)");
                    boost::json::value v;
                    try {
                        v = parse(payload, name + "@" + std::to_string(off));
                    } catch (const Error& e) {
                        throw Error(errc::corrupt, name + ": record at offset " + std::to_string(off) +
                                                       " has a valid checksum but unreadable JSON: " + e.what());
                    }
                    if (!v.is_object() || !v.get_object().contains("op"))
                        throw Error(errc::corrupt, name + ": record at offset " + std::to_string(off) +
                                                       " is not a journal operation (JSON object with \"op\")");
                    c.records.push_back({seq, off, std::move(v.get_object())});
                    ++expect;
                    off = end;
                    continue;
                }
            }
        }
        // A bad record: a torn tail if no intact record follows it.
        if (!intact_record_after(off + 1)) {
            c.torn_tail = name + ": ignored a torn last record at offset " + std::to_string(off) + " (" + problem + ", " +
                          std::to_string(bytes.size() - off) +
                          " bytes): the process stopped in the middle of an append; that operation was never acknowledged";
            break;
        }
        throw Error(errc::corrupt, name + ": corrupt journal record at offset " + std::to_string(off) + " (" + problem +
                                       ") followed by intact records; keep the file for inspection and restore the state from the "
                                       "snapshot (tradestate verify)");
    }
    c.valid_bytes = c.torn_tail.empty() ? bytes.size() : off;
    return c;
}

/// Read and decode the journal at `path` (errc::not_found if absent).
[[nodiscard]] inline JournalContents read_journal(const std::filesystem::path& path,
                                                  std::uint64_t max_bytes = 1ull << 30) {
    return decode_journal(detail::read_file(path, max_bytes), path.string());
}

/// Check and decode a journal a backend returned (Backend::journal_read):
/// every record's checksum, the sequence and the JSON. A database has no
/// torn tail, so any bad record is an Error naming the location and record.
[[nodiscard]] inline JournalContents decode_journal(const StoredJournal& j) {
    JournalContents c;
    c.id = j.id;
    c.base_seq = j.base_seq;
    std::uint64_t expect = j.base_seq + 1;
    for (const auto& r : j.records) {
        const std::string where = j.location + " journal record " + std::to_string(r.seq);
        if (r.seq != expect)
            throw Error(errc::corrupt, where + ": expected record " + std::to_string(expect) +
                                           " (records missing or reordered)");
        if (detail::record_checksum(r.seq, r.payload) != r.checksum)
            throw Error(errc::corrupt, where + ": checksum mismatch (the stored payload was changed); restore the state "
                                               "from the snapshot (tradestate verify)");
        boost::json::value v;
        try {
            v = detail::parse(r.payload, where);
        } catch (const Error& e) {
            throw Error(errc::corrupt, where + " has a valid checksum but unreadable JSON: " + e.what());
        }
        if (!v.is_object() || !v.get_object().contains("op"))
            throw Error(errc::corrupt, where + " is not a journal operation (JSON object with \"op\")");
        c.records.push_back({r.seq, 0, std::move(v.get_object())});
        ++expect;
    }
    return c;
}

// ------------------------------------------------------------- operations

/// Builders for the journal's operations (compact JSON objects).
namespace journal_op {

/// A position opened, paying its cost and `charges`.
[[nodiscard]] inline boost::json::object open(const Position& p, Money charges) {
    boost::json::object o;
    o["op"] = "open";
    o["symbol"] = p.symbol;
    o["position"] = boost::json::value_from(p);
    o["charges_paise"] = charges.paise();
    return o;
}

/// A position closed.
[[nodiscard]] inline boost::json::object close(const std::string& symbol, Money exit_price, Timestamp exit_time,
                                               const std::string& reason, Money charges) {
    boost::json::object o;
    o["op"] = "close";
    o["symbol"] = symbol;
    o["exit_price_paise"] = exit_price.paise();
    o["exit_time"] = exit_time.to_iso();
    o["reason"] = reason;
    o["charges_paise"] = charges.paise();
    return o;
}

/// Money added to (positive) or taken from (negative) the account: changes
/// both cash and initial_cash, so the money invariant still holds.
[[nodiscard]] inline boost::json::object cash(Money amount, const std::string& reason) {
    boost::json::object o;
    o["op"] = "cash";
    o["amount_paise"] = amount.paise();
    o["reason"] = reason;
    return o;
}

/// The end of one iteration: counter, timestamp, the runner's data and the
/// market analysis, so that replay restores the whole session exactly.
[[nodiscard]] inline boost::json::object step(const SessionState& s) {
    boost::json::object o;
    o["op"] = "step";
    o["iteration"] = s.iteration;
    o["timestamp"] = s.timestamp.to_iso();
    boost::json::object runner = s.runner;
    runner.erase("journal");
    o["runner"] = std::move(runner);
    if (!s.market_analysis.is_null()) o["market_analysis"] = s.market_analysis;
    return o;
}

} // namespace journal_op

/// Apply one operation to `s` (`where` names the record in errors).
inline void apply_journal_op(SessionState& s, const boost::json::object& op, const std::string& where) {
    auto money = [&](const char* key) {
        const auto* v = op.if_contains(key);
        if (!v || !v->is_int64()) throw Error(errc::schema, where + ": \"" + key + "\" must be an integer (paise)");
        return Money::from_paise(v->get_int64());
    };
    auto text = [&](const char* key) {
        const auto* v = op.if_contains(key);
        if (!v || !v->is_string()) throw Error(errc::schema, where + ": \"" + key + "\" must be a string");
        return std::string(v->get_string());
    };
    const std::string kind = text("op");
    try {
        if (kind == "open") {
            const std::string sym = text("symbol");
            const auto* pv = op.if_contains("position");
            if (!pv) throw Error(errc::schema, where + ": \"position\" is missing");
            Position p = Position::from_json(*pv, where + ".position", sym);
            s.portfolio.open(std::move(p), money("charges_paise"));
        } else if (kind == "close") {
            const auto t = Timestamp::from_iso(text("exit_time"));
            (void)s.portfolio.close(text("symbol"), money("exit_price_paise"), t, text("reason"),
                                    money("charges_paise"));
        } else if (kind == "cash") {
            const Money amount = money("amount_paise");
            (void)text("reason");
            if (s.portfolio.cash() + amount < Money{})
                throw Error(errc::invalid_argument, "a withdrawal of " + (Money{} - amount).format() + " exceeds cash " +
                                                        s.portfolio.cash().format());
            boost::json::value pv = boost::json::value_from(s.portfolio);
            auto& o = pv.get_object();
            o["initial_cash"] = boost::json::value_from(s.portfolio.initial_cash() + amount);
            o["cash"] = boost::json::value_from(s.portfolio.cash() + amount);
            s.portfolio = Portfolio::from_json(pv, "$.portfolio");
        } else if (kind == "step") {
            const auto* it = op.if_contains("iteration");
            if (!it || !it->is_int64() || it->get_int64() < 0)
                throw Error(errc::schema, where + ": \"iteration\" must be a non-negative integer");
            const auto* run = op.if_contains("runner");
            if (!run || !run->is_object()) throw Error(errc::schema, where + ": \"runner\" must be an object");
            const auto ts = Timestamp::from_iso(text("timestamp"));
            boost::json::object runner = run->get_object();
            if (const auto* j = s.runner.if_contains("journal")) runner["journal"] = *j;
            s.iteration = it->get_int64();
            s.timestamp = ts;
            s.runner = std::move(runner);
            if (const auto* m = op.if_contains("market_analysis")) s.market_analysis = *m;
        } else {
            throw Error(errc::schema, where + ": unknown operation \"" + kind + "\"");
        }
    } catch (const Error& e) {
        if (std::string_view(e.what()).rfind(where, 0) == 0) throw;
        throw Error(e.code(), where + ": cannot apply \"" + kind + "\": " + e.what());
    }
}

/// Which journal a snapshot belongs to and the last record it contains.
struct JournalMark {
    std::uint64_t id = 0;
    std::uint64_t seq = 0;
};

[[nodiscard]] inline std::optional<JournalMark> journal_mark(const SessionState& s) {
    const auto* j = s.runner.if_contains("journal");
    if (!j || !j->is_object()) return std::nullopt;
    const auto* id = j->get_object().if_contains("id");
    const auto* seq = j->get_object().if_contains("seq");
    if (!id || !id->is_string() || !seq || !seq->is_int64() || seq->get_int64() < 0) return std::nullopt;
    JournalMark m;
    const std::string_view hex = id->get_string();
    if (hex.size() != 16) return std::nullopt;
    for (char ch : hex) {
        int d = (ch >= '0' && ch <= '9') ? ch - '0' : (ch >= 'a' && ch <= 'f') ? ch - 'a' + 10 : -1;
        if (d < 0) return std::nullopt;
        m.id = (m.id << 4) | static_cast<std::uint64_t>(d);
    }
    m.seq = static_cast<std::uint64_t>(seq->get_int64());
    return m;
}

inline void set_journal_mark(SessionState& s, JournalMark m) {
    boost::json::object j;
    j["id"] = detail::hex64(m.id);
    j["seq"] = static_cast<std::int64_t>(m.seq);
    s.runner["journal"] = std::move(j);
}

struct ReplayResult {
    bool replayed = false;        ///< the journal belonged to this state and was applied
    std::size_t applied = 0;      ///< records applied
    std::size_t skipped = 0;      ///< records the snapshot already contained
    std::uint64_t last_seq = 0;   ///< the state's journal position afterwards
    std::vector<std::string> warnings;
};

/// Replay the records of `contents` that `s` does not contain yet. All or
/// nothing: on error `s` is unchanged and the Error names the record's offset.
inline ReplayResult replay_journal(SessionState& s, const JournalContents& contents, const std::string& name) {
    ReplayResult r;
    if (!contents.torn_tail.empty()) r.warnings.push_back(contents.torn_tail);
    const auto mark = journal_mark(s);
    if (!mark || mark->id != contents.id) {
        r.warnings.push_back(name + ": belongs to another session or an older start (journal id " +
                             detail::hex64(contents.id) + ", the state expects " +
                             (mark ? detail::hex64(mark->id) : std::string("none")) + "): not replayed");
        return r;
    }
    if (mark->seq < contents.base_seq)
        throw Error(errc::corrupt, name + ": the journal starts after record " + std::to_string(contents.base_seq) +
                                       " but the state only contains records up to " + std::to_string(mark->seq) +
                                       ": records " + std::to_string(mark->seq + 1) + ".." +
                                       std::to_string(contents.base_seq) + " are missing (was an older snapshot restored?)");
    SessionState work = s;
    std::uint64_t last = mark->seq;
    for (const auto& rec : contents.records) {
        if (rec.seq <= mark->seq) {
            ++r.skipped;
            continue;
        }
        try {
            apply_journal_op(work, rec.op, name + " record " + std::to_string(rec.seq) +
                                               (rec.offset ? " at offset " + std::to_string(rec.offset) : std::string()));
        } catch (const Error& e) {
            throw Error(errc::corrupt, e.what());
        }
        last = rec.seq;
        ++r.applied;
    }
    set_journal_mark(work, {contents.id, last});
    s = std::move(work);
    r.replayed = true;
    r.last_seq = last;
    return r;
}

/// Read `path` (if it exists) and replay it over `s`.
inline ReplayResult replay_journal(SessionState& s, const std::filesystem::path& path,
                                   std::uint64_t max_bytes = 1ull << 30) {
    std::error_code ec;
    if (!std::filesystem::exists(path, ec)) return {};
    return replay_journal(s, read_journal(path, max_bytes), path.string());
}

// ----------------------------------------------------------------- writer

/// The appending side of a journal, wherever it is kept. One writer per
/// journal: the caller holds the session's writer lease. Thread-safe.
class JournalWriter {
public:
    virtual ~JournalWriter() = default;
    /// Names the journal inside the snapshots it belongs to.
    [[nodiscard]] virtual std::uint64_t id() const = 0;
    /// Sequence number of the last record appended (base_seq when empty).
    [[nodiscard]] virtual std::uint64_t last_seq() const = 0;
    /// Where the journal is kept (a path, a database table), for messages.
    [[nodiscard]] virtual std::string where() const = 0;
    /// Append operations with one write (and one flush, per the policy);
    /// returns the last sequence number once they are written.
    virtual std::uint64_t append(const std::vector<boost::json::object>& ops) = 0;
    std::uint64_t append(const boost::json::object& op) { return append(std::vector<boost::json::object>{op}); }
    /// After a durable snapshot holding the records up to `through_seq`:
    /// drop them, keep the newer ones.
    virtual void compact(std::uint64_t through_seq) = 0;
    /// After a durable snapshot holding every record: start empty.
    virtual void reset() = 0;
    /// Flush to stable storage now, whatever the policy.
    virtual void sync() = 0;
};

/// A journal file: `<state_dir>/<session>.journal` (the layout above).
class Journal final : public JournalWriter {
public:
    struct Stats {
        std::uint64_t appends = 0;
        std::uint64_t fsyncs = 0;
    };

    /// Start a new, empty journal at `path` (replaces the file atomically).
    /// `id` names it inside the snapshots it belongs to; 0 picks a random
    /// one. A caller that wants reproducible state files passes an id derived
    /// from the state the journal starts from (the runner does).
    [[nodiscard]] static std::unique_ptr<Journal> create(const std::filesystem::path& path, JournalFsync policy,
                                                         std::uint64_t base_seq = 0, std::uint64_t id = 0) {
        if (id == 0) id = detail::random_journal_id();
        detail::write_file_atomic(path, detail::journal_header(id, base_seq), true);
        return std::unique_ptr<Journal>(new Journal(path, policy, id, base_seq));
    }

    /// Continue the journal at `path`: a torn tail is cut off (it was never acknowledged).
    [[nodiscard]] static std::unique_ptr<Journal> open(const std::filesystem::path& path, JournalFsync policy,
                                                       std::uint64_t max_bytes = 1ull << 30) {
        auto c = read_journal(path, max_bytes);
        if (!c.torn_tail.empty()) {
            detail::unique_fd fd(::open(path.c_str(), O_WRONLY | O_CLOEXEC));
            if (!fd) detail::throw_io("open journal", path, errno);
            if (::ftruncate(fd.get(), static_cast<off_t>(c.valid_bytes)) != 0 || ::fsync(fd.get()) != 0)
                detail::throw_io("cut the torn tail of journal", path, errno);
        }
        return std::unique_ptr<Journal>(new Journal(path, policy, c.id, c.last_seq()));
    }

    ~Journal() {
        {
            std::lock_guard lk(m_);
            stop_ = true;
        }
        cv_.notify_all();
        if (flusher_.joinable()) flusher_.join();
        if (fd_ && dirty_ && policy_ != JournalFsync::never) (void)::fsync(fd_.get());
    }
    Journal(const Journal&) = delete;
    Journal& operator=(const Journal&) = delete;

    [[nodiscard]] std::uint64_t id() const noexcept override { return id_; }
    [[nodiscard]] const std::filesystem::path& path() const noexcept { return path_; }
    [[nodiscard]] std::string where() const override { return path_.string(); }
    [[nodiscard]] JournalFsync policy() const noexcept { return policy_; }
    [[nodiscard]] std::uint64_t last_seq() const override {
        std::lock_guard lk(m_);
        return last_seq_;
    }
    [[nodiscard]] Stats stats() const {
        std::lock_guard lk(m_);
        return stats_;
    }

    using JournalWriter::append;

    /// Append several operations with one write (and one fsync, with
    /// `always`). Returns the last sequence number.
    std::uint64_t append(const std::vector<boost::json::object>& ops) override {
        std::lock_guard lk(m_);
        if (failed_)
            throw Error(errc::io, path_.string() + ": the journal had a write or fsync error earlier (" + failure_ +
                                      "); it takes no more records until the next snapshot starts a new one");
        std::string buf;
        std::uint64_t seq = last_seq_;
        for (const auto& op : ops) {
            const std::string payload = detail::print(op, {.indent = -1});
            if (payload.size() > detail::journal_max_payload)
                throw Error(errc::invalid_argument, path_.string() + ": a journal record of " +
                                                        std::to_string(payload.size()) + " bytes is over the 16 MiB limit");
            buf += detail::journal_record(++seq, payload);
        }
        if (buf.empty()) return last_seq_;
        const off_t before = ::lseek(fd_.get(), 0, SEEK_END);
        if (int e = detail::write_all(fd_.get(), buf.data(), buf.size())) {
            // Take a partial record back out so the next append does not follow garbage.
            if (before >= 0) (void)::ftruncate(fd_.get(), before);
            fail("write: " + detail::errno_text(e));
            detail::throw_io("append to journal", path_, e);
        }
        if (policy_ == JournalFsync::always) {
            if (::fdatasync(fd_.get()) != 0) {
                const int e = errno;
                fail("fsync: " + detail::errno_text(e)); // never retried on the same file
                detail::throw_io("fsync journal", path_, e);
            }
            ++stats_.fsyncs;
        } else {
            dirty_ = true;
        }
        last_seq_ = seq;
        stats_.appends += ops.size();
        return seq;
    }

    /// Flush to stable storage now (whatever the policy).
    void sync() override {
        std::lock_guard lk(m_);
        sync_locked();
    }

    /// After a durable snapshot that contains every record up to `last_seq()`:
    /// replace the file by an empty journal (same id, base = last_seq) atomically.
    void reset() override {
        std::lock_guard lk(m_);
        detail::write_file_atomic(path_, detail::journal_header(id_, last_seq_), true);
        fd_ = open_append(path_);
        dirty_ = false;
        failed_ = false;
        failure_.clear();
    }

    /// After a durable snapshot that contains the records up to `through_seq`
    /// (taken while appends went on, e.g. by a background saver): drop those
    /// records and keep the newer ones, replacing the file atomically.
    void compact(std::uint64_t through_seq) override {
        std::lock_guard lk(m_);
        if (through_seq > last_seq_)
            throw Error(errc::invalid_argument, path_.string() + ": cannot compact through record " +
                                                    std::to_string(through_seq) + ", the last one is " +
                                                    std::to_string(last_seq_));
        if (failed_) sync_failed_reset_locked(through_seq);
        const std::string bytes = detail::read_file(path_);
        const auto c = decode_journal(bytes, path_.string());
        if (through_seq <= c.base_seq) return;
        std::string out = detail::journal_header(id_, through_seq);
        for (const auto& r : c.records)
            if (r.seq > through_seq) {
                out.append(bytes, static_cast<std::size_t>(r.offset), static_cast<std::size_t>(c.valid_bytes - r.offset));
                break;
            }
        detail::write_file_atomic(path_, out, true);
        fd_ = open_append(path_);
        dirty_ = false;
    }

private:
    // After a write/fsync error the file's page-cache contents cannot be
    // trusted; a snapshot through `seq` lets a fresh file take over.
    void sync_failed_reset_locked(std::uint64_t seq) {
        if (seq != last_seq_)
            throw Error(errc::io, path_.string() + ": the journal had an error (" + failure_ +
                                      ") and the snapshot does not contain its last records; not compacting");
        detail::write_file_atomic(path_, detail::journal_header(id_, last_seq_), true);
        fd_ = open_append(path_);
        dirty_ = false;
        failed_ = false;
        failure_.clear();
    }

    Journal(std::filesystem::path path, JournalFsync policy, std::uint64_t id, std::uint64_t last)
        : path_(std::move(path)), policy_(policy), id_(id), last_seq_(last), fd_(open_append(path_)) {
        if (policy_ == JournalFsync::every_second) flusher_ = std::thread([this] { flush_loop(); });
    }

    static detail::unique_fd open_append(const std::filesystem::path& p) {
        detail::unique_fd fd(::open(p.c_str(), O_WRONLY | O_APPEND | O_CLOEXEC));
        if (!fd) detail::throw_io("open journal", p, errno);
        return fd;
    }

    void fail(std::string why) {
        failed_ = true;
        failure_ = std::move(why);
    }

    void sync_locked() {
        if (!dirty_ || failed_) return;
        if (::fdatasync(fd_.get()) != 0) {
            const int e = errno;
            fail("fsync: " + detail::errno_text(e));
            detail::throw_io("fsync journal", path_, e);
        }
        dirty_ = false;
        ++stats_.fsyncs;
    }

    void flush_loop() {
        std::unique_lock lk(m_);
        while (!stop_) {
            cv_.wait_for(lk, std::chrono::seconds(1), [this] { return stop_; });
            if (stop_) break;
            try {
                sync_locked();
            } catch (const Error&) {
                // Recorded in failed_: the next append reports it.
            }
        }
    }

    std::filesystem::path path_;
    JournalFsync policy_;
    std::uint64_t id_;
    mutable std::mutex m_;
    std::condition_variable cv_;
    std::uint64_t last_seq_;
    detail::unique_fd fd_;
    bool dirty_ = false;
    bool failed_ = false;
    bool stop_ = false;
    std::string failure_;
    Stats stats_;
    std::thread flusher_;
};

/// A journal kept by the backend itself (Backend::has_journal(), e.g.
/// postgres): each append is one transaction, fenced by the writer lease.
/// The policy maps to the backend's durability: `always` waits for stable
/// storage, `every_second` and `never` let the server flush on its own
/// (PostgreSQL's asynchronous commit, flushed within a second).
class BackendJournal final : public JournalWriter {
public:
    /// Start journal `id` (0 picks a random one) for `session` after record `base_seq`.
    [[nodiscard]] static std::unique_ptr<BackendJournal> create(Backend& backend, const std::string& session,
                                                                JournalFsync policy, std::uint64_t base_seq = 0,
                                                                std::uint64_t id = 0) {
        if (id == 0) id = detail::random_journal_id();
        backend.journal_start(session, id, base_seq);
        return std::unique_ptr<BackendJournal>(new BackendJournal(backend, session, policy, id, base_seq));
    }

    /// Continue the session's current journal (errc::not_found if none was started).
    [[nodiscard]] static std::unique_ptr<BackendJournal> open(Backend& backend, const std::string& session,
                                                              JournalFsync policy) {
        auto j = backend.journal_read(session);
        if (!j) throw Error(errc::not_found, "session '" + session + "' has no journal in " + backend.name());
        const auto c = decode_journal(*j);
        return std::unique_ptr<BackendJournal>(new BackendJournal(backend, session, policy, c.id, c.last_seq()));
    }

    [[nodiscard]] std::uint64_t id() const override { return id_; }
    [[nodiscard]] std::uint64_t last_seq() const override {
        std::lock_guard lk(m_);
        return last_seq_;
    }
    [[nodiscard]] std::string where() const override {
        return "the journal of session '" + session_ + "' in " + backend_.name();
    }

    using JournalWriter::append;
    std::uint64_t append(const std::vector<boost::json::object>& ops) override {
        std::lock_guard lk(m_);
        std::vector<JournalEntry> recs;
        recs.reserve(ops.size());
        std::uint64_t seq = last_seq_;
        for (const auto& op : ops) {
            JournalEntry e;
            e.seq = ++seq;
            e.payload = detail::print(op, {.indent = -1});
            if (e.payload.size() > detail::journal_max_payload)
                throw Error(errc::invalid_argument, where() + ": a journal record of " + std::to_string(e.payload.size()) +
                                                        " bytes is over the 16 MiB limit");
            e.checksum = detail::record_checksum(e.seq, e.payload);
            recs.push_back(std::move(e));
        }
        if (recs.empty()) return last_seq_;
        backend_.journal_append(session_, id_, recs, policy_ == JournalFsync::always);
        last_seq_ = seq;
        return seq;
    }

    void compact(std::uint64_t through_seq) override {
        std::lock_guard lk(m_);
        if (through_seq > last_seq_)
            throw Error(errc::invalid_argument, where() + ": cannot compact through record " +
                                                    std::to_string(through_seq) + ", the last one is " +
                                                    std::to_string(last_seq_));
        backend_.journal_compact(session_, id_, through_seq);
    }

    void reset() override {
        std::lock_guard lk(m_);
        backend_.journal_compact(session_, id_, last_seq_);
    }

    void sync() override {} // every append is its own committed transaction

private:
    BackendJournal(Backend& backend, std::string session, JournalFsync policy, std::uint64_t id, std::uint64_t last)
        : backend_(backend), session_(std::move(session)), policy_(policy), id_(id), last_seq_(last) {}

    Backend& backend_;
    std::string session_;
    JournalFsync policy_;
    std::uint64_t id_;
    mutable std::mutex m_;
    std::uint64_t last_seq_;
};

} // namespace tradestate
