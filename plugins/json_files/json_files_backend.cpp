// tradestate — the "json-files" backend plugin.
//
// Stores each session as the seed's three JSON files (fno_system_state.json,
// shared_portfolio_state.json, current_state.json), every file replaced
// atomically, with rotating hard-linked backups of the main file and an
// `_tradestate` member (sequence, metadata, XXH3 checksum) appended as the
// last member of the main document. The format is described in
// docs/format-json-files.md.

#include <tradestate/backend.hpp>
#include <tradestate/detail/atomic_file.hpp>
#include <tradestate/detail/checksum.hpp>
#include <tradestate/detail/file_lock.hpp>
#include <tradestate/detail/json.hpp>
#include <tradestate/detail/session_name.hpp>
#include <tradestate/plugin.hpp>
#include <tradestate/timestamp.hpp>

#include <boost/json.hpp>

#include <spdlog/logger.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cmath>
#include <csignal>
#include <cstdio>
#include <ctime>
#include <filesystem>
#include <limits>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <system_error>
#include <vector>

#include <sys/stat.h>
#include <unistd.h>

namespace tradestate::json_files {
namespace {

namespace fs = std::filesystem;
namespace json = boost::json;

constexpr const char* backend_name = "json-files";
constexpr const char* main_file_name = "fno_system_state.json";
constexpr const char* main_stem = "fno_system_state";
constexpr const char* format_name = "tradestate-json-files";
constexpr const char* meta_key = "_tradestate";
constexpr std::int64_t current_schema = 2; // 2: lineage and journal mark in _tradestate (tradestate 0.3)
constexpr const char* default_session = "default";
/// Views every seed-compatible session may have, whether or not `_tradestate.views` names them.
const std::vector<std::string> seed_views = {"shared_portfolio_state", "current_state"};

// ------------------------------------------------------------------ helpers

std::string iso_mtime(const fs::path& p) {
    struct stat st {};
    if (::stat(p.c_str(), &st) != 0) return {};
    return tradestate::Timestamp::from_timespec(st.st_mtim).to_iso();
}

bool path_exists(const fs::path& p) {
    std::error_code ec;
    return fs::exists(p, ec);
}

/// `<stem>.<N>.json` (`fno_system_state.<N>.json`) -> N.
std::optional<std::uint64_t> backup_sequence(const std::string& file, const std::string& stem) {
    const std::string prefix = stem + ".", suffix = ".json";
    if (file.size() <= prefix.size() + suffix.size() || file.compare(0, prefix.size(), prefix) != 0 ||
        file.compare(file.size() - suffix.size(), suffix.size(), suffix) != 0)
        return std::nullopt;
    const std::string digits = file.substr(prefix.size(), file.size() - prefix.size() - suffix.size());
    if (digits.empty() || digits.size() > 19 ||
        !std::all_of(digits.begin(), digits.end(), [](char c) { return c >= '0' && c <= '9'; }))
        return std::nullopt;
    std::uint64_t v = 0;
    std::from_chars(digits.data(), digits.data() + digits.size(), v);
    return v;
}

std::string backup_file_name(const std::string& stem, std::uint64_t seq) {
    return stem + "." + std::to_string(seq) + ".json";
}

/// Where a session's files are.
///  - `default`: the seed's files in the state dir (fno_system_state.json,
///    its views, backups/fno_system_state.<N>.json);
///  - a name ending in `.json`, the seed's custom file name
///    (`save_system_state("my_session.json")`): that file in the state dir,
///    its backups as backups/my_session.<N>.json, no views (the state dir's
///    view files are the default session's);
///  - any other name: the seed's files in sessions/<name>/.
struct Place {
    fs::path dir;     ///< the main file's directory: views, lock, kept-aside copies
    fs::path main;    ///< the main file
    fs::path backups; ///< the backup directory
    std::string stem; ///< backups are <stem>.<N>.json
    bool views = true;
};

[[nodiscard]] bool names_a_file(const std::string& session) {
    return session.size() > 5 && session.ends_with(".json");
}

/// Backups of a session, newest (highest sequence) first.
std::vector<std::pair<std::uint64_t, fs::path>> list_backups(const Place& pl) {
    std::vector<std::pair<std::uint64_t, fs::path>> out;
    std::error_code ec;
    for (auto it = fs::directory_iterator(pl.backups, ec); !ec && it != fs::directory_iterator(); it.increment(ec)) {
        if (auto s = backup_sequence(it->path().filename().string(), pl.stem)) out.emplace_back(*s, it->path());
    }
    std::sort(out.begin(), out.end(), [](const auto& a, const auto& b) { return a.first > b.first; });
    return out;
}

std::optional<std::int64_t> as_int(const json::value& v) {
    if (v.is_int64()) return v.get_int64();
    if (v.is_uint64() && v.get_uint64() <= static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max()))
        return static_cast<std::int64_t>(v.get_uint64());
    if (v.is_double()) {
        const double d = v.get_double();
        if (std::isfinite(d) && std::trunc(d) == d && std::fabs(d) < 9.0e18) return static_cast<std::int64_t>(d);
    }
    return std::nullopt;
}

/// Rupees (a JSON number from another program) to paise, rounded to the
/// nearest paisa. Only used to *describe* a file that carries no metadata.
std::optional<std::int64_t> rupees_to_paise(const json::value& v) {
    if (v.is_int64() && std::llabs(v.get_int64()) < std::numeric_limits<std::int64_t>::max() / 100)
        return v.get_int64() * 100;
    if (v.is_double()) {
        const long double p = static_cast<long double>(v.get_double()) * 100.0L;
        if (std::isfinite(p) && std::fabs(p) < 9.0e18L) return static_cast<std::int64_t>(std::llround(p));
    }
    return std::nullopt;
}

/// Meta of a document that has no `_tradestate` member (seed / hand-written).
SaveMeta derive_meta(const json::object& doc) {
    SaveMeta m;
    if (auto it = doc.find("timestamp"); it != doc.end() && it->value().is_string())
        m.saved_at = std::string(it->value().get_string());
    if (auto it = doc.find("iteration"); it != doc.end())
        if (auto i = as_int(it->value())) m.iteration = *i;
    if (auto pit = doc.find("portfolio"); pit != doc.end() && pit->value().is_object()) {
        const auto& pf = pit->value().get_object();
        if (auto it = pf.find("positions"); it != pf.end()) {
            if (it->value().is_object()) m.positions = static_cast<std::int64_t>(it->value().get_object().size());
            else if (it->value().is_array()) m.positions = static_cast<std::int64_t>(it->value().get_array().size());
        }
        if (auto it = pf.find("cash"); it != pf.end())
            if (auto p = rupees_to_paise(it->value())) m.cash_paise = *p;
    }
    return m;
}

/// The text the checksum covers: the document printed compactly with the
/// `_tradestate` member (without its `checksum`) appended as last member.
std::string canonical_text(const json::value& doc, const json::object& meta_without_checksum) {
    std::string s = detail::print(doc, {-1});
    s.pop_back(); // '}'
    if (s.size() > 1) s.push_back(',');
    detail::append_escaped(s, meta_key);
    s.push_back(':');
    detail::print_to(s, json::value(meta_without_checksum), {-1});
    s.push_back('}');
    return s;
}

/// The file text: the document indented like the seed's, `_tradestate` last.
std::string file_text(const json::value& doc, const json::object& meta) {
    std::string s = detail::print(doc, {2});
    if (doc.get_object().empty()) {
        s = "{";
    } else {
        s.resize(s.size() - 2); // "\n}"
        s.push_back(',');
    }
    s += "\n  ";
    detail::append_escaped(s, meta_key);
    s += ": ";
    detail::print_to(s, json::value(meta), {2}, 1);
    s += "\n}\n";
    return s;
}

/// Call `f` with each run of `t` between whitespace outside strings: their
/// concatenation is strip_whitespace(t).
template <class F>
void for_each_compact_run(std::string_view t, F&& f) {
    const auto ws = [](char c) { return c == ' ' || c == '\n' || c == '\r' || c == '\t'; };
    std::size_t i = 0, run = 0;
    const std::size_t n = t.size();
    while (i < n) {
        const char c = t[i];
        if (c == '"') { // skip the string, escapes included
            ++i;
            for (;;) {
                while (i < n && t[i] != '"' && t[i] != '\\') ++i;
                if (i >= n) {
                    i = n;
                    break;
                }
                if (t[i] == '\\') {
                    i += 2;
                    continue;
                }
                ++i;
                break;
            }
            continue;
        }
        if (ws(c)) {
            if (i > run) f(t.substr(run, i - run));
            while (i < n && ws(t[i])) ++i;
            run = i;
            continue;
        }
        ++i;
    }
    if (run < n) f(t.substr(run));
}

/// JSON text without the whitespace outside strings. For text printed by
/// detail::print (any indent) this is exactly the compact print, so the
/// checksum can be computed from the file text without printing twice.
std::string strip_whitespace(std::string_view t) {
    std::string out;
    out.reserve(t.size());
    for_each_compact_run(t, [&](std::string_view run) { out.append(run); });
    return out;
}

/// XXH3 of strip_whitespace(t), without building it.
std::uint64_t compact_checksum(std::string_view t) {
    detail::Xxh3Stream h;
    for_each_compact_run(t, [&](std::string_view run) { h.update(run); });
    return h.digest();
}

/// Checksum of a file as written by save(): its compact text without the
/// trailing `"checksum"` member. nullopt if the text does not end that way
/// (e.g. a tool reordered the members); then the value is printed instead.
std::optional<std::string> checksum_from_text(std::string_view text) {
    std::string c = strip_whitespace(text);
    static constexpr std::string_view tail_start = ",\"checksum\":\"xxh3:";
    const std::size_t tail_len = tail_start.size() + 16 + 3; // hex, then "}}
    if (c.size() < tail_len + 2 || c.compare(c.size() - tail_len, tail_start.size(), tail_start) != 0 ||
        c.compare(c.size() - 3, 3, "\"}}") != 0)
        return std::nullopt;
    c.resize(c.size() - tail_len);
    c += "}}";
    return detail::checksum_text(detail::xxh3(c));
}

/// "0123456789abcdef" -> value; nullopt unless exactly 16 lower-case hex digits.
std::optional<std::uint64_t> parse_hex64(std::string_view h) {
    if (h.size() != 16) return std::nullopt;
    std::uint64_t v = 0;
    for (char c : h) {
        const int d = (c >= '0' && c <= '9') ? c - '0' : (c >= 'a' && c <= 'f') ? c - 'a' + 10 : -1;
        if (d < 0) return std::nullopt;
        v = (v << 4) | static_cast<std::uint64_t>(d);
    }
    return v;
}

/// A main file read and checked.
struct Parsed {
    json::value doc;             // without `_tradestate`
    SaveMeta meta;
    std::uint64_t sequence = 0;
    bool has_meta = false;       // false: written by another program
    std::vector<std::string> views;
};

[[noreturn]] void corrupt(const fs::path& p, const std::string& why) {
    throw Error(Errc::corrupt, p.string() + ": " + why);
}

/// Check the `_tradestate` member; returns the sequence etc. Throws
/// Errc::corrupt for anything a writer of this format would not produce and
/// Errc::schema for a file from a newer tradestate.
void read_meta(const fs::path& p, const json::object& ts, Parsed& out, std::string& checksum) {
    auto get = [&](const char* key) -> const json::value& {
        auto it = ts.find(key);
        if (it == ts.end()) corrupt(p, std::string("_tradestate.") + key + " is missing");
        return it->value();
    };
    const auto& fmt = get("format");
    if (!fmt.is_string() || fmt.get_string() != format_name)
        corrupt(p, "_tradestate.format is not \"" + std::string(format_name) + "\"");
    const auto schema = as_int(get("schema_version"));
    if (!schema || *schema < 1) corrupt(p, "_tradestate.schema_version is not a positive integer");
    if (*schema > current_schema)
        throw Error(Errc::schema, p.string() + " was written by a newer tradestate (json-files schema " +
                                      std::to_string(*schema) + "; this build reads up to schema " +
                                      std::to_string(current_schema) + "): upgrade tradestate to load it");
    const auto seq = as_int(get("sequence"));
    if (!seq || *seq < 0) corrupt(p, "_tradestate.sequence is not a non-negative integer");
    out.sequence = static_cast<std::uint64_t>(*seq);
    const auto& at = get("saved_at");
    if (!at.is_string()) corrupt(p, "_tradestate.saved_at is not a string");
    out.meta.saved_at = std::string(at.get_string());
    const auto it = as_int(get("iteration")), pos = as_int(get("positions")), cash = as_int(get("cash_paise"));
    if (!it || !pos || !cash) corrupt(p, "_tradestate.iteration/positions/cash_paise must be integers");
    out.meta.iteration = *it;
    out.meta.positions = *pos;
    out.meta.cash_paise = *cash;
    // Schema 2: the session layer's envelope (absent for plain saves).
    auto hex = [&](const char* key) -> std::uint64_t {
        auto f = ts.find(key);
        if (f == ts.end()) return 0;
        if (!f->value().is_string()) corrupt(p, std::string("_tradestate.") + key + " is not a string");
        auto v = parse_hex64(f->value().get_string());
        if (!v) corrupt(p, std::string("_tradestate.") + key + " is not 16 hex digits");
        return *v;
    };
    out.meta.lineage = hex("lineage");
    out.meta.journal_id = hex("journal_id");
    if (auto f = ts.find("journal_seq"); f != ts.end()) {
        const auto js = as_int(f->value());
        if (!js || *js < 0) corrupt(p, "_tradestate.journal_seq is not a non-negative integer");
        out.meta.journal_seq = static_cast<std::uint64_t>(*js);
    }
    if (auto v = ts.find("views"); v != ts.end()) {
        if (!v->value().is_array()) corrupt(p, "_tradestate.views is not an array");
        for (const auto& e : v->value().get_array()) {
            if (!e.is_string() || !is_valid_session_name(e.get_string()))
                corrupt(p, "_tradestate.views holds an invalid view name");
            out.views.emplace_back(e.get_string());
        }
    }
    const auto& cs = get("checksum");
    if (!cs.is_string()) corrupt(p, "_tradestate.checksum is not a string");
    checksum = std::string(cs.get_string());
}

/// Read, parse and verify one main (or backup) file.
Parsed read_verified(const fs::path& p, std::uint64_t max_bytes) {
    const std::string bytes = detail::read_file(p, max_bytes);
    // A UTF-8 byte order mark (what Windows editors put first) is not JSON:
    // it is skipped, and the next save writes the file without it.
    std::string_view text = bytes;
    if (text.starts_with("\xEF\xBB\xBF")) text.remove_prefix(3);
    json::value root = detail::parse(text, p.string());
    if (!root.is_object()) corrupt(p, "the top level is not a JSON object");
    auto& obj = root.get_object();
    Parsed out;
    auto it = obj.find(meta_key);
    if (it == obj.end()) {
        // A byte flip in the member name must not turn our file into an
        // "unchecked" one: refuse anything that looks like our metadata.
        for (const auto& kv : obj) {
            if (!kv.value().is_object()) continue;
            const auto& o = kv.value().get_object();
            auto f = o.find("format");
            auto c = o.find("checksum");
            if ((f != o.end() && f->value().is_string() && f->value().get_string() == format_name) ||
                (c != o.end() && c->value().is_string() && c->value().get_string().starts_with("xxh3:")))
                corrupt(p, "member '" + std::string(kv.key()) + "' holds tradestate metadata under the wrong name");
        }
        out.meta = derive_meta(obj);
        out.doc = std::move(root);
        return out;
    }
    if (!it->value().is_object()) corrupt(p, "_tradestate is not an object");
    json::object ts = std::move(it->value().get_object());
    obj.stable_erase(it);
    std::string stored;
    read_meta(p, ts, out, stored);
    ts.erase("checksum");
    // Fast path: the file's own text, whitespace removed. If that does not
    // match (re-encoded by another tool, or damaged), print the parsed value.
    std::string computed = checksum_from_text(text).value_or("");
    if (computed != stored) computed = detail::checksum_text(detail::xxh3(canonical_text(root, ts)));
    if (computed != stored)
        corrupt(p, "checksum mismatch (stored " + stored + ", computed " + computed +
                       "): the file was changed after it was written");
    out.has_meta = true;
    out.doc = std::move(root);
    return out;
}

/// Sequence and views of a main file from its last few KiB (the `_tradestate`
/// member is the last member), without parsing the whole document. nullopt
/// if the tail does not hold a readable `_tradestate`.
struct TailMeta {
    std::uint64_t sequence = 0;
    std::vector<std::string> views;
};
std::optional<TailMeta> read_tail_meta(const fs::path& p) {
    // O_NONBLOCK and the regular-file check: a FIFO must not hang the
    // reader; whoever reads the file whole names it (read_file).
    detail::unique_fd fd(::open(p.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK));
    if (!fd) return std::nullopt;
    struct stat st {};
    if (::fstat(fd.get(), &st) != 0 || !S_ISREG(st.st_mode)) return std::nullopt;
    const auto size = static_cast<std::uint64_t>(st.st_size);
    const std::uint64_t want = std::min<std::uint64_t>(size, 8192);
    std::string tail(static_cast<std::size_t>(want), '\0');
    std::size_t got = 0;
    while (got < tail.size()) {
        ssize_t n = ::pread(fd.get(), tail.data() + got, tail.size() - got,
                            static_cast<off_t>(size - want + got));
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) return std::nullopt;
        got += static_cast<std::size_t>(n);
    }
    const auto key = tail.rfind("\"_tradestate\"");
    const auto close = tail.rfind('}');
    if (key == std::string::npos || close == std::string::npos || close <= key) return std::nullopt;
    const auto colon = tail.find(':', key);
    if (colon == std::string::npos || colon >= close) return std::nullopt;
    try {
        auto v = detail::parse(std::string_view(tail).substr(colon + 1, close - colon - 1), p.string());
        if (!v.is_object()) return std::nullopt;
        const auto& o = v.get_object();
        TailMeta m;
        auto s = o.find("sequence");
        if (s == o.end()) return std::nullopt;
        auto seq = as_int(s->value());
        if (!seq || *seq < 0) return std::nullopt;
        m.sequence = static_cast<std::uint64_t>(*seq);
        if (auto vw = o.find("views"); vw != o.end() && vw->value().is_array())
            for (const auto& e : vw->value().get_array())
                if (e.is_string() && is_valid_session_name(e.get_string())) m.views.emplace_back(e.get_string());
        return m;
    } catch (const Error&) {
        return std::nullopt;
    }
}


// ------------------------------------------------------------------ backend

class JsonFilesBackend final : public Backend {
public:
    explicit JsonFilesBackend(BackendOptions opts) : opts_(std::move(opts)) {
        if (!opts_.logger) opts_.logger = std::make_shared<spdlog::logger>(backend_name); // no sinks: silent
        if (opts_.state_dir.empty()) opts_.state_dir = "state";
        if (opts_.keep_backups < 0) opts_.keep_backups = 0;
    }

    [[nodiscard]] std::string name() const override { return backend_name; }

    std::uint64_t save(const std::string& session, const Document& doc, const SaveMeta& meta) override {
        validate_session_name(session);
        if (!doc.main.is_object())
            throw Error(Errc::invalid_argument, "json-files stores a JSON object as the main document of session '" +
                                                    session + "', got another kind of value");
        if (doc.main.get_object().contains(meta_key))
            throw Error(Errc::invalid_argument, "the main document of session '" + session +
                                                    "' has a member '_tradestate', which json-files reserves for "
                                                    "its own metadata; rename that member");
        std::vector<std::pair<std::string, const json::value*>> views;
        for (const auto& kv : doc.views) {
            const std::string v(kv.key());
            if (!is_valid_session_name(v) || v == main_stem)
                throw Error(Errc::invalid_argument, "view name '" + v + "' of session '" + session +
                                                        "' cannot be a file name (use 1-64 characters from A-Z a-z "
                                                        "0-9 . _ -, not starting with '.', not 'fno_system_state')");
            views.emplace_back(v, &kv.value());
        }

        const Place pl = place(session);
        const fs::path& dir = pl.dir;
        make_dirs(dir);
        const fs::path& main = pl.main;
        if (detail::remove_stale_temps(dir) + detail::remove_stale_temps(pl.backups))
            opts_.logger->debug("json-files: removed temp files left by an interrupted save in {}", dir.string());
        if (!pl.views) views.clear(); // a custom file name is the main file alone, as in the seed

        // Sequence: one above everything this session has stored.
        std::uint64_t prev = 0;
        std::optional<std::uint64_t> main_seq;
        bool main_exists = path_exists(main);
        if (main_exists) {
            if (auto t = read_tail_meta(main)) {
                main_seq = t->sequence;
            } else {
                try {
                    main_seq = read_verified(main, opts_.max_file_bytes).sequence; // 0 for seed files
                } catch (const Error& e) {
                    opts_.logger->warn("json-files: replacing unreadable {} without keeping it as a backup: {}",
                                       main.string(), e.what());
                }
            }
            if (main_seq) prev = *main_seq;
        }
        const auto backups = list_backups(pl);
        if (!backups.empty()) prev = std::max(prev, backups.front().first);
        const std::uint64_t seq = prev + 1;

        // The `_tradestate` member, then its checksum over the canonical text.
        json::object ts;
        ts["format"] = format_name;
        ts["schema_version"] = current_schema;
        ts["sequence"] = seq;
        ts["saved_at"] = meta.saved_at;
        ts["iteration"] = meta.iteration;
        ts["positions"] = meta.positions;
        ts["cash_paise"] = meta.cash_paise;
        if (meta.lineage || meta.journal_id) {
            ts["lineage"] = detail::hex64(meta.lineage);
            ts["journal_id"] = detail::hex64(meta.journal_id);
            ts["journal_seq"] = static_cast<std::int64_t>(meta.journal_seq);
        }
        json::array vnames;
        for (const auto& v : views) vnames.emplace_back(v.first);
        ts["views"] = std::move(vnames);
        // Print once; the checksum covers that text without whitespace
        // (= the compact print, see canonical_text), then goes in as the
        // last member of `_tradestate`.
        std::string text = file_text(doc.main, ts);
        static constexpr std::string_view text_end = "\n  }\n}\n";
        if (!text.ends_with(text_end)) throw Error(Errc::invalid_argument, "json-files: unexpected printer output");
        const std::string sum = detail::checksum_text(compact_checksum(text));
        text.resize(text.size() - text_end.size());
        text += ",\n    \"checksum\": \"" + sum + "\"\n  }\n}\n";

        // Keep the current main file as a backup: a hard link, no copy.
        if (main_exists && main_seq && opts_.keep_backups > 0) keep_as_backup(pl, *main_seq);

        detail::write_file_atomic(main, text, opts_.fsync, [&](const detail::FileId& id) { expect_main(session, id); });
        for (const auto& [vname, value] : views)
            detail::write_file_atomic(dir / (vname + ".json"), detail::print(*value) + "\n", opts_.fsync);

        prune_backups(pl);
        opts_.logger->debug("json-files: saved session '{}' sequence {} to {} ({} bytes)", session, seq,
                            main.string(), text.size());
        return seq;
    }

    [[nodiscard]] std::optional<LoadResult> load(const std::string& session) override {
        validate_session_name(session);
        return load_impl(session);
    }

    [[nodiscard]] std::vector<SessionInfo> list() override {
        std::vector<std::string> names;
        if (session_present(place(default_session))) names.emplace_back(default_session);
        std::error_code ec;
        // Sessions with a custom file name: the other *.json files of the state dir.
        std::vector<std::string> default_views = seed_views;
        if (auto t = read_tail_meta(opts_.state_dir / main_file_name))
            for (const auto& v : t->views) default_views.push_back(v);
        for (auto it = fs::directory_iterator(opts_.state_dir, ec); !ec && it != fs::directory_iterator();
             it.increment(ec)) {
            const std::string n = it->path().filename().string();
            if (!names_a_file(n) || !is_valid_session_name(n) || n == main_file_name) continue;
            const std::string stem = n.substr(0, n.size() - 5);
            if (std::find(default_views.begin(), default_views.end(), stem) != default_views.end()) continue;
            std::error_code e2;
            if (it->is_regular_file(e2)) names.push_back(n);
        }
        ec.clear();
        for (auto it = fs::directory_iterator(opts_.state_dir / "sessions", ec); !ec && it != fs::directory_iterator();
             it.increment(ec)) {
            const std::string n = it->path().filename().string();
            if (n == default_session || !is_valid_session_name(n)) continue;
            std::error_code e2;
            if (it->is_directory(e2) && !names_a_file(n) && session_present(place(n))) names.push_back(n);
        }
        std::sort(names.begin(), names.end());
        std::vector<SessionInfo> out;
        for (const auto& n : names) {
            SessionInfo info;
            info.session = n;
            const Place pl = place(n);
            const fs::path& dir = pl.dir;
            const fs::path& main = pl.main;
            info.location = main.string();
            std::vector<std::string> view_names = pl.views ? seed_views : std::vector<std::string>{};
            try {
                auto r = load_impl(n);
                if (r) {
                    info.meta = r->meta;
                    info.sequence = r->sequence;
                    if (r->recovered) info.location += " (corrupt; load uses " + r->source + ")";
                }
            } catch (const Error& e) {
                info.location += " (corrupt: " + std::string(e.what()) + ")";
            }
            if (auto t = read_tail_meta(main); t && pl.views)
                for (const auto& v : t->views)
                    if (std::find(view_names.begin(), view_names.end(), v) == view_names.end()) view_names.push_back(v);
            for (const auto& v : view_names) {
                const fs::path f = dir / (v + ".json");
                if (path_exists(f)) info.companions.emplace_back(f.string(), iso_mtime(f));
            }
            out.push_back(std::move(info));
        }
        return out;
    }

    [[nodiscard]] bool exists(const std::string& session) override {
        validate_session_name(session);
        return session_present(place(session));
    }

    bool remove(const std::string& session) override {
        validate_session_name(session);
        const Place pl = place(session);
        const fs::path& dir = pl.dir;
        if (!session_present(pl)) return false;
        const fs::path& main = pl.main;
        std::vector<std::string> view_names = pl.views ? seed_views : std::vector<std::string>{};
        if (auto t = read_tail_meta(main); t && pl.views)
            for (const auto& v : t->views) view_names.push_back(v);
        auto rm = [&](const fs::path& p) {
            if (::unlink(p.c_str()) != 0 && errno != ENOENT) detail::throw_io("remove", p, errno);
        };
        rm(main);
        for (const auto& v : view_names) rm(dir / (v + ".json"));
        for (const auto& b : list_backups(pl)) rm(b.second);
        ::rmdir(pl.backups.c_str()); // only if empty
        (void)detail::remove_stale_temps(dir, names_a_file(session) ? session : std::string());
        if (session != default_session) {
            rm(lock_path(session));
            if (!names_a_file(session)) ::rmdir(dir.c_str()); // only if nothing foreign is left in it
        }
        if (opts_.fsync && path_exists(dir)) detail::fsync_directory(dir);
        opts_.logger->info("json-files: removed session '{}' from {}", session, dir.string());
        return true;
    }

    [[nodiscard]] VerifyReport verify(const std::string& session) override {
        validate_session_name(session);
        VerifyReport rep;
        rep.session = session;
        const Place pl = place(session);
        const fs::path& dir = pl.dir;
        using sev = Finding::Severity;
        if (!session_present(pl)) {
            rep.findings.push_back({sev::error, dir.string(),
                                    "session '" + session + "' does not exist (no " + pl.main.string() +
                                        " and no backups in " + pl.backups.string() + ")"});
            return rep;
        }
        const fs::path& main = pl.main;
        std::vector<std::string> view_names = pl.views ? seed_views : std::vector<std::string>{};
        bool main_ok = false;
        const auto backups = list_backups(pl);
        if (!path_exists(main)) {
            rep.findings.push_back({sev::error, main.string(), "the main file is missing; only backups are left"});
        } else {
            try {
                auto p = read_verified(main, opts_.max_file_bytes);
                main_ok = true;
                for (const auto& v : p.views)
                    if (pl.views && std::find(view_names.begin(), view_names.end(), v) == view_names.end()) view_names.push_back(v);
                bool checked_backup = false;
                for (const auto& b : backups)
                    if (b.first > 0 && read_tail_meta(b.second)) checked_backup = true;
                if (p.has_meta && !backups.empty() && backups.front().first > p.sequence) {
                    main_ok = false;
                    rep.findings.push_back({sev::error, main.string(),
                                            "holds sequence " + std::to_string(p.sequence) + ", older than backup " +
                                                backups.front().second.string() +
                                                ": the main file was rolled back to an older copy"});
                } else if (p.has_meta) {
                    rep.findings.push_back({sev::info, main.string(),
                                            "ok: sequence " + std::to_string(p.sequence) + ", checksum verified"});
                } else if (checked_backup) {
                    main_ok = false;
                    rep.findings.push_back({sev::error, main.string(),
                                            "has no tradestate checksum, but the session's backups have one: it was "
                                            "rewritten or edited by another program"});
                } else {
                    rep.findings.push_back({sev::warning, main.string(),
                                            "no checksum (written by another program); loads as is"});
                }
            } catch (const Error& e) {
                rep.findings.push_back({sev::error, main.string(), e.what()});
            }
        }
        for (const auto& v : view_names) {
            const fs::path f = dir / (v + ".json");
            if (!path_exists(f)) continue;
            try {
                (void)detail::parse(detail::read_file(f, opts_.max_file_bytes), f.string());
            } catch (const Error& e) {
                rep.findings.push_back({sev::warning, f.string(),
                                        std::string("view file is unreadable (it is rewritten on the next save): ") +
                                            e.what()});
            }
        }
        std::optional<fs::path> first_good_backup;
        for (const auto& [seq, path] : backups) {
            try {
                (void)read_verified(path, opts_.max_file_bytes);
                if (!first_good_backup) first_good_backup = path;
            } catch (const Error& e) {
                rep.findings.push_back({sev::warning, path.string(), std::string("backup is unusable: ") + e.what()});
            }
        }
        if (!main_ok)
            rep.findings.push_back({first_good_backup ? sev::info : sev::error, dir.string(),
                                    first_good_backup ? "load falls back to backup " + first_good_backup->string()
                                                      : std::string("no valid backup is left either")});
        return rep;
    }

    [[nodiscard]] std::unique_ptr<WriterLease> acquire_writer(const std::string& session) override {
        validate_session_name(session);
        make_dirs(place(session).dir);
        return std::make_unique<detail::FileLease>(lock_path(session), session);
    }

private:
    /// Where `session`'s files are (see Place). A custom file name may not
    /// be one of the default session's own files.
    [[nodiscard]] Place place(const std::string& session) const {
        Place pl;
        if (session == default_session || names_a_file(session)) {
            pl.dir = opts_.state_dir;
            pl.backups = opts_.state_dir / "backups";
        } else {
            pl.dir = opts_.state_dir / "sessions" / session;
            pl.backups = pl.dir / "backups";
        }
        if (names_a_file(session)) {
            pl.stem = session.substr(0, session.size() - 5);
            pl.main = pl.dir / session;
            pl.views = false;
            if (pl.stem == main_stem || std::find(seed_views.begin(), seed_views.end(), pl.stem) != seed_views.end())
                throw Error(Errc::invalid_argument, "session name '" + session + "' is a file of the default session (" +
                                                        (opts_.state_dir / session).string() +
                                                        "); use the session 'default', or another file name");
        } else {
            pl.stem = main_stem;
            pl.main = pl.dir / main_file_name;
        }
        return pl;
    }
    [[nodiscard]] fs::path lock_path(const std::string& session) const {
        return place(session).dir / ("." + session + ".lock");
    }

    static bool session_present(const Place& pl) {
        return path_exists(pl.main) || !list_backups(pl).empty();
    }

    static void make_dirs(const fs::path& dir) {
        std::error_code ec;
        fs::create_directories(dir, ec);
        if (ec) throw Error(Errc::io, "cannot create directory " + dir.string() + ": " + ec.message());
    }

    /// Hard-link the current main file into backups/ under its sequence.
    void keep_as_backup(const Place& pl, std::uint64_t seq) {
        const fs::path& main = pl.main;
        const fs::path& bdir = pl.backups;
        make_dirs(bdir);
        const fs::path target = bdir / backup_file_name(pl.stem, seq);
        if (::link(main.c_str(), target.c_str()) != 0) {
            const int e = errno;
            if (e == EEXIST) {
                struct stat a {}, b {};
                if (::stat(main.c_str(), &a) == 0 && ::stat(target.c_str(), &b) == 0 && a.st_ino == b.st_ino &&
                    a.st_dev == b.st_dev)
                    return; // already linked (an earlier save stopped after linking)
                if (::unlink(target.c_str()) != 0) detail::throw_io("replace backup", target, errno);
                if (::link(main.c_str(), target.c_str()) == 0) {
                    if (opts_.fsync) detail::fsync_directory(bdir);
                    return;
                }
            }
            // No hard links on this file system: copy instead.
            if (e == EPERM || e == EXDEV || e == EMLINK || e == ENOTSUP) {
                detail::write_file_atomic(target, detail::read_file(main, opts_.max_file_bytes), opts_.fsync);
                return;
            }
            detail::throw_io("keep a backup of " + main.string() + " as", target, e);
        }
        if (opts_.fsync) detail::fsync_directory(bdir);
    }

    void prune_backups(const Place& pl) {
        auto backups = list_backups(pl);
        const auto keep = static_cast<std::size_t>(opts_.keep_backups);
        for (std::size_t i = keep; i < backups.size(); ++i) {
            if (::unlink(backups[i].second.c_str()) != 0 && errno != ENOENT)
                opts_.logger->warn("json-files: cannot prune old backup {}: {}", backups[i].second.string(),
                                   detail::errno_text(errno));
        }
    }

    /// Keep a damaged main file for inspection as `<file>.corrupt-<UTC time>`:
    /// a hard link (saves replace the main file by rename, so the damaged
    /// bytes stay there), made once per damaged file. Returns its path.
    std::string keep_aside(const fs::path& p) {
        struct stat st {};
        if (::stat(p.c_str(), &st) != 0) return {};
        const std::string prefix = p.filename().string() + ".corrupt-";
        std::error_code ec;
        for (auto it = fs::directory_iterator(p.parent_path(), ec); !ec && it != fs::directory_iterator();
             it.increment(ec)) {
            if (it->path().filename().string().rfind(prefix, 0) != 0) continue;
            struct stat o {};
            if (::stat(it->path().c_str(), &o) == 0 && o.st_ino == st.st_ino && o.st_dev == st.st_dev)
                return it->path().string();
        }
        const std::string stamp = detail::utc_stamp();
        for (int n = 0; n < 100; ++n) {
            const fs::path aside = p.string() + ".corrupt-" + stamp + (n ? "-" + std::to_string(n) : std::string());
            if (::link(p.c_str(), aside.c_str()) == 0) return aside.string();
            if (errno != EEXIST) break;
        }
        opts_.logger->warn("json-files: cannot keep the damaged {} aside: {}", p.string(), detail::errno_text(errno));
        return {};
    }

    static LoadResult result_of(Parsed&& p, const fs::path& from) {
        LoadResult r;
        r.doc = std::move(p.doc);
        r.meta = p.meta;
        r.sequence = p.sequence;
        r.source = from.string();
        r.checked = p.has_meta;
        return r;
    }

    /// The newest copy that verifies: the main file, unless it is damaged,
    /// missing, older than a backup (rolled back) or lacks the envelope
    /// while checked backups exist (rewritten by another program).
    std::optional<LoadResult> load_impl(const std::string& session) {
        const Place pl = place(session);
        const fs::path& main = pl.main;
        const auto backups = list_backups(pl);
        std::string failure;
        std::vector<std::string> kept;
        if (path_exists(main)) {
            try {
                auto p = read_verified(main, opts_.max_file_bytes);
                const std::uint64_t main_seq = p.sequence;
                const bool newer_backup = !backups.empty() && backups.front().first > main_seq && p.has_meta;
                if (!newer_backup && p.has_meta) return result_of(std::move(p), main);
                if (!newer_backup) {
                    // No envelope: another program's file, unless this session has checked backups.
                    bool checked_backup = false;
                    for (const auto& b : backups)
                        if (b.first > 0 && read_tail_meta(b.second)) checked_backup = true;
                    if (!checked_backup) {
                        LoadResult r = result_of(std::move(p), main);
                        r.warnings.push_back(main.string() + ": no checksum (written by another program); loaded as is");
                        return r;
                    }
                    failure = main.string() +
                              " has no tradestate checksum, but the session's backups have one: it was rewritten or "
                              "edited by another program";
                } else {
                    failure = main.string() + " holds sequence " + std::to_string(main_seq) + ", older than backup " +
                              backups.front().second.string() + ": the main file was rolled back to an older copy";
                }
            } catch (const Error& e) {
                if (e.code() != Errc::parse && e.code() != Errc::corrupt) throw; // io, schema: not corruption
                failure = e.what();
            }
            if (auto k = keep_aside(main); !k.empty()) kept.push_back(k);
        } else {
            if (backups.empty()) return std::nullopt;
            failure = main.string() + " is missing";
        }
        std::string tried;
        for (const auto& [seq, path] : backups) {
            try {
                auto p = read_verified(path, opts_.max_file_bytes);
                // Backup 0 is the file another program wrote before the first save; any other must be checked.
                if (!p.has_meta && seq != 0) throw Error(Errc::corrupt, path.string() + ": has no checksum");
                LoadResult r = result_of(std::move(p), path);
                r.recovered = true;
                r.kept_aside = kept;
                r.warnings.push_back("session '" + session + "': " + failure + "; loaded the newest valid backup " +
                                     path.string() + " (sequence " + std::to_string(r.sequence) + ")" +
                                     (tried.empty() ? "" : "; unusable backups skipped:" + tried) +
                                     (kept.empty() ? "" : "; the damaged file is kept as " + kept.front()));
                return r;
            } catch (const Error& e) {
                if (e.code() != Errc::parse && e.code() != Errc::corrupt && e.code() != Errc::not_found) throw;
                tried += "\n  " + std::string(e.what());
            }
        }
        throw Error(Errc::corrupt, "session '" + session + "' cannot be loaded: " + failure +
                                       (tried.empty() ? "; there are no backups in " + pl.backups.string()
                                                      : "; no backup verifies either:" + tried) +
                                       (kept.empty() ? "" : "\nthe damaged file is kept as " + kept.front()) +
                                       "\nrestore the file from elsewhere or remove the session");
    }

    // ------------------------------------------------ the session layer

    /// The main file a save of `session` is about to put in place.
    void expect_main(const std::string& session, const detail::FileId& id) { written_.expect(session, id); }

public:
    [[nodiscard]] std::size_t fallback_depth() const override {
        return static_cast<std::size_t>(opts_.keep_backups) + 1;
    }

    /// The main file is still one this process wrote (or found at its first check).
    [[nodiscard]] bool in_place(const std::string& session) override {
        return written_.in_place(session, place(session).main);
    }

    /// Move every file of `from` (main file, views, backups, kept-aside
    /// copies) into the directory of `to`.
    void rename(const std::string& from, const std::string& to) override {
        validate_session_name(from);
        validate_session_name(to);
        const Place a = place(from), b = place(to);
        if (session_present(b))
            throw Error(Errc::invalid_argument, "cannot rename session '" + from + "' to '" + to + "': it exists");
        const fs::path& src = a.dir;
        const fs::path& dst = b.dir;
        make_dirs(dst);
        std::vector<std::string> names = a.views && b.views ? seed_views : std::vector<std::string>{};
        if (auto t = read_tail_meta(a.main); t && a.views && b.views)
            for (const auto& v : t->views) names.push_back(v);
        auto mv = [&](const fs::path& x, const fs::path& y) {
            if (!path_exists(x)) return;
            if (::rename(x.c_str(), y.c_str()) != 0) detail::throw_io("move " + x.string() + " to", y, errno);
        };
        mv(a.main, b.main);
        for (const auto& v : names) mv(src / (v + ".json"), dst / (v + ".json"));
        const auto backups = list_backups(a);
        if (!backups.empty()) make_dirs(b.backups);
        for (const auto& [seq, path] : backups) mv(path, b.backups / backup_file_name(b.stem, seq));
        ::rmdir(a.backups.c_str()); // only if empty
        std::error_code ec;
        std::vector<fs::path> aside;
        const std::string corrupt = a.main.filename().string() + ".corrupt-";
        for (auto it = fs::directory_iterator(src, ec); !ec && it != fs::directory_iterator(); it.increment(ec))
            if (it->path().filename().string().rfind(corrupt, 0) == 0) aside.push_back(it->path());
        for (const auto& x : aside)
            mv(x, dst / (b.main.filename().string() + x.filename().string().substr(a.main.filename().string().size())));
        if (opts_.fsync) {
            detail::fsync_directory(dst);
            detail::fsync_directory(src);
        }
        {
            written_.forget(from);
            written_.forget(to);
        }
        opts_.logger->info("json-files: session '{}' is now session '{}' ({})", from, to, dst.string());
    }

private:
    detail::WrittenFiles written_; ///< main files this process wrote
    BackendOptions opts_;
};

std::unique_ptr<Backend> create_backend(const BackendOptions& opts) { return std::make_unique<JsonFilesBackend>(opts); }

} // namespace
} // namespace tradestate::json_files

TRADESTATE_PLUGIN("json-files", tradestate::json_files::create_backend, tradestate::PluginStorage::state_dir)
