// json-files specific tests: seed compatibility, the `_tradestate` member and
// its checksum, backups, file names. The backend is loaded through the real
// plugin loader like everywhere else.
#include "support.hpp"

#include <tradestate/detail/atomic_file.hpp>

#include <gtest/gtest.h>

#include <sys/stat.h>

using namespace tradestate;
using namespace tradestate::testing;

namespace {

const fs::path data_dir = tradestate::testing::data_dir();

std::string read_text(const fs::path& p) { return detail::read_file(p); }

class JsonFiles : public ::testing::Test {
protected:
    void SetUp() override {
        state_ = tmp_.path() / "state";
        fs::create_directories(state_);
        std::string skip;
        auto o = options_for(entry_named("json-files"), state_, skip);
        if (!o) GTEST_SKIP() << skip;
        opts_ = *o;
        b_ = open_backend("json-files", opts_);
    }
    std::shared_ptr<Backend> reopen(int keep_backups = 3) {
        auto o = opts_;
        o.keep_backups = keep_backups;
        return open_backend("json-files", o);
    }
    static bool has(const std::vector<std::string>& v, const std::string& needle) {
        for (const auto& s : v)
            if (s.find(needle) != std::string::npos) return true;
        return false;
    }
    TempDir tmp_;
    fs::path state_;
    BackendOptions opts_;
    std::shared_ptr<Backend> b_;
};

TEST_F(JsonFiles, SeedDocumentLoadsWithANotice) {
    const std::string seed = read_text(data_dir / "seed_fno_system_state.json");
    fs::copy_file(data_dir / "seed_fno_system_state.json", state_ / "fno_system_state.json");
    auto r = b_->load("default");
    ASSERT_TRUE(r);
    EXPECT_TRUE(same_doc(r->doc, detail::parse(seed, "seed")));
    EXPECT_FALSE(r->recovered);
    EXPECT_TRUE(has(r->warnings, "no checksum (written by another program); loaded as is")) << r->warnings.size();
    EXPECT_EQ(r->meta.iteration, 25);
    EXPECT_EQ(r->meta.positions, 1);
    EXPECT_EQ(r->meta.cash_paise, 91446259);
    EXPECT_EQ(r->meta.saved_at, "2025-09-29T11:49:10.218268");
    // our printing reproduces the seed's text byte for byte
    std::string expected = seed;
    while (!expected.empty() && expected.back() == '\n') expected.pop_back();
    EXPECT_EQ(detail::print(r->doc), expected);

    const auto l = b_->list();
    ASSERT_EQ(l.size(), 1u);
    EXPECT_EQ(l[0].session, "default");
    EXPECT_EQ(l[0].meta.cash_paise, 91446259);
    EXPECT_EQ(l[0].sequence, 0u);
    auto v = b_->verify("default");
    EXPECT_TRUE(v.ok());

    // saving over it keeps the seed's file as a backup and every seed field as it was
    Document d;
    d.main = r->doc;
    b_->save("default", d, r->meta);
    EXPECT_EQ(read_text(state_ / "backups" / "fno_system_state.0.json"), seed);
    const std::string now = read_text(state_ / "fno_system_state.json");
    EXPECT_EQ(now.substr(0, expected.size() - 2), expected.substr(0, expected.size() - 2));
    EXPECT_EQ(now.substr(expected.size() - 2, 18), ",\n  \"_tradestate\":");
    auto r2 = b_->load("default");
    ASSERT_TRUE(r2);
    EXPECT_TRUE(r2->warnings.empty());
    EXPECT_EQ(r2->sequence, 1u);
    EXPECT_TRUE(same_doc(r2->doc, r->doc));
}

TEST_F(JsonFiles, PythonWrittenVariantsLoad) {
    if (!fs::exists("/usr/bin/python3")) GTEST_SKIP() << "/usr/bin/python3 is not installed; cannot write Python variants";
    const auto expected_seed = detail::parse(read_text(data_dir / "seed_fno_system_state.json"), "seed");
    auto expected_uni = expected_seed;
    expected_uni.as_object()["portfolio"].as_object()["positions"].as_object()["NIFTY25SEP24650CE"].as_object()["strategy"] =
        "स्ट्रैडल 🦅";
    struct Variant { const char* name; const char* args; const json::value* expect; };
    const Variant variants[] = {
        {"compact", "", &expected_seed},
        {"indent2", "indent=2", &expected_seed},
        {"indent4", "indent=4", &expected_seed},
        {"sorted", "indent=1, sort_keys=True", &expected_seed},
        {"ascii-escaped-unicode", "indent=2", &expected_uni},
        {"raw-unicode", "ensure_ascii=False", &expected_uni},
    };
    for (const auto& v : variants) {
        const fs::path out = state_ / "sessions" / v.name / "fno_system_state.json";
        fs::create_directories(out.parent_path());
        const bool uni = v.expect == &expected_uni;
        const std::string script =
            "import json,sys\nd=json.load(open(sys.argv[1]))\n" +
            std::string(uni ? "d['portfolio']['positions']['NIFTY25SEP24650CE']['strategy']='\\u0938\\u094d\\u091f\\u094d\\u0930\\u0948\\u0921\\u0932 \\U0001F985'\n" : "") +
            "json.dump(d, open(sys.argv[2],'w')" + (std::string(v.args).empty() ? "" : ", ") + v.args + ")\n";
        const fs::path py = tmp_.path() / "gen.py";
        write_bytes(py, script);
        const std::string cmd = "/usr/bin/python3 " + py.string() + " " + (data_dir / "seed_fno_system_state.json").string() +
                                " " + out.string();
        ASSERT_EQ(std::system(cmd.c_str()), 0) << cmd;
        auto r = b_->load(v.name);
        ASSERT_TRUE(r) << v.name;
        EXPECT_EQ(r->doc, *v.expect) << v.name << ": " << detail::print(r->doc);
        EXPECT_TRUE(has(r->warnings, "no checksum")) << v.name;
        EXPECT_EQ(r->meta.cash_paise, 91446259) << v.name;
    }
}

TEST_F(JsonFiles, AByteOrderMarkBeforeAFileIsSkipped) {
    const std::string seed = read_text(data_dir / "seed_fno_system_state.json");
    detail::write_file_atomic(state_ / "fno_system_state.json", "\xEF\xBB\xBF" + seed, false);
    auto r = b_->load("default");
    ASSERT_TRUE(r);
    EXPECT_TRUE(same_doc(r->doc, detail::parse(seed, "seed")));
    EXPECT_TRUE(b_->verify("default").ok());
    // one of ours with a mark put before it still verifies its checksum
    Document d;
    d.main = r->doc;
    (void)b_->save("default", d, meta_of(d.main));
    const auto ours = read_text(state_ / "fno_system_state.json");
    ASSERT_EQ(ours.front(), '{');
    detail::write_file_atomic(state_ / "fno_system_state.json", "\xEF\xBB\xBF" + ours, false);
    r = reopen()->load("default");
    ASSERT_TRUE(r);
    EXPECT_TRUE(r->checked);
    EXPECT_FALSE(r->recovered);
    EXPECT_TRUE(same_doc(r->doc, d.main));
}

// The seed's save_system_state("my_session.json"): that file in the state dir.
TEST_F(JsonFiles, ASessionNamedLikeAFileIsThatFileInTheStateDir) {
    const auto doc = make_doc(3, 2, 1, 5);
    const auto d = as_document(doc);
    b_->save("default", d, meta_of(doc));
    for (int i = 0; i < 3; ++i) b_->save("my_session.json", as_document(make_doc(i, 1, 2, 3)), meta_of(make_doc(i, 1, 2, 3)));
    EXPECT_TRUE(fs::is_regular_file(state_ / "my_session.json"));
    EXPECT_FALSE(fs::exists(state_ / "sessions" / "my_session.json"));
    EXPECT_TRUE(fs::is_regular_file(state_ / "backups" / "my_session.2.json"));
    // the default session's files are its own
    EXPECT_TRUE(same_doc(b_->load("default")->doc, doc));
    EXPECT_EQ(detail::parse(read_text(state_ / "current_state.json"), "v"), d.views.at("current_state"));
    auto r = b_->load("my_session.json");
    ASSERT_TRUE(r);
    EXPECT_TRUE(same_doc(r->doc, make_doc(2, 1, 2, 3)));
    EXPECT_EQ(r->source, (state_ / "my_session.json").string());
    const auto l = b_->list();
    ASSERT_EQ(l.size(), 2u);
    EXPECT_EQ(l[0].session, "default");
    EXPECT_EQ(l[1].session, "my_session.json");
    EXPECT_EQ(l[1].location, (state_ / "my_session.json").string());
    EXPECT_TRUE(l[1].companions.empty());
    EXPECT_TRUE(b_->verify("my_session.json").ok());
    // damage falls back to its own backups, never to the default session's
    detail::write_file_atomic(state_ / "my_session.json", "{ broken", false);
    r = reopen()->load("my_session.json");
    ASSERT_TRUE(r);
    EXPECT_TRUE(r->recovered);
    EXPECT_TRUE(same_doc(r->doc, make_doc(1, 1, 2, 3)));
    // a file another program wrote under that name loads as the seed's does
    fs::copy_file(data_dir / "seed_fno_system_state.json", state_ / "seed_copy.json");
    r = b_->load("seed_copy.json");
    ASSERT_TRUE(r);
    EXPECT_EQ(r->meta.iteration, 25);
    // renamed (what --fresh does) it becomes a directory session, backups and all
    b_->rename("my_session.json", "my_session-old");
    EXPECT_FALSE(fs::exists(state_ / "my_session.json"));
    EXPECT_FALSE(fs::exists(state_ / "backups" / "my_session.2.json"));
    EXPECT_TRUE(fs::is_regular_file(state_ / "sessions" / "my_session-old" / "backups" / "fno_system_state.2.json"));
    EXPECT_TRUE(b_->exists("my_session-old"));
    EXPECT_TRUE(b_->remove("my_session-old"));
    EXPECT_TRUE(same_doc(b_->load("default")->doc, doc));
    // the default session's own files are not names
    for (const std::string n : {"fno_system_state.json", "current_state.json", "shared_portfolio_state.json"}) {
        try {
            (void)b_->load(n);
            ADD_FAILURE() << n << " was taken as a session";
        } catch (const Error& e) {
            EXPECT_EQ(e.code(), Errc::invalid_argument);
            EXPECT_NE(std::string(e.what()).find("the session 'default'"), std::string::npos) << e.what();
        }
    }
}

TEST_F(JsonFiles, TheSeedsThreeFileNames) {
    const auto doc = make_doc(3, 2, 1, 5);
    auto d = as_document(doc);
    d.views["extra_view"] = json::object{{"k", 1}};
    b_->save("default", d, meta_of(doc));
    b_->save("alt", d, meta_of(doc));
    for (const fs::path& dir : {state_, state_ / "sessions" / "alt"}) {
        EXPECT_TRUE(fs::is_regular_file(dir / "fno_system_state.json")) << dir;
        EXPECT_EQ(detail::parse(read_text(dir / "shared_portfolio_state.json"), "v"), d.views["shared_portfolio_state"]);
        EXPECT_EQ(detail::parse(read_text(dir / "current_state.json"), "v"), d.views["current_state"]);
        EXPECT_EQ(detail::parse(read_text(dir / "extra_view.json"), "v"), d.views["extra_view"]);
    }
    // companions in list(), with ISO 8601 times
    const auto l = b_->list();
    ASSERT_EQ(l.size(), 2u);
    EXPECT_EQ(l[1].location, (state_ / "fno_system_state.json").string());
    ASSERT_EQ(l[1].companions.size(), 3u);
    EXPECT_EQ(l[1].companions[0].first, (state_ / "shared_portfolio_state.json").string());
    EXPECT_EQ(l[1].companions[0].second.size(), 32u) << l[1].companions[0].second; // 2025-09-29T11:49:10.218268+05:30
    EXPECT_EQ(l[1].companions[0].second[10], 'T');
    // a view name that is not a file name is refused before anything is written
    Document bad = d;
    bad.views["../escape"] = json::object{};
    auto before = snapshot_files(state_);
    try {
        b_->save("default", bad, meta_of(doc));
        ADD_FAILURE() << "a view named ../escape was accepted";
    } catch (const Error& e) {
        EXPECT_EQ(e.code(), Errc::invalid_argument);
    }
    EXPECT_EQ(snapshot_files(state_), before);
    EXPECT_FALSE(fs::exists(tmp_.path() / "escape.json"));
    // removing a session removes its files and nothing else
    EXPECT_TRUE(b_->remove("default"));
    EXPECT_FALSE(fs::exists(state_ / "fno_system_state.json"));
    EXPECT_FALSE(fs::exists(state_ / "extra_view.json"));
    EXPECT_FALSE(fs::exists(state_ / "backups"));
    EXPECT_TRUE(b_->exists("alt"));
}

TEST_F(JsonFiles, BackupsRotateByHardLinkAndArePruned) {
    auto b = reopen(3);
    std::vector<ino_t> main_inode(8);
    for (int i = 1; i <= 7; ++i) {
        save_doc(*b, "rot", make_doc(2, 1, static_cast<std::uint64_t>(i), i));
        struct stat st {};
        ASSERT_EQ(::stat((state_ / "sessions/rot/fno_system_state.json").c_str(), &st), 0);
        main_inode[static_cast<std::size_t>(i)] = st.st_ino;
    }
    std::vector<std::string> names;
    for (auto& e : fs::directory_iterator(state_ / "sessions/rot/backups")) names.push_back(e.path().filename().string());
    std::sort(names.begin(), names.end());
    EXPECT_EQ(names, (std::vector<std::string>{"fno_system_state.4.json", "fno_system_state.5.json",
                                               "fno_system_state.6.json"}));
    for (int s = 4; s <= 6; ++s) {
        const fs::path p = state_ / "sessions/rot/backups" / ("fno_system_state." + std::to_string(s) + ".json");
        struct stat st {};
        ASSERT_EQ(::stat(p.c_str(), &st), 0);
        EXPECT_EQ(st.st_ino, main_inode[static_cast<std::size_t>(s)]) << p << " is a copy, not the old file";
        const auto doc = detail::parse(read_text(p), p.string());
        EXPECT_EQ(doc.as_object().at("iteration").as_int64(), s);
    }
    // keep_backups = 0 keeps none
    auto none = reopen(0);
    save_doc(*none, "nob", make_doc(1, 1, 1, 1));
    save_doc(*none, "nob", make_doc(1, 1, 2, 2));
    EXPECT_FALSE(fs::exists(state_ / "sessions/nob/backups/fno_system_state.1.json"));
}

TEST_F(JsonFiles, ChecksumMismatchFallsBackToTheBackupWithAWarning) {
    const auto a = make_doc(3, 1, 1, 1), bdoc = make_doc(3, 1, 2, 2);
    save_doc(*b_, "default", a);
    save_doc(*b_, "default", bdoc);
    const fs::path main = state_ / "fno_system_state.json";
    std::string text = read_text(main);
    const auto pos = text.find("\"iteration\": 2");
    ASSERT_NE(pos, std::string::npos);
    text.replace(pos, 14, "\"iteration\": 3"); // still valid JSON, different value
    write_bytes(main, text);

    auto r = b_->load("default");
    ASSERT_TRUE(r);
    EXPECT_TRUE(r->recovered);
    EXPECT_TRUE(same_doc(r->doc, a));
    ASSERT_EQ(r->warnings.size(), 1u);
    const std::string& w = r->warnings[0];
    EXPECT_NE(w.find(main.string()), std::string::npos) << w;
    EXPECT_NE(w.find("checksum mismatch"), std::string::npos) << w;
    EXPECT_NE(w.find("fno_system_state.1.json"), std::string::npos) << w;

    auto v = b_->verify("default");
    EXPECT_FALSE(v.ok());
    bool named = false;
    for (const auto& f : v.findings)
        named = named || (f.level == Finding::Severity::error && f.where == main.string() &&
                          f.message.find("checksum mismatch") != std::string::npos);
    EXPECT_TRUE(named);
    const auto l = b_->list();
    ASSERT_EQ(l.size(), 1u);
    EXPECT_NE(l[0].location.find("(corrupt"), std::string::npos) << l[0].location;

    // re-indenting does not break the checksum
    save_doc(*b_, "default", bdoc);
    const auto parsed = detail::parse(read_text(main), "main");
    write_bytes(main, detail::print(parsed, {4}));
    r = b_->load("default");
    ASSERT_TRUE(r);
    EXPECT_FALSE(r->recovered);
    EXPECT_TRUE(r->warnings.empty());
    EXPECT_TRUE(same_doc(r->doc, bdoc));
}

TEST_F(JsonFiles, ParseErrorNamesLineAndColumn) {
    auto b = reopen(3);
    save_doc(*b, "p", make_doc(3, 1, 1, 1));
    save_doc(*b, "p", make_doc(3, 1, 2, 2));
    const fs::path main = state_ / "sessions/p/fno_system_state.json";
    const std::string text = read_text(main);
    write_bytes(main, text.substr(0, text.size() / 2));
    auto r = b->load("p");
    ASSERT_TRUE(r);
    EXPECT_TRUE(r->recovered);
    EXPECT_EQ(r->doc.as_object().at("iteration").as_int64(), 1);
    EXPECT_NE(r->warnings.at(0).find(main.string() + ":"), std::string::npos) << r->warnings[0];
    // no valid copy at all: a clear error naming the file and the backups tried
    const fs::path backup = state_ / "sessions/p/backups/fno_system_state.1.json";
    write_bytes(backup, "{\"truncated\": ");
    try {
        (void)b->load("p");
        ADD_FAILURE() << "loaded garbage";
    } catch (const Error& e) {
        EXPECT_EQ(e.code(), Errc::corrupt);
        EXPECT_NE(std::string(e.what()).find(main.string()), std::string::npos) << e.what();
        EXPECT_NE(std::string(e.what()).find(backup.string()), std::string::npos) << e.what();
    }
    const auto l = b->list(); // still listed, marked
    ASSERT_EQ(l.size(), 1u);
    EXPECT_NE(l[0].location.find("(corrupt"), std::string::npos);
}

TEST_F(JsonFiles, RenamedMetadataMemberIsCorruptionNotASeedFile) {
    save_doc(*b_, "default", make_doc(2, 1, 1, 1));
    save_doc(*b_, "default", make_doc(2, 1, 2, 2));
    const fs::path main = state_ / "fno_system_state.json";
    std::string text = read_text(main);
    text.replace(text.find("\"_tradestate\""), 13, "\"_tradestatf\"");
    write_bytes(main, text);
    auto r = b_->load("default");
    ASSERT_TRUE(r);
    EXPECT_TRUE(r->recovered);
    EXPECT_EQ(r->doc.as_object().at("iteration").as_int64(), 1);
    EXPECT_FALSE(r->doc.as_object().contains("_tradestatf"));
}

TEST_F(JsonFiles, NewerSchemaIsAClearError) {
    save_doc(*b_, "default", make_doc(2, 1, 1, 1));
    save_doc(*b_, "default", make_doc(2, 1, 2, 2));
    const fs::path main = state_ / "fno_system_state.json";
    std::string text = read_text(main);
    text.replace(text.find("\"schema_version\": 2"), 19, "\"schema_version\": 3");
    write_bytes(main, text);
    try {
        (void)b_->load("default");
        ADD_FAILURE() << "a schema-3 file was loaded (or silently replaced by a backup)";
    } catch (const Error& e) {
        EXPECT_EQ(e.code(), Errc::schema);
        EXPECT_NE(std::string(e.what()).find("newer tradestate"), std::string::npos) << e.what();
    }
}

TEST_F(JsonFiles, ReservedMemberAndNonObjectDocumentsAreRefused) {
    Document d;
    d.main = json::object{{"_tradestate", 1}};
    EXPECT_THROW(b_->save("default", d, {}), Error);
    d.main = json::array{1, 2};
    EXPECT_THROW(b_->save("default", d, {}), Error);
    EXPECT_FALSE(b_->exists("default"));
}

TEST_F(JsonFiles, StaleTempFilesOfKilledWritersAreCleanedUp) {
    save_doc(*b_, "default", make_doc(1, 1, 1, 1));
    // pid 0x7ffffffe does not exist
    const fs::path stale = state_ / ".fno_system_state.json.tmp.2147483646.0";
    write_bytes(stale, "{\"half");
    save_doc(*b_, "default", make_doc(1, 1, 2, 2));
    EXPECT_FALSE(fs::exists(stale));
    auto r = b_->load("default");
    ASSERT_TRUE(r);
    EXPECT_EQ(r->doc.as_object().at("iteration").as_int64(), 2);
}

} // namespace
