// Corruption is never passed off as state, for every file backend: every
// single-byte change (xor 0xff, and a random different byte) and every
// truncation of a saved file — exhaustive for a small state, 2,000 sampled
// positions for a large one — must either load the previous good state with
// `recovered = true` and a warning naming the file, or throw Errc::corrupt
// naming the file, or (damage to an older copy) be reported by verify();
// a load never returns a document other than one that was saved. A
// recovering backend keeps the damaged bytes aside as `*.corrupt-*`, and
// `tradestate verify` exits non-zero naming the file.
#include "../conformance/support.hpp"

#include <tradestate/detail/atomic_file.hpp>

#include <gtest/gtest.h>

#include <cstdio>
#include <iostream>
#include <fstream>
#include <random>
#include <set>

#include <sys/stat.h>

using namespace tradestate;
using namespace tradestate::testing;

namespace {

const std::string session = "book";

struct Target {
    const char* backend;
    const char* file;  ///< the newest-state file, relative to state_dir
};
const Target targets[] = {
    {"json-files", "sessions/book/fno_system_state.json"},
    {"mmap-binary", "book.tsmm"},
    {"compressed-archive", "book.tsarc"},
};
void PrintTo(const Target& t, std::ostream* os) { *os << t.backend; }

BackendOptions opts_in(const fs::path& dir) { return options_in(dir, false); } // detection, not durability

std::string read_all(const fs::path& p) { return slurp(p); }

struct Counts {
    long flips = 0, truncations = 0;
    long recovered = 0, thrown = 0, verify_only = 0, harmless = 0;
    long named_location = 0; // messages that name a slot, record, offset or line
};

bool names_location(const std::string& m) {
    return m.find("slot") != std::string::npos || m.find("offset") != std::string::npos ||
           m.find("record") != std::string::npos || m.find("line") != std::string::npos ||
           m.find(":1:") != std::string::npos || m.find("backup") != std::string::npos;
}

class Corruption : public ::testing::TestWithParam<Target> {
protected:
    void SetUp() override {
        if (!fs::exists(plugin_dir() / plugin_file_name(GetParam().backend)))
            GTEST_SKIP() << "plugin " << GetParam().backend << " is not built";
    }

    /// Save `older` then `newest`; return the target file's path.
    fs::path prepare(Backend& b, const fs::path& dir, const json::value& older, const json::value& newest) {
        save_doc(b, session, older);
        save_doc(b, session, newest);
        return dir / GetParam().file;
    }

    /// One damaged file: check the outcome and classify it. `harmless_ok`
    /// says whether this change may legitimately leave everything readable
    /// and unreported (bytes outside anything checked that do not matter).
    void check_one(Backend& b, const fs::path& file, const std::vector<json::value>& saved, const std::string& what,
                   bool harmless_ok, Counts& c) {
        std::optional<LoadResult> r;
        bool threw = false;
        try {
            r = b.load(session);
        } catch (const Error& e) {
            threw = true;
            const std::string m = e.what();
            ASSERT_TRUE(e.code() == Errc::corrupt || e.code() == Errc::parse)
                << what << ": load threw a non-corruption error: " << m;
            ASSERT_NE(m.find(file.filename().string()), std::string::npos)
                << what << ": the error does not name the file: " << m;
            if (names_location(m)) ++c.named_location;
            ++c.thrown;
        }
        if (!threw) {
            ASSERT_TRUE(r.has_value()) << what << ": the saved session vanished";
            bool matches = false;
            for (const auto& d : saved) matches = matches || same_doc(r->doc, d);
            ASSERT_TRUE(matches) << what << ": load returned a document that was never saved (from " << r->source
                                 << ")";
            if (r->recovered) {
                ASSERT_FALSE(r->warnings.empty()) << what << ": recovered without a warning";
                std::string all;
                for (const auto& w : r->warnings) all += w + "\n";
                ASSERT_NE(all.find(file.filename().string()), std::string::npos)
                    << what << ": the warning does not name the file: " << all;
                if (names_location(all)) ++c.named_location;
                ++c.recovered;
                return;
            }
            ASSERT_TRUE(same_doc(r->doc, saved.back()))
                << what << ": an older state was returned without recovered = true";
            // The newest state loads intact: the damage must be in an older
            // copy, which verify() reports, or in bytes that do not matter.
            const auto rep = b.verify(session);
            bool reported = !rep.ok();
            for (const auto& f : rep.findings)
                if (f.level != Finding::Severity::info &&
                    f.where.find(file.filename().string()) != std::string::npos)
                    reported = true;
            if (reported) {
                ++c.verify_only;
            } else {
                ASSERT_TRUE(harmless_ok) << what << ": neither load nor verify noticed the change";
                ++c.harmless;
            }
        }
    }

    void run_all(std::size_t positions, std::size_t trades, std::size_t samples) {
        TempDir tmp;
        const fs::path dir = tmp.path() / "state";
        auto b = open_backend(GetParam().backend, opts_in(dir));
        const auto older = make_doc(positions, trades, 7, 41);
        const auto newest = make_doc(positions + 1, trades + 1, 8, 42);
        const fs::path file = prepare(*b, dir, older, newest);
        const std::string good = read_all(file);
        ASSERT_FALSE(good.empty());
        const std::vector<json::value> saved = {older, newest};
        const auto ranges = unchecked_ranges(good);

        std::mt19937_64 rng(99);
        std::vector<std::size_t> positions_to_try;
        if (samples == 0 || samples >= good.size()) {
            for (std::size_t i = 0; i < good.size(); ++i) positions_to_try.push_back(i);
        } else {
            std::set<std::size_t> s;
            for (std::size_t i = 0; i < 64 && i < good.size(); ++i) s.insert(i); // the headers
            for (std::size_t i = good.size() - std::min<std::size_t>(64, good.size()); i < good.size(); ++i)
                s.insert(i); // the tail (checksums, metadata)
            while (s.size() < samples) s.insert(rng() % good.size());
            positions_to_try.assign(s.begin(), s.end());
        }
        Counts c;
        for (const std::size_t off : positions_to_try) {
            const char orig = good[off];
            char variants[2];
            variants[0] = static_cast<char>(orig ^ '\xff');
            do variants[1] = static_cast<char>(rng() & 0xff);
            while (variants[1] == orig);
            for (const char v : variants) {
                put_byte(file, off, v);
                const bool harmless_ok = in_ranges(ranges, off) || (is_ws(orig) && is_ws(v));
                check_one(*b, file, saved,
                          "byte " + std::to_string(off) + " of " + file.string() + " changed to " +
                              std::to_string(static_cast<unsigned char>(v)),
                          harmless_ok, c);
                ++c.flips;
                put_byte(file, off, orig);
                if (HasFatalFailure()) return;
            }
        }
        // Truncations: every length (sampled for large files), including empty.
        for (const std::size_t len : positions_to_try) {
            ASSERT_EQ(::truncate(file.c_str(), static_cast<off_t>(len)), 0);
            check_one(*b, file, saved, file.string() + " truncated to " + std::to_string(len) + " bytes",
                      truncation_harmless(good, len), c);
            ++c.truncations;
            write_in_place(file, good);
            if (HasFatalFailure()) return;
        }
        // The undamaged file still loads as the newest state.
        auto r = b->load(session);
        ASSERT_TRUE(r && same_doc(r->doc, newest) && !r->recovered);
        std::cout << "[ figures ] " << GetParam().backend << ": " << file.filename().string() << " of " << good.size()
                  << " bytes: " << c.flips << " byte changes and " << c.truncations
                  << " truncations checked; load recovered the previous state " << c.recovered << "x, threw "
                  << c.thrown << "x, older copy damaged (reported by verify) " << c.verify_only
                  << "x, harmless (unused bytes / whitespace) " << c.harmless << "x; " << c.named_location
                  << " messages named a slot/record/offset/line/backup" << std::endl;
    }

    static bool is_ws(char ch) { return ch == ' ' || ch == '\n' || ch == '\r' || ch == '\t'; }

    /// Byte ranges of the target file that no checksum covers and that no
    /// load reads: padding and unused payload capacity of mmap-binary.
    std::vector<std::pair<std::size_t, std::size_t>> unchecked_ranges(const std::string& f) const {
        std::vector<std::pair<std::size_t, std::size_t>> out;
        if (std::string(GetParam().backend) != "mmap-binary") return out;
        auto get64 = [&](std::size_t at) {
            std::uint64_t v = 0;
            for (int i = 7; i >= 0; --i) v = (v << 8) | static_cast<unsigned char>(f[at + static_cast<std::size_t>(i)]);
            return v;
        };
        // used: header 0-64, descriptors 512-1024-1536, each slot's payload
        std::vector<std::pair<std::size_t, std::size_t>> used = {{0, 64}, {512, 1536}};
        for (const std::size_t d : {std::size_t{512}, std::size_t{1024}}) {
            const auto off = get64(d + 16), len = get64(d + 32);
            if (off) used.emplace_back(static_cast<std::size_t>(off), static_cast<std::size_t>(off + len));
        }
        std::sort(used.begin(), used.end());
        std::size_t at = 0;
        for (const auto& [a, e] : used) {
            if (a > at) out.emplace_back(at, a);
            at = std::max(at, e);
        }
        if (at < f.size()) out.emplace_back(at, f.size());
        return out;
    }
    static bool in_ranges(const std::vector<std::pair<std::size_t, std::size_t>>& rs, std::size_t off) {
        for (const auto& [a, e] : rs)
            if (off >= a && off < e) return true;
        return false;
    }
    /// Cutting off only unused space at the end of an mmap-binary file, or
    /// only the final newline/whitespace of a JSON file, changes nothing.
    bool truncation_harmless(const std::string& f, std::size_t len) const {
        const auto rs = unchecked_ranges(f);
        if (!rs.empty() && rs.back().second == f.size() && len >= rs.back().first) return true;
        if (std::string(GetParam().backend) == "json-files")
            return f.find_first_not_of(" \n\r\t", len) == std::string::npos;
        return false;
    }
};

TEST_P(Corruption, EveryByteChangeAndTruncationOfASmallStateIsDetected) { run_all(2, 1, 0); }

// Sample count: TRADESTATE_CORRUPTION_SAMPLES (ctest sets a bounded default; 2000 when run by hand).
TEST_P(Corruption, SampledByteChangesAndTruncationsOfALargeStateAreDetected) {
    const char* env = std::getenv("TRADESTATE_CORRUPTION_SAMPLES");
    const std::size_t samples = env && *env ? static_cast<std::size_t>(std::strtoul(env, nullptr, 10)) : 2000;
    run_all(400, 300, samples);
}

/// After a load fell back to the previous state, the damaged bytes are kept
/// aside as a `*.corrupt-*` file (at the latest by the next save), the next
/// save succeeds and the one after loads it.
TEST_P(Corruption, DamagedFileIsKeptAsideAndTheNextSaveHeals) {
    TempDir tmp;
    const fs::path dir = tmp.path() / "state";
    auto b = open_backend(GetParam().backend, opts_in(dir));
    const auto older = make_doc(20, 10, 1, 1), newest = make_doc(21, 11, 2, 2), next = make_doc(22, 12, 3, 3);
    const fs::path file = prepare(*b, dir, older, newest);
    const std::string good = read_all(file);
    // damage the newest copy near the end of the file (json: inside the
    // document text; mmap: inside the newest slot's payload; archive: the
    // last record)
    std::size_t off = good.size() - 40;
    if (std::string(GetParam().backend) == "mmap-binary") {
        // the newest slot is the one with the higher sequence
        auto get64 = [&](std::size_t at) {
            std::uint64_t v = 0;
            for (int i = 7; i >= 0; --i) v = (v << 8) | static_cast<unsigned char>(good[at + static_cast<std::size_t>(i)]);
            return v;
        };
        const std::size_t d = get64(512 + 8) > get64(1024 + 8) ? 512 : 1024;
        off = static_cast<std::size_t>(get64(d + 16) + get64(d + 32) / 2);
    }
    std::string bad = good;
    bad[off] = static_cast<char>(bad[off] ^ 0x5a);
    write_in_place(file, bad);
    auto r = b->load(session);
    ASSERT_TRUE(r.has_value());
    ASSERT_TRUE(r->recovered) << "damage at offset " << off << " was not noticed";
    ASSERT_TRUE(same_doc(r->doc, older));
    save_doc(*b, session, next);
    auto after = b->load(session);
    ASSERT_TRUE(after && same_doc(after->doc, next) && !after->recovered);
    // find the kept-aside bytes
    std::vector<fs::path> aside;
    for (auto& e : fs::recursive_directory_iterator(dir))
        if (e.is_regular_file() && e.path().filename().string().find(".corrupt-") != std::string::npos)
            aside.push_back(e.path());
    ASSERT_FALSE(aside.empty()) << "no *.corrupt-* file was kept in " << dir;
    bool holds_damage = false;
    for (const auto& p : aside) {
        const std::string a = read_all(p);
        // the whole damaged file, or (archive) the damaged tail
        if (a == bad || (a.size() < bad.size() && bad.compare(bad.size() - a.size(), a.size(), a) == 0))
            holds_damage = true;
    }
    EXPECT_TRUE(holds_damage) << "the kept-aside file does not hold the damaged bytes: " << aside.front();
    std::cout << "[ figures ] " << GetParam().backend << ": damaged copy kept as " << aside.front().string()
              << std::endl;
}

/// Run a command, return (exit status, stdout+stderr).
std::pair<int, std::string> run_cmd(const std::vector<std::string>& argv) {
    std::string out;
    const int rc = run(argv, &out);
    return {rc, out};
}

/// `tradestate verify` (the real binary) on damaged files of a real
/// fno_runner session: exit status 1 and the file named, every time.
TEST_P(Corruption, TradestateVerifyExitsNonZeroAndNamesTheFile) {
    TempDir tmp;
    const fs::path dir = tmp.path() / "state", cfg = tmp.path() / "config.toml";
    {
        std::ofstream f(cfg);
        f << "[persistence]\nbackend = \"" << GetParam().backend << "\"\nstate_dir = \"" << dir.string()
          << "\"\nplugin_dir = \"" << plugin_dir().string() << "\"\nauto_save_every = 1\nfsync = false\n"
          << "[dashboard]\nenabled = false\n";
    }
    auto [rc0, out0] = run_cmd({runner_bin(), "--config", cfg.string(), "--fresh", "--no-dashboard",
                                "--iterations", "4", "--interval-ms", "0"});
    ASSERT_EQ(rc0, 0) << out0;
    std::string file_rel = GetParam().file;
    if (std::string(GetParam().backend) == "json-files") file_rel = "fno_system_state.json";
    else file_rel.replace(0, 4, "default");
    const fs::path file = dir / file_rel;
    ASSERT_TRUE(fs::exists(file)) << file;
    const std::vector<std::string> verify = {tool_bin(), "-c", cfg.string(), "verify"};
    auto [rc1, out1] = run_cmd(verify);
    ASSERT_EQ(rc1, 0) << "verify fails on an undamaged session:\n" << out1;
    const std::string good = read_all(file);
    const auto ranges = unchecked_ranges(good);
    std::vector<std::size_t> offs;
    for (std::size_t i = 0; offs.size() < 40 && i < 4000; ++i) {
        const std::size_t o = (i * 7919) % good.size();
        if (!in_ranges(ranges, o) && std::find(offs.begin(), offs.end(), o) == offs.end()) offs.push_back(o);
    }
    long runs = 0;
    auto check = [&](const std::string& what) {
        auto [rc, out] = run_cmd(verify);
        ++runs;
        // mmap-binary: damage to the OLDER slot is what a crash mid-save leaves
        // too (a torn write of the inactive slot), so verify reports it as a
        // warning naming the slot while the newest state is intact.
        const bool older_slot_warning = std::string(GetParam().backend) == "mmap-binary" && rc == 0 &&
                                        out.find("warning: " + file.string() + " slot") != std::string::npos;
        if (!older_slot_warning) {
            EXPECT_NE(rc, 0) << what << ": tradestate verify exited 0:\n" << out;
        }
        EXPECT_NE(out.find(file.filename().string()), std::string::npos) << what << ": the file is not named:\n" << out;
    };
    for (const auto o : offs) {
        put_byte(file, o, static_cast<char>(good[o] ^ '\xff'));
        check("byte " + std::to_string(o) + " flipped");
        put_byte(file, o, good[o]);
        if (HasFailure()) return;
    }
    const std::size_t limit = ranges.empty() || ranges.back().second != good.size() ? good.size() : ranges.back().first;
    for (int k = 0; k < 8; ++k) {
        const auto len = static_cast<std::size_t>(limit * static_cast<std::size_t>(k) / 8);
        ASSERT_EQ(::truncate(file.c_str(), static_cast<off_t>(len)), 0);
        check("truncated to " + std::to_string(len));
        write_in_place(file, good);
        if (HasFailure()) return;
    }
    std::cout << "[ figures ] " << GetParam().backend << ": tradestate verify run on " << runs
              << " damaged copies of " << file.filename().string() << ": exit 1 and the file named every time"
              << std::endl;
}

std::string param_name(const ::testing::TestParamInfo<Target>& info) {
    std::string n = info.param.backend;
    for (auto& ch : n)
        if (!std::isalnum(static_cast<unsigned char>(ch))) ch = '_';
    return n;
}

INSTANTIATE_TEST_SUITE_P(FileBackends, Corruption, ::testing::ValuesIn(targets), param_name);

} // namespace
