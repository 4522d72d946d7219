// The backend conformance suite: the same cases against every backend listed
// in backends.hpp, each loaded from the build's plugin dir through the real
// Boost.DLL plugin loader.
#include "support.hpp"

#include <tradestate/detail/session_name.hpp>
#include <tradestate/journal_format.hpp>

#include <gtest/gtest.h>

#include <random>

#include <atomic>
#include <chrono>
#include <csignal>
#include <cstring>
#include <iostream>
#include <map>
#include <memory>
#include <set>
#include <thread>

#include <pwd.h>
#include <sys/stat.h>

using namespace tradestate;
using namespace tradestate::testing;

namespace {

class Conformance : public ::testing::TestWithParam<BackendEntry> {
protected:
    void SetUp() override {
        state_ = tmp_.path() / "state";
        std::string skip;
        auto o = options_for(GetParam(), state_, skip);
        if (!o) GTEST_SKIP() << skip;
        opts_ = *o;
        backend_ = open_backend(GetParam().name, opts_);
    }

    /// A second, independent instance of the backend (as another process would have).
    std::shared_ptr<Backend> reopen() { return open_backend(GetParam().name, opts_); }

    TempDir tmp_;
    fs::path state_;
    BackendOptions opts_;
    std::shared_ptr<Backend> backend_;
};

std::string param_name(const ::testing::TestParamInfo<BackendEntry>& info) {
    std::string n = info.param.name;
    for (auto& c : n)
        if (!std::isalnum(static_cast<unsigned char>(c))) c = '_';
    return n;
}

TEST_P(Conformance, RoundTripOfEmptyDocuments) {
    const json::value empty_object = json::object{};
    backend_->save("empty", Document{empty_object, {}}, SaveMeta{});
    const auto flat = make_doc(0, 0, 1, 0);
    save_doc(*backend_, "flat", flat);

    auto r = backend_->load("empty");
    ASSERT_TRUE(r);
    EXPECT_TRUE(same_doc(r->doc, empty_object)) << detail::print(r->doc);
    EXPECT_EQ(r->meta.positions, 0);
    EXPECT_FALSE(r->recovered);

    r = backend_->load("flat");
    ASSERT_TRUE(r);
    EXPECT_TRUE(same_doc(r->doc, flat)) << detail::print(r->doc);
    EXPECT_EQ(r->meta.saved_at, meta_of(flat).saved_at);
    EXPECT_EQ(r->meta.cash_paise, meta_of(flat).cash_paise);
    EXPECT_FALSE(backend_->load("never-saved").has_value());
}

TEST_P(Conformance, RoundTripOfLargeDocument) {
    const auto doc = make_doc(100000, 100000, 7, 123456);
    const auto t0 = std::chrono::steady_clock::now();
    save_doc(*backend_, "large", doc);
    const auto t1 = std::chrono::steady_clock::now();
    auto r = reopen()->load("large");
    const auto t2 = std::chrono::steady_clock::now();
    ASSERT_TRUE(r);
    EXPECT_FALSE(r->recovered);
    EXPECT_TRUE(same_doc(r->doc, doc));
    EXPECT_EQ(r->meta.positions, 100000);
    EXPECT_EQ(r->meta.iteration, 123456);
    EXPECT_EQ(r->meta.cash_paise, meta_of(doc).cash_paise);
    using ms = std::chrono::milliseconds;
    std::cout << "[ info ] " << GetParam().name << ": 100,000 positions + 100,000 trades saved in "
              << std::chrono::duration_cast<ms>(t1 - t0).count() << " ms, loaded in "
              << std::chrono::duration_cast<ms>(t2 - t1).count() << " ms\n";
}

TEST_P(Conformance, UnicodeInStrategyNamesAndKeys) {
    const std::vector<std::string> names = {"स्ट्रैडल", "鉄コンドル", "стрэнгл 🦅", "\"quoted\" \\ back\nslash\t\x01"};
    for (std::size_t i = 0; i < names.size(); ++i) {
        auto doc = make_doc(3, 2, 100 + i, static_cast<std::int64_t>(i), names[i]);
        doc.as_object()["portfolio"].as_object()["positions"].as_object()["निफ्टी_" + names[i]] =
            json::object{{"shares", 1}, {"strategy", names[i]}};
        const std::string session = "uni" + std::to_string(i);
        save_doc(*backend_, session, doc);
        auto r = reopen()->load(session);
        ASSERT_TRUE(r);
        EXPECT_TRUE(same_doc(r->doc, doc)) << names[i];
    }
}

TEST_P(Conformance, ListReportsEverySessionWithMetadata) {
    EXPECT_TRUE(backend_->list().empty());
    const auto a = make_doc(4, 1, 11, 25), b = make_doc(9, 3, 12, 40);
    save_doc(*backend_, "default", a);
    save_doc(*backend_, "alpha", b);
    save_doc(*backend_, "alpha", b); // twice: sequence 2
    auto l = reopen()->list();
    ASSERT_EQ(l.size(), 2u);
    EXPECT_EQ(l[0].session, "alpha"); // sorted
    EXPECT_EQ(l[1].session, "default");
    const auto ma = meta_of(a), mb = meta_of(b);
    EXPECT_EQ(l[0].meta.iteration, mb.iteration);
    EXPECT_EQ(l[0].meta.positions, mb.positions);
    EXPECT_EQ(l[0].meta.cash_paise, mb.cash_paise);
    EXPECT_EQ(l[0].meta.saved_at, mb.saved_at);
    EXPECT_EQ(l[1].meta.iteration, ma.iteration);
    EXPECT_EQ(l[1].meta.positions, ma.positions);
    EXPECT_EQ(l[1].meta.cash_paise, ma.cash_paise);
    EXPECT_GT(l[0].sequence, l[1].sequence);
    EXPECT_FALSE(l[0].location.empty());
    EXPECT_EQ(l[0].location.find("corrupt"), std::string::npos) << l[0].location;
}

TEST_P(Conformance, RemoveDeletesOnlyThatSession) {
    const auto a = make_doc(2, 1, 21, 1), b = make_doc(3, 1, 22, 2);
    save_doc(*backend_, "keep", a);
    save_doc(*backend_, "gone", b);
    save_doc(*backend_, "gone", a);
    EXPECT_TRUE(backend_->exists("gone"));
    EXPECT_TRUE(backend_->remove("gone"));
    EXPECT_FALSE(backend_->exists("gone"));
    EXPECT_FALSE(backend_->load("gone").has_value());
    EXPECT_FALSE(backend_->remove("gone"));
    auto other = reopen();
    EXPECT_FALSE(other->exists("gone"));
    ASSERT_EQ(other->list().size(), 1u);
    EXPECT_EQ(other->list()[0].session, "keep");
    auto r = other->load("keep");
    ASSERT_TRUE(r);
    EXPECT_TRUE(same_doc(r->doc, a));
    // a removed session can be saved again from scratch
    save_doc(*backend_, "gone", b);
    r = other->load("gone");
    ASSERT_TRUE(r);
    EXPECT_TRUE(same_doc(r->doc, b));
}

TEST_P(Conformance, ManySessions) {
    constexpr int n = 150;
    std::vector<std::string> names;
    for (int i = 0; i < n; ++i) {
        names.push_back("s-" + std::to_string(i * 7919 % 1000) + "_" + std::to_string(i));
        save_doc(*backend_, names.back(), make_doc(static_cast<std::size_t>(i % 5), 1, static_cast<std::uint64_t>(i), i));
    }
    std::sort(names.begin(), names.end());
    auto other = reopen();
    const auto l = other->list();
    ASSERT_EQ(l.size(), names.size());
    for (std::size_t i = 0; i < names.size(); ++i) EXPECT_EQ(l[i].session, names[i]);
    for (int i = 0; i < n; i += 13) {
        const std::string s = "s-" + std::to_string(i * 7919 % 1000) + "_" + std::to_string(i);
        auto r = other->load(s);
        ASSERT_TRUE(r) << s;
        EXPECT_TRUE(same_doc(r->doc, make_doc(static_cast<std::size_t>(i % 5), 1, static_cast<std::uint64_t>(i), i)));
    }
}

TEST_P(Conformance, OverwriteIncreasesSequence) {
    std::uint64_t last = 0;
    for (int i = 1; i <= 6; ++i) {
        const auto doc = make_doc(static_cast<std::size_t>(i * 3), static_cast<std::size_t>(i), 300 + static_cast<std::uint64_t>(i), i);
        save_doc(*backend_, "ow", doc);
        auto r = reopen()->load("ow");
        ASSERT_TRUE(r);
        EXPECT_TRUE(same_doc(r->doc, doc));
        EXPECT_GT(r->sequence, last);
        EXPECT_EQ(r->meta.iteration, i);
        last = r->sequence;
    }
    // a smaller document replaces a larger one completely
    const auto small = make_doc(0, 0, 1, 99);
    save_doc(*backend_, "ow", small);
    auto r = reopen()->load("ow");
    ASSERT_TRUE(r);
    EXPECT_TRUE(same_doc(r->doc, small));
    EXPECT_GT(r->sequence, last);
}

TEST_P(Conformance, ReloadAfterProcessRestart) {
    // another process saves, this one loads
    Child saver({"--child-save", GetParam().name, state_.string(), "restart", "250", "77"});
    ASSERT_EQ(saver.wait(), 0);
    auto r = reopen()->load("restart");
    ASSERT_TRUE(r);
    EXPECT_TRUE(same_doc(r->doc, make_doc(250, 250, 77, 77)));
    // this one saves, another process loads and compares
    save_doc(*backend_, "restart", make_doc(120, 30, 78, 78));
    Child loader({"--child-load", GetParam().name, state_.string(), "restart", "120", "78"});
    EXPECT_EQ(loader.wait(), 0);
}

TEST_P(Conformance, ConcurrentReadersSeeOnlyCompleteDocuments) {
    auto doc_for = [](std::int64_t k) {
        return make_doc(static_cast<std::size_t>(20 + (k % 5) * 300), static_cast<std::size_t>(k % 3) * 100,
                        static_cast<std::uint64_t>(k), k);
    };
    save_doc(*backend_, "live", doc_for(0));
    std::atomic<bool> done{false};
    std::atomic<int> reads{0}, failures{0};
    std::vector<std::string> problems[3];
    std::vector<std::thread> readers;
    for (int t = 0; t < 3; ++t) {
        readers.emplace_back([&, t] {
            auto b = reopen();
            std::int64_t seen = -1;
            while (!done.load()) {
                try {
                    auto r = b->load("live");
                    if (!r) { problems[t].push_back("session vanished"); ++failures; continue; }
                    const auto k = r->doc.as_object().at("iteration").as_int64();
                    if (!same_doc(r->doc, doc_for(k))) { problems[t].push_back("incomplete document for iteration " + std::to_string(k)); ++failures; }
                    if (k < seen) { problems[t].push_back("went back in time"); ++failures; }
                    seen = k;
                    ++reads;
                } catch (const std::exception& e) {
                    problems[t].push_back(e.what());
                    ++failures;
                }
            }
        });
    }
    for (std::int64_t k = 1; k <= 40; ++k) save_doc(*backend_, "live", doc_for(k));
    // let the readers see the final state at least once each
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
    const int before = reads.load();
    while (reads.load() < before + 3 && std::chrono::steady_clock::now() < deadline) std::this_thread::yield();
    done = true;
    for (auto& t : readers) t.join();
    EXPECT_EQ(failures.load(), 0) << (problems[0].empty() ? (problems[1].empty() ? (problems[2].empty() ? "" : problems[2][0]) : problems[1][0]) : problems[0][0]);
    EXPECT_GT(reads.load(), 3);
    auto r = backend_->load("live");
    ASSERT_TRUE(r);
    EXPECT_TRUE(same_doc(r->doc, doc_for(40)));
}

TEST_P(Conformance, CorruptedAndTruncatedFilesAreDetected) {
    if (!GetParam().files_in_state_dir) GTEST_SKIP() << GetParam().name << " keeps no files in the state dir";
    const auto older = make_doc(6, 2, 501, 1), newer = make_doc(8, 3, 502, 2);
    save_doc(*backend_, "victim", older);
    save_doc(*backend_, "victim", newer);
    const auto pristine = snapshot_files(state_);
    ASSERT_FALSE(pristine.empty()) << "the backend wrote no files under " << state_;

    struct Outcome { int newer = 0, older = 0, error = 0; };
    std::map<std::string, Outcome> per_file;
    std::mt19937 rng(42);
    auto check_load = [&](const std::string& what, Outcome& out) {
        std::optional<LoadResult> r;
        try {
            r = reopen()->load("victim");
        } catch (const Error& e) {
            EXPECT_TRUE(e.code() == Errc::corrupt || e.code() == Errc::parse) << what << ": " << e.what();
            EXPECT_NE(std::string(e.what()).size(), 0u);
            ++out.error;
            return;
        }
        ASSERT_TRUE(r.has_value()) << what << ": a saved session disappeared instead of being reported";
        if (same_doc(r->doc, newer)) {
            ++out.newer;
        } else if (same_doc(r->doc, older)) {
            EXPECT_TRUE(r->recovered || !r->warnings.empty()) << what << ": fell back to the older state silently";
            ++out.older;
        } else {
            ADD_FAILURE() << what << ": loaded a document that was never saved: " << detail::print(r->doc).substr(0, 300);
        }
        // list() and verify() must not throw or crash on a damaged store either
        EXPECT_NO_THROW((void)reopen()->list()) << what;
        EXPECT_NO_THROW((void)reopen()->verify("victim")) << what;
    };

    for (const auto& [path, bytes] : pristine) {
        const std::string rel = fs::relative(path, state_).string();
        std::vector<std::pair<std::string, std::string>> mutations;
        const std::size_t n = bytes.size();
        if (n > 0) {
            std::vector<std::size_t> offsets = {0, n / 2, n - 1};
            for (int i = 0; i < 6; ++i) offsets.push_back(rng() % n);
            for (auto off : offsets)
                for (const unsigned mask : {0x01u, 0x80u}) {
                    std::string m = bytes;
                    m[off] = static_cast<char>(static_cast<unsigned>(static_cast<unsigned char>(m[off])) ^ mask);
                    mutations.emplace_back("flip byte " + std::to_string(off) + " of " + rel, m);
                }
            for (std::size_t len : {std::size_t{0}, n / 2, n - 1})
                mutations.emplace_back("truncate " + rel + " to " + std::to_string(len) + " bytes", bytes.substr(0, len));
        }
        for (const auto& [what, content] : mutations) {
            restore_files(state_, pristine);
            write_bytes(path, content);
            check_load(what, per_file[rel]);
        }
    }
    // every file damaged at once: never a silent loss or wrong data
    restore_files(state_, pristine);
    for (const auto& [path, bytes] : pristine) write_bytes(path, bytes.substr(0, bytes.size() / 2));
    Outcome all;
    check_load("every file truncated to half", all);
    EXPECT_EQ(all.newer, 0) << "a load returned the newest state although every file was cut in half";

    for (const auto& [file, o] : per_file)
        std::cout << "[ info ] " << GetParam().name << " " << file << ": newest " << o.newer << ", previous " << o.older
                  << ", clear error " << o.error << "\n";
    // after restoring the files, the store is fine again
    restore_files(state_, pristine);
    auto r = reopen()->load("victim");
    ASSERT_TRUE(r);
    EXPECT_TRUE(same_doc(r->doc, newer));
}

TEST_P(Conformance, HostileSessionNamesAreRefused) {
    const auto root_before = all_paths(tmp_.path());
    const std::vector<std::string> hostile = {"../x", "a/b", "", std::string("a\0b", 3), std::string(65, 'n'),
                                              ".hidden", "..", ".", "a\\b", "/etc/passwd", "x y", "ünï"};
    const auto doc = make_doc(1, 0, 1, 1);
    for (const auto& name : hostile) {
        auto expect_refused = [&](const char* op, auto&& fn) {
            try {
                fn();
                ADD_FAILURE() << op << " accepted session name '" << name << "'";
            } catch (const Error& e) {
                EXPECT_EQ(e.code(), Errc::invalid_argument) << op << " '" << name << "': " << e.what();
            }
        };
        expect_refused("save", [&] { save_doc(*backend_, name, doc); });
        expect_refused("load", [&] { (void)backend_->load(name); });
        expect_refused("exists", [&] { (void)backend_->exists(name); });
        expect_refused("remove", [&] { (void)backend_->remove(name); });
        expect_refused("verify", [&] { (void)backend_->verify(name); });
        expect_refused("acquire_writer", [&] { (void)backend_->acquire_writer(name); });
    }
    // nothing was created anywhere: not outside the state dir, not inside it
    const auto root_after = all_paths(tmp_.path());
    for (const auto& p : root_after) {
        const bool inside_state = p.string().rfind(state_.string(), 0) == 0;
        EXPECT_TRUE(inside_state || std::find(root_before.begin(), root_before.end(), p) != root_before.end())
            << "created outside the state dir: " << p;
    }
    EXPECT_TRUE(backend_->list().empty());
    // the longest allowed name works
    const std::string longest(64, 'L');
    save_doc(*backend_, longest, doc);
    EXPECT_TRUE(backend_->exists(longest));
}

/// Drop to `nobody` in a forked child, make the state dir read-only and try to
/// save there; the child reports through its exit status.
TEST_P(Conformance, ReadOnlyStateDirFailsCleanly) {
    if (!GetParam().files_in_state_dir) GTEST_SKIP() << GetParam().name << " keeps no files in the state dir";
    const passwd* nobody = ::getpwnam("nobody");
    if (!nobody) GTEST_SKIP() << "no user 'nobody' on this machine";
    const auto good = make_doc(5, 2, 601, 10), next = make_doc(6, 2, 602, 11);
    save_doc(*backend_, "default", good);
    save_doc(*backend_, "named", good);
    // The plugin is loaded as root, before the drop: the build tree may be
    // unreachable for 'nobody' (a clone in a private directory).
    std::map<std::string, std::shared_ptr<Backend>> writers, readers;
    for (const std::string s : {"default", "named"}) {
        writers[s] = open_backend(GetParam().name, opts_);
        readers[s] = open_backend(GetParam().name, opts_);
    }
    // let 'nobody' reach and read the store, but not write it
    fs::permissions(tmp_.path(), fs::perms::owner_all | fs::perms::group_exec | fs::perms::others_exec);
    for (auto& e : fs::recursive_directory_iterator(state_))
        if (e.is_directory()) fs::permissions(e.path(), fs::perms(0555));
    fs::permissions(state_, fs::perms(0555));

    const pid_t pid = ::fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
        int code = 0;
        if (::setresgid(nobody->pw_gid, nobody->pw_gid, nobody->pw_gid) != 0 ||
            ::setresuid(nobody->pw_uid, nobody->pw_uid, nobody->pw_uid) != 0)
            ::_exit(90);
        if (::access(state_.c_str(), W_OK) == 0) ::_exit(91); // still writable: the test would prove nothing
        for (const std::string s : {"default", "named"}) {
            try {
                save_doc(*writers[s], s, next);
                std::cerr << "save of '" << s << "' into a read-only dir succeeded\n";
                code = code ? code : 10;
            } catch (const Error& e) {
                const std::string msg = e.what();
                if (e.code() != Errc::io) { std::cerr << "wrong code: " << msg << "\n"; code = code ? code : 11; }
                if (msg.find(state_.string()) == std::string::npos) {
                    std::cerr << "message does not name the path: " << msg << "\n";
                    code = code ? code : 12;
                }
            } catch (const std::exception& e) {
                std::cerr << "not a tradestate::Error: " << e.what() << "\n";
                code = code ? code : 13;
            }
            try {
                auto r = readers[s]->load(s);
                if (!r || !same_doc(r->doc, good)) { std::cerr << "previous state of '" << s << "' lost\n"; code = code ? code : 14; }
            } catch (const std::exception& e) {
                std::cerr << "cannot load '" << s << "' read-only: " << e.what() << "\n";
                code = code ? code : 15;
            }
        }
        std::cout.flush();
        ::_exit(code);
    }
    int st = 0;
    ::waitpid(pid, &st, 0);
    ASSERT_TRUE(WIFEXITED(st)) << "child died with signal " << WTERMSIG(st);
    EXPECT_EQ(WEXITSTATUS(st), 0) << "see the child's messages above (90: cannot drop privileges)";
    for (auto& e : fs::recursive_directory_iterator(state_))
        if (e.is_directory()) fs::permissions(e.path(), fs::perms(0755));
    fs::permissions(state_, fs::perms(0755));
    // still the old state, as root too
    auto r = reopen()->load("named");
    ASSERT_TRUE(r);
    EXPECT_TRUE(same_doc(r->doc, good));
}

TEST_P(Conformance, StateDirUnderARegularFileFailsWithIoError) {
    if (!GetParam().files_in_state_dir) GTEST_SKIP() << GetParam().name << " keeps no files in the state dir";
    const fs::path blocker = tmp_.path() / "not-a-dir";
    write_bytes(blocker, "x");
    BackendOptions o = opts_;
    o.state_dir = blocker / "state";
    try {
        auto b = open_backend(GetParam().name, o);
        save_doc(*b, "s", make_doc(1, 0, 1, 1));
        ADD_FAILURE() << "save under a regular file succeeded";
    } catch (const Error& e) {
        EXPECT_EQ(e.code(), Errc::io) << e.what();
        EXPECT_NE(std::string(e.what()).find(blocker.string()), std::string::npos) << e.what();
    }
}

/// kill -9 during a save leaves write_file_atomic's `.<file>.tmp.<pid>.<n>`
/// beside any file a backend keeps (main file, backups, index, day
/// archives): the next writer of the session removes those of writers that
/// are gone, and only those.
TEST_P(Conformance, TempFilesOfAKilledWriterAreRemovedByTheNextWriter) {
    if (!GetParam().files_in_state_dir) GTEST_SKIP() << GetParam().name << " keeps no files in the state dir";
    for (int i = 0; i < 4; ++i) save_doc(*backend_, "s", make_doc(i, 1, 100 + i, i));
    const pid_t dead = ::fork();
    ASSERT_GE(dead, 0);
    if (dead == 0) ::_exit(0);
    ASSERT_EQ(::waitpid(dead, nullptr, 0), dead);
    std::vector<fs::path> stale, live;
    for (const auto& e : fs::recursive_directory_iterator(state_))
        if (e.is_regular_file() && e.path().filename().string().front() != '.') {
            const fs::path dir = e.path().parent_path();
            const std::string name = e.path().filename().string();
            stale.push_back(dir / ("." + name + ".tmp." + std::to_string(dead) + ".1"));
            live.push_back(dir / ("." + name + ".tmp." + std::to_string(::getpid()) + ".9"));
        }
    ASSERT_FALSE(stale.empty());
    for (const auto& p : stale) spit(p, "half a save");
    for (const auto& p : live) spit(p, "a save in progress");
    {
        auto b = reopen();
        auto lease = b->acquire_writer("s");
        save_doc(*b, "s", make_doc(9, 1, 109, 9));
    }
    for (const auto& p : stale) EXPECT_FALSE(fs::exists(p)) << p << " was left behind";
    for (const auto& p : live) EXPECT_TRUE(fs::exists(p)) << p << " of a live writer was removed";
    EXPECT_TRUE(same_doc(reopen()->load("s")->doc, make_doc(9, 1, 109, 9)));
}

/// A FIFO (or anything but a regular file) where a stored file should be
/// never blocks a reader: load, verify and list finish, and what they say
/// names the path. Each file the backend keeps is replaced in turn.
TEST_P(Conformance, AFifoWhereAFileShouldBeNeverHangsAndIsNamed) {
    if (!GetParam().files_in_state_dir) GTEST_SKIP() << GetParam().name << " keeps no files in the state dir";
    for (int i = 0; i < 3; ++i) save_doc(*backend_, "s", make_doc(i, 1, 100 + i, i));
    std::vector<fs::path> files;
    for (const auto& e : fs::recursive_directory_iterator(state_))
        if (e.is_regular_file() && e.path().extension() != ".lock") files.push_back(e.path());
    ASSERT_FALSE(files.empty());
    for (const auto& f : files) {
        SCOPED_TRACE(f.string());
        const fs::path kept = f.string() + ".kept";
        fs::rename(f, kept);
        ASSERT_EQ(::mkfifo(f.c_str(), 0644), 0);
        int out[2];
        ASSERT_EQ(::pipe(out), 0);
        const pid_t pid = ::fork();
        ASSERT_GE(pid, 0);
        if (pid == 0) {
            ::close(out[0]);
            std::string said;
            try {
                auto b = open_backend(GetParam().name, opts_);
                try {
                    auto r = b->load("s");
                    if (r) for (const auto& w : r->warnings) said += w + "\n";
                } catch (const std::exception& e) {
                    said += std::string(e.what()) + "\n";
                }
                for (const auto& x : b->verify("s").findings) said += x.where + ": " + x.message + "\n";
                (void)b->list();
            } catch (const std::exception& e) {
                said += std::string("outside: ") + e.what() + "\n";
            }
            (void)!::write(out[1], said.data(), said.size());
            ::_exit(0);
        }
        ::close(out[1]);
        int st = 0;
        bool done = false;
        for (int k = 0; k < 300 && !done; ++k) {
            done = ::waitpid(pid, &st, WNOHANG) == pid;
            if (!done) std::this_thread::sleep_for(std::chrono::milliseconds(50));
        }
        if (!done) {
            ::kill(pid, SIGKILL);
            ::waitpid(pid, &st, 0);
        }
        std::string said;
        char buf[4096];
        for (ssize_t n; (n = ::read(out[0], buf, sizeof buf)) > 0;) said.append(buf, static_cast<std::size_t>(n));
        ::close(out[0]);
        EXPECT_TRUE(done) << "a reader hung on the FIFO for 15 s";
        EXPECT_NE(said.find(f.filename().string()), std::string::npos) << "the FIFO is not named:\n" << said;
        fs::remove(f);
        fs::rename(kept, f);
    }
    EXPECT_TRUE(same_doc(reopen()->load("s")->doc, make_doc(2, 1, 102, 2)));
    // A FIFO as the lease's lock file would take no lock: the writer is
    // refused. The lease's lock file is the one acquire_writer creates.
    auto locks = [&] {
        std::vector<fs::path> v;
        for (const auto& e : fs::recursive_directory_iterator(state_))
            if (e.path().extension() == ".lock") v.push_back(e.path());
        return v;
    };
    for (const auto& l : locks()) fs::remove(l);
    (void)backend_->acquire_writer("s");
    const auto lease_files = locks();
    ASSERT_FALSE(lease_files.empty()) << "acquire_writer left no .lock file in the state dir";
    for (const auto& lock : lease_files) {
        fs::remove(lock);
        ASSERT_EQ(::mkfifo(lock.c_str(), 0644), 0);
        try {
            (void)backend_->acquire_writer("s");
            ADD_FAILURE() << "a FIFO " << lock << " was taken as a lock";
        } catch (const std::exception& x) {
            EXPECT_NE(std::string(x.what()).find(lock.filename().string()), std::string::npos) << x.what();
        }
        fs::remove(lock);
    }
}

TEST_P(Conformance, SecondWriterIsRefusedNamingTheHolder) {
    {
        auto lease = backend_->acquire_writer("w");
        ASSERT_TRUE(lease);
        EXPECT_TRUE(lease->valid());
        // the same process, another instance
        try {
            (void)reopen()->acquire_writer("w");
            ADD_FAILURE() << "a second lease was granted";
        } catch (const Error& e) {
            EXPECT_EQ(e.code(), Errc::locked) << e.what();
        }
        // another session is independent
        EXPECT_NO_THROW((void)reopen()->acquire_writer("other"));
    }
    // another process holds it
    Child holder({"--child-lock", GetParam().name, state_.string(), "w"});
    auto line = holder.read_line();
    ASSERT_TRUE(line.has_value());
    ASSERT_EQ(*line, "locked");
    try {
        (void)backend_->acquire_writer("w");
        ADD_FAILURE() << "lease granted while process " << holder.pid() << " holds it";
    } catch (const Error& e) {
        EXPECT_EQ(e.code(), Errc::locked) << e.what();
        EXPECT_NE(std::string(e.what()).find(std::to_string(holder.pid())), std::string::npos)
            << "message does not name the holder pid " << holder.pid() << ": " << e.what();
    }
    // the holder dies without cleaning up: the lease is free again
    ::kill(holder.pid(), SIGKILL);
    holder.wait();
    auto lease = backend_->acquire_writer("w");
    EXPECT_TRUE(lease && lease->valid());
}

INSTANTIATE_TEST_SUITE_P(Backends, Conformance, ::testing::ValuesIn(conformance_backends()), param_name);

TEST(ConformanceList, EveryPluginInThePluginDirIsListed) {
    PluginLoader loader({plugin_dir()}, quiet_logger());
    const auto found = loader.available();
    EXPECT_FALSE(found.empty()) << "no plugins in " << plugin_dir();
    for (const auto& name : found) {
        bool listed = false;
        for (const auto& e : conformance_backends()) listed = listed || name == e.name;
        EXPECT_TRUE(listed) << "plugin '" << name << "' in " << plugin_dir()
                            << " is not in tests/conformance/backends.hpp: add its one line there";
    }
}

// ------------------------------------------------------- child process modes

int child_main(int argc, char** argv) {
    const std::string mode = argv[1];
    try {
        if ((mode == "--child-save" || mode == "--child-load") && argc == 7) {
            const std::string name = argv[2];
            std::string skip;
            auto o = options_for(entry_named(name), argv[3], skip);
            if (!o) { std::cerr << skip << "\n"; return 3; }
            auto b = open_backend(name, *o);
            const auto n = static_cast<std::size_t>(std::stoul(argv[5]));
            const auto seed = std::stoll(argv[6]);
            const auto doc = mode == "--child-save" ? make_doc(n, n, static_cast<std::uint64_t>(seed), seed)
                                                    : make_doc(n, 30, static_cast<std::uint64_t>(seed), seed);
            if (mode == "--child-save") {
                save_doc(*b, argv[4], doc);
                return 0;
            }
            auto r = b->load(argv[4]);
            if (!r) { std::cerr << "nothing to load\n"; return 4; }
            if (!same_doc(r->doc, doc)) { std::cerr << "loaded a different document\n"; return 5; }
            return 0;
        }
        if (mode == "--child-lock" && argc == 5) {
            std::string skip;
            auto o = options_for(entry_named(argv[2]), argv[3], skip);
            if (!o) return 3;
            auto b = open_backend(argv[2], *o);
            auto lease = b->acquire_writer(argv[4]);
            std::cout << "locked" << std::endl;
            while (true) ::pause(); // until the parent kills us
        }
    } catch (const std::exception& e) {
        std::cerr << mode << ": " << e.what() << "\n";
        return 2;
    }
    std::cerr << "bad child arguments\n";
    return 64;
}

} // namespace

int main(int argc, char** argv) {
    if (argc > 1 && std::strncmp(argv[1], "--child-", 8) == 0) return child_main(argc, argv);
    ::testing::InitGoogleTest(&argc, argv);
    return RUN_ALL_TESTS();
}

// ---- optional capabilities ------------------------------------------------
// Each runs where the backend says it has the capability (has_history(),
// has_journal(), stores_views()); where it does not, the calls must say
// "unsupported". A backend that claims one is proven by its line in
// backends.hpp like everything above.

namespace {

JournalEntry entry(std::uint64_t seq, std::int64_t paise) {
    JournalEntry e;
    e.seq = seq;
    e.payload = detail::print(json::value(json::object{{"op", "cash"}, {"amount_paise", paise}, {"reason", "t"}}), {-1});
    e.checksum = detail::record_checksum(e.seq, e.payload);
    return e;
}

template <class F>
void expect_unsupported(F&& f, const std::string& what) {
    try {
        f();
        ADD_FAILURE() << what << " worked on a backend that does not claim it";
    } catch (const Error& e) {
        EXPECT_EQ(e.code(), Errc::unsupported) << what << ": " << e.what();
    }
}

} // namespace

TEST_P(Conformance, HistoryListsEverySaveAndLoadAtReturnsEach) {
    if (!backend_->has_history()) {
        expect_unsupported([&] { (void)backend_->history("h"); }, "history()");
        expect_unsupported([&] { (void)backend_->load_at("h", 1); }, "load_at()");
        GTEST_SKIP() << GetParam().name << " keeps no history";
    }
    std::vector<std::uint64_t> seqs;
    std::vector<json::value> docs;
    for (int i = 0; i < 4; ++i) {
        docs.push_back(make_doc(static_cast<std::size_t>(i), 1, 300 + static_cast<std::uint64_t>(i), i));
        seqs.push_back(save_doc(*backend_, "h", docs.back()));
    }
    const auto h = reopen()->history("h");
    ASSERT_EQ(h.size(), 4u);
    for (std::size_t i = 0; i < h.size(); ++i) {
        EXPECT_EQ(h[i].sequence, seqs[i]) << "history is not in save order";
        EXPECT_EQ(h[i].meta.iteration, meta_of(docs[i]).iteration);
        const auto r = backend_->load_at("h", seqs[i]);
        ASSERT_TRUE(r) << "load_at(" << seqs[i] << ")";
        EXPECT_TRUE(same_doc(r->doc, docs[i])) << "load_at(" << seqs[i] << ") is not what that save stored";
        EXPECT_EQ(r->sequence, seqs[i]);
    }
    EXPECT_FALSE(backend_->load_at("h", seqs.back() + 100).has_value());
    EXPECT_TRUE(backend_->history("never-saved").empty());
}

TEST_P(Conformance, TheJournalItKeepsIsAppendedReadCompactedAndFenced) {
    if (!backend_->has_journal()) {
        expect_unsupported([&] { (void)backend_->journal_read("j"); }, "journal_read()");
        expect_unsupported([&] { backend_->journal_start("j", 1, 0); }, "journal_start()");
        GTEST_SKIP() << GetParam().name << " keeps no journal (the host keeps <session>.journal)";
    }
    EXPECT_FALSE(backend_->journal_read("j").has_value());
    {
        auto lease = backend_->acquire_writer("j");
        backend_->journal_start("j", 0x77, 10);
        backend_->journal_append("j", 0x77, {entry(11, 1), entry(12, 2)}, true);
        backend_->journal_append("j", 0x77, {entry(13, 3)}, false);
        auto j = reopen()->journal_read("j");
        ASSERT_TRUE(j);
        EXPECT_EQ(j->id, 0x77u);
        EXPECT_EQ(j->base_seq, 10u);
        auto c = decode_journal(*j);
        ASSERT_TRUE(c.intact()) << c.corruption;
        ASSERT_EQ(c.records.size(), 3u);
        EXPECT_EQ(c.records[2].seq, 13u);
        // a gap and another journal's id are refused
        EXPECT_THROW(backend_->journal_append("j", 0x77, {entry(15, 5)}, true), Error);
        EXPECT_THROW(backend_->journal_append("j", 0x78, {entry(14, 4)}, true), Error);
        // a snapshot holds 11 and 12: they go
        backend_->journal_compact("j", 0x77, 12);
        c = decode_journal(*backend_->journal_read("j"));
        EXPECT_EQ(c.base_seq, 12u);
        ASSERT_EQ(c.records.size(), 1u);
        EXPECT_EQ(c.records[0].seq, 13u);
        // another process without the lease cannot append
        auto other = reopen();
        try {
            other->journal_append("j", 0x77, {entry(14, 4)}, true);
            ADD_FAILURE() << "an append without the writer lease landed";
        } catch (const Error& e) {
            EXPECT_EQ(e.code(), Errc::locked) << e.what();
        }
    }
    EXPECT_EQ(decode_journal(*backend_->journal_read("j")).records.size(), 1u);
}

TEST_P(Conformance, ViewsNeverChangeTheMainDocument) {
    // Whether or not the backend keeps them (stores_views()), views are
    // accepted, and load() returns the main document alone.
    const auto doc = make_doc(2, 2, 400, 3);
    Document d = as_document(doc);
    d.views["current_state"] = json::object{{"k", 1}};
    d.views["extra_view"] = json::object{{"x", json::array{1, 2, 3}}};
    (void)backend_->save("v", d, meta_of(doc));
    const auto r = reopen()->load("v");
    ASSERT_TRUE(r);
    EXPECT_TRUE(same_doc(r->doc, doc));
    if (!backend_->stores_views()) {
        // a backend that does not keep them writes nothing for them
        EXPECT_FALSE(fs::exists(state_ / "current_state.json"));
        EXPECT_FALSE(fs::exists(state_ / "extra_view.json"));
    }
}
