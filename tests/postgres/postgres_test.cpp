// Tests of the postgres backend plugin against a real PostgreSQL server:
// the private one ctest starts (TRADESTATE_TEST_PG_URL), plus one more
// started here for the restart test. Every test works in its own schema.
#include <tradestate_test/support.hpp>

#include <tradestate/backend.hpp>
#include <tradestate/detail/checksum.hpp>
#include <tradestate/detail/json.hpp>
#include <tradestate/backend_journal.hpp>
#include <tradestate/replay.hpp>
#include <tradestate/session_state.hpp>
#include <tradestate/plugin_loader.hpp>
#include <tradestate/postgres/follower.hpp>

#include <boost/json.hpp>
#include <gtest/gtest.h>
#include <spdlog/sinks/ostream_sink.h>
#include <spdlog/spdlog.h>

#include <array>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iostream>
#include <random>
#include <sstream>
#include <string>
#include <thread>

#include <poll.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

extern char** environ;

namespace {

namespace json = boost::json;
namespace pg = tradestate::postgres;
using tradestate::Backend;
using tradestate::BackendOptions;
using tradestate::Document;
using tradestate::Errc;
using tradestate::Error;
using tradestate::SaveMeta;
using namespace std::chrono_literals;

std::string env_url() {
    const char* u = std::getenv("TRADESTATE_TEST_PG_URL");
    return u ? u : "";
}

/// A plain libpq connection for looking behind the backend's back.
class Raw {
public:
    explicit Raw(const std::string& url) {
        pg::Settings st;
        st.url = url;
        std::string err;
        c_ = pg::connect(st, err);
        if (!c_) throw std::runtime_error("raw connect failed: " + err);
    }
    pg::result_ptr exec(const std::string& sql, std::vector<std::string> params = {}) {
        std::vector<const char*> v;
        for (auto& p : params) v.push_back(p.c_str());
        pg::result_ptr r(PQexecParams(c_.get(), sql.c_str(), static_cast<int>(v.size()), nullptr, v.data(), nullptr,
                                      nullptr, 0));
        const auto s = PQresultStatus(r.get());
        if (s != PGRES_COMMAND_OK && s != PGRES_TUPLES_OK)
            throw std::runtime_error("raw SQL failed: " + sql + ": " + PQerrorMessage(c_.get()));
        return r;
    }
    std::string one(const std::string& sql, std::vector<std::string> params = {}) {
        auto r = exec(sql, std::move(params));
        if (PQntuples(r.get()) < 1) throw std::runtime_error("no row from: " + sql);
        return PQgetisnull(r.get(), 0, 0) ? "<null>" : PQgetvalue(r.get(), 0, 0);
    }

private:
    pg::conn_ptr c_;
};

std::string unique_schema() {
    static int n = 0;
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    std::string name = info ? info->name() : "x";
    std::string clean;
    for (char ch : name)
        if (std::isalnum(static_cast<unsigned char>(ch))) clean.push_back(static_cast<char>(std::tolower(ch)));
    return "t_" + clean.substr(0, 20) + "_" + std::to_string(::getpid()) + "_" + std::to_string(++n);
}

/// The seed's layout, keys deliberately not in alphabetical order.
json::value seed_doc(std::int64_t iteration, double cash = 914462.59) {
    auto v = tradestate::detail::parse(R"({
  "timestamp": "2025-09-29T11:49:10.218268",
  "trading_mode": "paper",
  "iteration": 25,
  "portfolio": {
    "initial_cash": 1000000.0,
    "cash": 914462.59,
    "positions": {
      "NIFTY25SEP24650CE": {"shares": 75, "entry_price": 220.42, "stop_loss": 207.19, "take_profit": 246.87,
                            "entry_time": "2025-09-29T11:49:10.204428", "strategy": "straddle", "sector": "F&O"},
      "BANKNIFTY25SEP54000PE": {"shares": 35, "entry_price": 1e-05, "stop_loss": 1.5e+22, "take_profit": 0.1,
                                "entry_time": "2025-09-29T11:49:10.204428", "strategy": "iron_condor", "sector": "F&O"}
    },
    "trades_count": 5,
    "total_pnl": 0.0
  },
  "configuration": {"min_confidence": 0.65, "check_interval": 300, "max_positions": 5, "note": "₹ cash \"quoted\"\n"},
  "zeta": [3, 1, 2, {"b": 1, "a": 2}],
  "alpha": null
})",
                                          "seed");
    v.as_object()["iteration"] = iteration;
    v.as_object()["portfolio"].as_object()["cash"] = cash;
    return v;
}

SaveMeta meta_for(std::int64_t iteration) {
    SaveMeta m;
    m.saved_at = "2025-09-29T11:49:10.218268";
    m.iteration = iteration;
    m.positions = 2;
    m.cash_paise = 91446259;
    return m;
}

Document as_doc(const json::value& v) {
    Document d;
    d.main = v;
    return d;
}

std::string print(const json::value& v) { return tradestate::detail::print(v, {-1}); }

/// Poll `cond` every 20 ms until it is true or `limit` passed.
bool eventually(const std::function<bool()>& cond, std::chrono::milliseconds limit = 10s) {
    const auto end = std::chrono::steady_clock::now() + limit;
    while (std::chrono::steady_clock::now() < end) {
        if (cond()) return true;
        std::this_thread::sleep_for(20ms);
    }
    return cond();
}

class PgTest : public ::testing::Test {
protected:
    void SetUp() override {
        url_ = env_url();
        if (url_.empty())
            GTEST_SKIP() << "TRADESTATE_TEST_PG_URL is not set: run these tests through ctest, which starts a private "
                            "PostgreSQL server (scripts/pg-test-server)";
        schema_ = unique_schema();
    }
    void TearDown() override {
        if (url_.empty()) return;
        try {
            Raw(url_).exec("DROP SCHEMA IF EXISTS \"" + schema_ + "\" CASCADE");
        } catch (const std::exception& e) {
            ADD_FAILURE() << e.what();
        }
    }

    BackendOptions options(json::object extra = {}, std::shared_ptr<spdlog::logger> log = nullptr) const {
        BackendOptions o;
        o.settings["url"] = url_;
        o.settings["schema"] = schema_;
        for (auto& kv : extra) o.settings[kv.key()] = kv.value();
        o.logger = log ? log : quiet();
        return o;
    }
    std::shared_ptr<Backend> open(json::object extra = {}, std::shared_ptr<spdlog::logger> log = nullptr) const {
        return loader().open("postgres", options(std::move(extra), std::move(log)));
    }
    static tradestate::PluginLoader loader() { return tradestate::PluginLoader({tradestate::testing::plugin_dir()}, quiet()); }
    static std::shared_ptr<spdlog::logger> quiet() {
        static auto l = std::make_shared<spdlog::logger>("quiet", std::make_shared<spdlog::sinks::ostream_sink_mt>(sink_));
        return l;
    }
    std::string q(const std::string& table) const { return "\"" + schema_ + "\"." + table; }

    static inline std::ostringstream sink_;
    std::string url_, schema_;
};

// ---------------------------------------------------------------- settings

TEST(PostgresSettings, RedactsPasswordsInEveryForm) {
    EXPECT_EQ(pg::redact_url("postgresql://trader:hunter2@db.example.com:5432/fno"),
              "postgresql://trader:***@db.example.com:5432/fno");
    EXPECT_EQ(pg::redact_url("postgres://trader:p%40ss@db/fno?sslmode=require&password=other"),
              "postgres://trader:***@db/fno?sslmode=require&password=***");
    EXPECT_EQ(pg::redact_url("postgresql://trader@db/fno"), "postgresql://trader@db/fno");
    EXPECT_EQ(pg::redact_url("host=db user=trader password='se cret' dbname=fno"),
              "host=db user=trader password=*** dbname=fno");
    EXPECT_EQ(pg::redact_url("host=db password=plain"), "host=db password=***");

    pg::Settings st;
    st.url = "postgresql://trader:p%40ssw0rd@db/fno";
    const auto msg = pg::scrub("FATAL: password authentication failed (tried p@ssw0rd and p%40ssw0rd)", st);
    EXPECT_EQ(msg.find("ssw0rd"), std::string::npos) << msg;
}

TEST(PostgresSettings, RejectsUnknownKeysAndBadValues) {
    auto code_of = [](json::object o) {
        try {
            (void)pg::parse_settings(o);
        } catch (const Error& e) {
            return e.code();
        }
        return Errc::invalid_argument;
    };
    EXPECT_EQ(code_of({{"urll", "x"}}), Errc::config);
    EXPECT_EQ(code_of({{"schema", "Bad-Name"}}), Errc::config);
    EXPECT_EQ(code_of({{"lease_seconds", "thirty"}}), Errc::config);
    EXPECT_EQ(code_of({{"lease_seconds", 0}}), Errc::config);
    const auto ok = pg::parse_settings({{"url", "postgresql:///x"}, {"keep_history", 7}});
    EXPECT_EQ(ok.keep_history, 7);
    EXPECT_EQ(ok.schema, "tradestate");
}

TEST_F(PgTest, UnknownSettingFailsAtOpen) {
    try {
        (void)open({{"lease_secs", 5}});
        FAIL() << "open accepted an unknown setting";
    } catch (const Error& e) {
        EXPECT_EQ(e.code(), Errc::config);
        EXPECT_NE(std::string(e.what()).find("lease_secs"), std::string::npos) << e.what();
    }
}

// ------------------------------------------------------------- documents

TEST_F(PgTest, SavedDocumentLoadsBackIdenticalKeyOrderAndNumbers) {
    auto b = open();
    EXPECT_EQ(b->name(), "postgres");
    EXPECT_FALSE(b->load("main").has_value());
    const auto doc = seed_doc(25);
    b->save("main", as_doc(doc), meta_for(25));
    auto r = b->load("main");
    ASSERT_TRUE(r.has_value());
    EXPECT_EQ(print(r->doc), print(doc));
    EXPECT_EQ(tradestate::detail::print(r->doc), tradestate::detail::print(doc));
    EXPECT_NE(print(r->doc).find("914462.59"), std::string::npos);
    EXPECT_EQ(r->sequence, 1u);
    EXPECT_EQ(r->meta.iteration, 25);
    EXPECT_EQ(r->meta.cash_paise, 91446259);
    EXPECT_FALSE(r->recovered);

    // Behind the scenes: the exact text is stored and checksummed; the JSONB
    // copy exists for queries but has its keys reordered, which is why it is
    // not what load() returns.
    Raw raw(url_);
    EXPECT_EQ(raw.one("SELECT doc_text FROM " + q("snapshots") + " WHERE session = 'main'"), print(doc));
    EXPECT_EQ(raw.one("SELECT checksum FROM " + q("snapshots") + " WHERE session = 'main'"),
              tradestate::detail::checksum_text(tradestate::detail::xxh3(print(doc))));
    EXPECT_EQ(raw.one("SELECT document->'portfolio'->>'cash' FROM " + q("snapshots")), "914462.59");
    const auto jsonb_text = raw.one("SELECT document::text FROM " + q("snapshots"));
    EXPECT_NE(jsonb_text.find("\"alpha\""), std::string::npos);
    EXPECT_LT(jsonb_text.find("\"alpha\""), jsonb_text.find("\"timestamp\"")) << "JSONB did not reorder keys?";
}

TEST_F(PgTest, DocumentJsonbCannotHoldStillRoundTrips) {
    auto b = open();
    json::value doc = seed_doc(1);
    doc.as_object()["raw"] = std::string("nul\0byte", 8);
    b->save("nul", as_doc(doc), meta_for(1));
    auto r = b->load("nul");
    ASSERT_TRUE(r);
    EXPECT_EQ(print(r->doc), print(doc));
    EXPECT_EQ(Raw(url_).one("SELECT document IS NULL FROM " + q("snapshots")), "t");
    auto rep = b->verify("nul");
    EXPECT_TRUE(rep.ok());
}

TEST_F(PgTest, JsonbCopyCanBeTurnedOff) {
    auto b = open({{"jsonb", false}});
    b->save("plain", as_doc(seed_doc(1)), meta_for(1));
    EXPECT_EQ(print(b->load("plain")->doc), print(seed_doc(1)));
    EXPECT_EQ(Raw(url_).one("SELECT document IS NULL FROM " + q("snapshots")), "t");
    auto c = open();
    c->save("plain", as_doc(seed_doc(2)), meta_for(2));
    EXPECT_EQ(Raw(url_).one("SELECT document->>'iteration' FROM " + q("snapshots") + " WHERE sequence = 2"), "2");
    EXPECT_THROW((void)open({{"jsonb", 1}}), Error);
}

TEST_F(PgTest, SequenceListExistsRemoveAndViews) {
    auto b = open();
    for (const char* s : {"b", "A", "a"}) b->save(s, as_doc(seed_doc(1)), meta_for(1));
    Document d = as_doc(seed_doc(2));
    d.views["shared_portfolio_state"] = json::object{{"cash", 914462.59}, {"mode", "paper"}};
    b->save("a", d, meta_for(2));
    auto list = b->list();
    ASSERT_EQ(list.size(), 3u);
    EXPECT_EQ(list[0].session, "A");
    EXPECT_EQ(list[1].session, "a");
    EXPECT_EQ(list[2].session, "b");
    EXPECT_EQ(list[1].sequence, 2u);
    EXPECT_EQ(list[1].meta.iteration, 2);
    EXPECT_EQ(list[1].meta.cash_paise, 91446259);
    ASSERT_EQ(list[1].companions.size(), 1u);
    EXPECT_NE(list[1].companions[0].first.find("shared_portfolio_state"), std::string::npos);
    EXPECT_NE(list[1].location.find(schema_), std::string::npos);
    EXPECT_EQ(Raw(url_).one("SELECT doc_text FROM " + q("views") + " WHERE session = 'a'"),
              R"({"cash":914462.59,"mode":"paper"})");

    EXPECT_TRUE(b->exists("a"));
    EXPECT_TRUE(b->remove("a"));
    EXPECT_FALSE(b->remove("a"));
    EXPECT_FALSE(b->exists("a"));
    EXPECT_FALSE(b->load("a").has_value());
    EXPECT_EQ(b->list().size(), 2u);
    EXPECT_EQ(Raw(url_).one("SELECT count(*) FROM " + q("views")), "0");
    EXPECT_THROW((void)b->load("../etc"), Error);
}

TEST_F(PgTest, HistoryAndLoadAt) {
    auto b = open();
    ASSERT_TRUE(b->has_history());
    for (int i = 1; i <= 4; ++i) b->save("h", as_doc(seed_doc(i, 1000.0 * i)), meta_for(i));
    auto h = b->history("h");
    ASSERT_EQ(h.size(), 4u);
    for (std::size_t i = 0; i < h.size(); ++i) {
        EXPECT_EQ(h[i].sequence, i + 1);
        EXPECT_EQ(h[i].meta.iteration, static_cast<std::int64_t>(i + 1));
        EXPECT_EQ(h[i].stored_bytes, print(seed_doc(static_cast<std::int64_t>(i + 1), 1000.0 * static_cast<double>(i + 1))).size());
    }
    auto r2 = b->load_at("h", 2);
    ASSERT_TRUE(r2);
    EXPECT_EQ(print(r2->doc), print(seed_doc(2, 2000.0)));
    EXPECT_EQ(r2->sequence, 2u);
    EXPECT_FALSE(b->load_at("h", 99).has_value()); // a sequence it does not hold, as load() of a session never saved
}

TEST_F(PgTest, KeepHistoryPrunesOldSnapshots) {
    auto b = open({{"keep_history", 2}});
    for (int i = 1; i <= 5; ++i) b->save("k", as_doc(seed_doc(i)), meta_for(i));
    auto h = b->history("k");
    ASSERT_EQ(h.size(), 2u);
    EXPECT_EQ(h[0].sequence, 4u);
    EXPECT_EQ(h[1].sequence, 5u);
    EXPECT_EQ(b->load("k")->meta.iteration, 5);
}

TEST_F(PgTest, DamagedNewestSnapshotFallsBackAndVerifyReportsIt) {
    auto b = open();
    b->save("c", as_doc(seed_doc(1)), meta_for(1));
    b->save("c", as_doc(seed_doc(2)), meta_for(2));
    EXPECT_TRUE(b->verify("c").ok());
    Raw(url_).exec("UPDATE " + q("snapshots") + " SET doc_text = replace(doc_text, '914462.59', '914462.60') "
                   "WHERE session = 'c' AND sequence = 2");
    auto r = b->load("c");
    ASSERT_TRUE(r);
    EXPECT_TRUE(r->recovered);
    EXPECT_EQ(r->sequence, 1u);
    EXPECT_EQ(print(r->doc), print(seed_doc(1)));
    ASSERT_FALSE(r->warnings.empty());
    EXPECT_NE(r->warnings[0].find("checksum"), std::string::npos) << r->warnings[0];
    auto rep = b->verify("c");
    EXPECT_FALSE(rep.ok());
    try {
        (void)b->load_at("c", 2);
        FAIL() << "load_at returned a damaged snapshot";
    } catch (const Error& e) {
        EXPECT_EQ(e.code(), Errc::corrupt);
    }
    Raw(url_).exec("UPDATE " + q("snapshots") + " SET doc_text = '{' WHERE session = 'c'");
    try {
        (void)b->load("c");
        FAIL() << "load returned although every snapshot is damaged";
    } catch (const Error& e) {
        EXPECT_EQ(e.code(), Errc::corrupt);
    }
    EXPECT_FALSE(b->verify("missing").ok());
}

TEST_F(PgTest, SavesWithoutLeaseFromTwoBackendsBothLand) {
    auto a = open(), b = open();
    a->save("u", as_doc(seed_doc(1)), meta_for(1));
    b->save("u", as_doc(seed_doc(2)), meta_for(2));
    a->save("u", as_doc(seed_doc(3)), meta_for(3));
    EXPECT_EQ(b->load("u")->sequence, 3u);
    EXPECT_EQ(b->load("u")->meta.iteration, 3);
}

// ------------------------------------------------------------------ leases

TEST_F(PgTest, SecondWriterIsRefusedNamingTheHolder) {
    auto a = open({{"application_name", "runner-a"}});
    auto b = open({{"application_name", "runner-b"}});
    auto la = a->acquire_writer("s");
    ASSERT_TRUE(la->valid());
    try {
        auto lb = b->acquire_writer("s");
        FAIL() << "a second writer got the lease";
    } catch (const Error& e) {
        EXPECT_EQ(e.code(), Errc::locked);
        const std::string m = e.what();
        EXPECT_NE(m.find("runner-a"), std::string::npos) << m;
        EXPECT_NE(m.find("pid " + std::to_string(::getpid())), std::string::npos) << m;
    }
    // The same backend cannot take it twice either.
    EXPECT_THROW((void)a->acquire_writer("s"), Error);
    a->save("s", as_doc(seed_doc(1)), meta_for(1));
    try {
        b->save("s", as_doc(seed_doc(99)), meta_for(99));
        FAIL() << "a save without the lease went through while another process holds it";
    } catch (const Error& e) {
        EXPECT_EQ(e.code(), Errc::locked);
        EXPECT_NE(std::string(e.what()).find("runner-a"), std::string::npos) << e.what();
    }
    EXPECT_THROW((void)b->remove("s"), Error);
    EXPECT_EQ(b->load("s")->meta.iteration, 1);
    // Another session is free.
    auto other = b->acquire_writer("t");
    EXPECT_TRUE(other->valid());
    la.reset();
    auto lb = b->acquire_writer("s");
    EXPECT_TRUE(lb->valid());
    b->save("s", as_doc(seed_doc(2)), meta_for(2));
    EXPECT_EQ(a->load("s")->meta.iteration, 2);
}

TEST_F(PgTest, WriterThatLostItsLeaseIsRefused) {
    auto a = open({{"application_name", "runner-a"}, {"retry_initial_ms", 0}});
    auto b = open({{"application_name", "runner-b"}});
    auto la = a->acquire_writer("s");
    a->save("s", as_doc(seed_doc(1)), meta_for(1));
    Raw raw(url_);
    const std::string pid = raw.one("SELECT backend_pid FROM " + q("leases") + " WHERE session = 's'");
    raw.exec("SELECT pg_terminate_backend($1::int)", {pid});
    // Once the server has dropped a's connection, b can take the lease over.
    std::unique_ptr<tradestate::WriterLease> lb;
    ASSERT_TRUE(eventually([&] {
        try {
            lb = b->acquire_writer("s");
            return true;
        } catch (const Error& e) {
            EXPECT_EQ(e.code(), Errc::locked) << e.what();
            return false;
        }
    }));
    try {
        a->save("s", as_doc(seed_doc(666)), meta_for(666));
        FAIL() << "the writer that lost its lease could still save";
    } catch (const Error& e) {
        EXPECT_EQ(e.code(), Errc::locked) << e.what();
        EXPECT_NE(std::string(e.what()).find("lost its writer lease"), std::string::npos) << e.what();
    }
    EXPECT_FALSE(la->valid());
    EXPECT_TRUE(lb->valid());
    EXPECT_EQ(b->load("s")->meta.iteration, 1);
    b->save("s", as_doc(seed_doc(2)), meta_for(2));
    EXPECT_EQ(a->load("s")->meta.iteration, 2);
    EXPECT_THROW(a->save("s", as_doc(seed_doc(667)), meta_for(667)), Error);
}

TEST_F(PgTest, LeaseSurvivesALostConnectionWhenNobodyTookIt) {
    auto a = open({{"retry_initial_ms", 0}});
    auto la = a->acquire_writer("s");
    a->save("s", as_doc(seed_doc(1)), meta_for(1));
    Raw raw(url_);
    const std::string pid = raw.one("SELECT backend_pid FROM " + q("leases") + " WHERE session = 's'");
    raw.exec("SELECT pg_terminate_backend($1::int)", {pid});
    ASSERT_TRUE(eventually([&] {
        return raw.one("SELECT count(*) FROM pg_stat_activity WHERE pid = $1::int", {pid}) == "0";
    }));
    a->save("s", as_doc(seed_doc(2)), meta_for(2)); // reconnects, re-takes the lease, saves
    EXPECT_TRUE(la->valid());
    EXPECT_EQ(a->load("s")->sequence, 2u);
    auto b = open();
    EXPECT_THROW((void)b->acquire_writer("s"), Error);
}

// ------------------------------------------------- two processes racing

class Racer {
public:
    Racer(const std::string& url, const std::string& schema, const std::string& session, int iteration) {
        int in[2], out[2];
        if (::pipe(in) != 0 || ::pipe(out) != 0) throw std::runtime_error("pipe failed");
        posix_spawn_file_actions_t fa;
        posix_spawn_file_actions_init(&fa);
        posix_spawn_file_actions_adddup2(&fa, in[0], 0);
        posix_spawn_file_actions_adddup2(&fa, out[1], 1);
        posix_spawn_file_actions_addclose(&fa, in[1]);
        posix_spawn_file_actions_addclose(&fa, out[0]);
        const std::string it = std::to_string(iteration);
        std::array<char*, 6> argv = {const_cast<char*>(TRADESTATE_TEST_LEASE_RACER), const_cast<char*>(url.c_str()),
                                     const_cast<char*>(schema.c_str()), const_cast<char*>(session.c_str()),
                                     const_cast<char*>(it.c_str()), nullptr};
        if (posix_spawn(&pid_, TRADESTATE_TEST_LEASE_RACER, &fa, nullptr, argv.data(), environ) != 0)
            throw std::runtime_error("cannot start " + std::string(TRADESTATE_TEST_LEASE_RACER));
        posix_spawn_file_actions_destroy(&fa);
        ::close(in[0]);
        ::close(out[1]);
        to_ = in[1];
        from_ = out[0];
    }
    ~Racer() {
        close_stdin();
        if (from_ >= 0) ::close(from_);
        if (pid_ > 0) {
            ::kill(pid_, SIGKILL);
            ::waitpid(pid_, nullptr, 0);
        }
    }
    /// Next line of output, or "" after 30 s / EOF.
    std::string line() {
        std::string s;
        const auto end = std::chrono::steady_clock::now() + 30s;
        while (std::chrono::steady_clock::now() < end) {
            auto nl = buf_.find('\n');
            if (nl != std::string::npos) {
                s = buf_.substr(0, nl);
                buf_.erase(0, nl + 1);
                return s;
            }
            pollfd p{from_, POLLIN, 0};
            if (::poll(&p, 1, 1000) <= 0) continue;
            char tmp[512];
            const auto n = ::read(from_, tmp, sizeof tmp);
            if (n <= 0) return s;
            buf_.append(tmp, static_cast<std::size_t>(n));
        }
        return s;
    }
    void send(const std::string& s) { (void)!::write(to_, s.data(), s.size()); }
    void close_stdin() {
        if (to_ >= 0) ::close(to_);
        to_ = -1;
    }
    int wait_exit() {
        int st = 0;
        ::waitpid(pid_, &st, 0);
        pid_ = -1;
        return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
    }
    void kill_hard() {
        ::kill(pid_, SIGKILL);
        ::waitpid(pid_, nullptr, 0);
        pid_ = -1;
    }
    [[nodiscard]] pid_t pid() const { return pid_; }

private:
    pid_t pid_ = -1;
    int to_ = -1, from_ = -1;
    std::string buf_;
};

TEST_F(PgTest, TwoProcessesRaceForOneSessionOneWinsTheOtherRefuses) {
    {
        auto setup = open(); // create the tables before the race: the racers only race for the lease
    }
    Racer r1(url_, schema_, "race", 101), r2(url_, schema_, "race", 202);
    ASSERT_EQ(r1.line(), "ready");
    ASSERT_EQ(r2.line(), "ready");
    r1.send("go\n");
    r2.send("go\n");
    const std::string o1 = r1.line(), o2 = r2.line();
    const bool first_won = o1.rfind("won ", 0) == 0, second_won = o2.rfind("won ", 0) == 0;
    ASSERT_NE(first_won, second_won) << "exactly one must win: [" << o1 << "] [" << o2 << "]";
    Racer& winner = first_won ? r1 : r2;
    Racer& loser = first_won ? r2 : r1;
    const std::string& lost = first_won ? o2 : o1;
    EXPECT_EQ(lost.rfind("locked ", 0), 0u) << lost;
    EXPECT_NE(lost.find("pg_lease_racer"), std::string::npos) << lost;
    EXPECT_NE(lost.find("pid " + std::to_string(winner.pid())), std::string::npos) << lost;
    EXPECT_EQ(loser.wait_exit(), 3);
    EXPECT_EQ(winner.line(), "saved 1");

    auto b = open();
    auto r = b->load("race");
    ASSERT_TRUE(r);
    EXPECT_EQ(r->doc.at("writer_pid").to_number<std::int64_t>(), winner.pid());
    EXPECT_EQ(r->meta.iteration, first_won ? 101 : 202);
    EXPECT_THROW((void)b->acquire_writer("race"), Error);

    // A writer killed without any cleanup frees its lease: the server
    // drops its connection and with it the advisory lock.
    winner.kill_hard();
    std::unique_ptr<tradestate::WriterLease> mine;
    ASSERT_TRUE(eventually([&] {
        try {
            mine = b->acquire_writer("race");
            return true;
        } catch (const Error&) {
            return false;
        }
    }));
    b->save("race", as_doc(seed_doc(3)), meta_for(3));
    EXPECT_EQ(b->load("race")->sequence, 2u);
}

// ------------------------------------------------------- LISTEN / NOTIFY

TEST_F(PgTest, FollowerSeesEverySave) {
    auto b = open();
    pg::Follower f(json::object{{"url", url_}, {"schema", schema_}});
    EXPECT_EQ(f.channel(), "tradestate_" + schema_);
    EXPECT_FALSE(f.wait(50ms).has_value());
    b->save("live", as_doc(seed_doc(1)), meta_for(1));
    b->save("live", as_doc(seed_doc(2)), meta_for(2));
    auto e1 = f.wait(5s), e2 = f.wait(5s);
    ASSERT_TRUE(e1 && e2);
    EXPECT_EQ(e1->session, "live");
    EXPECT_EQ(e1->sequence, 1u);
    EXPECT_FALSE(e1->resync);
    EXPECT_EQ(e2->sequence, 2u);
}

// ------------------------------------------------------ password redaction

TEST_F(PgTest, PasswordNeverAppearsInLocationsMessagesOrLogs) {
    const std::string secret = "Sup3rSecretPW";
    std::string with_pw = url_;
    const auto p = with_pw.find("postgres@");
    ASSERT_NE(p, std::string::npos) << "unexpected test URL " << url_;
    with_pw.replace(p, 9, "postgres:" + secret + "@"); // trust auth ignores it

    std::ostringstream logs;
    auto log = std::make_shared<spdlog::logger>("capture", std::make_shared<spdlog::sinks::ostream_sink_mt>(logs));
    log->set_level(spdlog::level::trace);
    auto b = open({{"url", with_pw}}, log);
    b->save("pw", as_doc(seed_doc(1)), meta_for(1));
    auto list = b->list();
    ASSERT_EQ(list.size(), 1u);
    EXPECT_EQ(list[0].location.find(secret), std::string::npos) << list[0].location;
    EXPECT_NE(list[0].location.find("postgres:***@"), std::string::npos) << list[0].location;
    EXPECT_EQ(b->load("pw")->source.find(secret), std::string::npos);

    // An unreachable server: the error and the log name the place, not the password.
    std::string bad = with_pw;
    bad.replace(bad.find("port=5432"), 9, "port=1");
    auto c = open({{"url", bad}, {"connect_timeout", 2}}, log);
    try {
        c->save("pw", as_doc(seed_doc(1)), meta_for(1));
        FAIL() << "save to an unreachable server succeeded";
    } catch (const Error& e) {
        EXPECT_EQ(e.code(), Errc::io);
        const std::string m = e.what();
        EXPECT_EQ(m.find(secret), std::string::npos) << m;
        EXPECT_NE(m.find("postgres:***@"), std::string::npos) << m;
    }
    log->flush();
    EXPECT_NE(logs.str().find("postgres:***@"), std::string::npos) << logs.str();
    EXPECT_EQ(logs.str().find(secret), std::string::npos) << logs.str();
}

// ------------------------------------------------ tradestate convert

/// Run a shell command in `dir`; exit status and output (stdout, plus
/// stderr when `with_stderr`).
std::pair<int, std::string> run_in(const std::filesystem::path& dir, const std::string& cmd, bool with_stderr = true) {
    const std::string line = "cd '" + dir.string() + "' && " + cmd + (with_stderr ? " 2>&1" : " 2>/dev/null");
    std::string out;
    FILE* f = ::popen(line.c_str(), "r");
    if (!f) return {-1, "popen failed"};
    char buf[4096];
    while (std::fgets(buf, sizeof buf, f)) out += buf;
    const int st = ::pclose(f);
    return {WIFEXITED(st) ? WEXITSTATUS(st) : -1, out};
}

TEST_F(PgTest, ConvertJsonFilesToPostgresAndBackIsIdentical) {
    if (tradestate::testing::tool_bin().empty() ||
        !std::filesystem::exists(tradestate::testing::plugin_dir() / "libtradestate-backend-json-files.so"))
        GTEST_SKIP() << "the tradestate tool or the json-files plugin is not part of this build";
    namespace fs = std::filesystem;
    char tmpl[] = "/tmp/tspgconv.XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    const fs::path dir = tmpl;
    struct Cleanup {
        fs::path p;
        ~Cleanup() {
            std::error_code ec;
            fs::remove_all(p, ec);
        }
    } cleanup{dir};
    fs::create_directories(dir / "a");
    fs::copy_file(tradestate::testing::seed_file(), dir / "a" / "fno_system_state.json");
    {
        std::ofstream cfg(dir / "config.toml");
        cfg << "[persistence]\nbackend = \"json-files\"\n\n[persistence.postgres]\nurl = \"" << url_
            << "\"\nschema = \"" << schema_ << "\"\n";
    }
    const std::string tool = "'" + tradestate::testing::tool_bin() + "' -c config.toml ";
    auto [rc1, out1] = run_in(dir, tool + "convert --from json-files:a --to postgres:-");
    ASSERT_EQ(rc1, 0) << out1;
    EXPECT_EQ(Raw(url_).one("SELECT count(*) FROM " + q("snapshots") + " WHERE session = 'default'"), "1");
    auto [rc2, out2] = run_in(dir, tool + "convert --from postgres:- --to json-files:b");
    ASSERT_EQ(rc2, 0) << out2;

    // (the seed file has no checksum: exporting it warns on stderr)
    auto [ea, from_a] = run_in(dir, tool + "-s a export default", false);
    auto [eb, from_b] = run_in(dir, tool + "-s b export default", false);
    auto [ep, from_pg] = run_in(dir, tool + "--backend postgres export default", false);
    ASSERT_EQ(ea, 0) << from_a;
    ASSERT_EQ(eb, 0) << from_b;
    ASSERT_EQ(ep, 0) << from_pg;
    EXPECT_NE(from_a.find("914462.59"), std::string::npos) << from_a;
    EXPECT_EQ(from_b, from_a);
    EXPECT_EQ(from_pg, from_a);
    // and the document itself, through the plugins
    BackendOptions jo;
    jo.logger = quiet();
    jo.state_dir = dir / "a";
    auto ja = loader().open("json-files", jo);
    jo.state_dir = dir / "b";
    auto jb = loader().open("json-files", jo);
    const auto da = ja->load("default"), db = jb->load("default"), dp = open()->load("default");
    ASSERT_TRUE(da && db && dp);
    EXPECT_EQ(tradestate::detail::print(db->doc), tradestate::detail::print(da->doc));
    EXPECT_EQ(tradestate::detail::print(dp->doc), tradestate::detail::print(da->doc));
}

// --------------------------------------------------------- server restart

/// A second private server, owned by one test.
class OwnServer {
public:
    OwnServer() {
        char tmpl[] = "/tmp/tspgr.XXXXXX";
        if (!::mkdtemp(tmpl)) throw std::runtime_error("mkdtemp failed");
        dir_ = tmpl;
        url_ = run("start");
        while (!url_.empty() && url_.back() == '\n') url_.pop_back();
    }
    ~OwnServer() { (void)run("stop"); }
    std::string run(const std::string& cmd) {
        const std::string line = std::string(TRADESTATE_TEST_PG_SCRIPT) + " " + cmd + " " + dir_ + " 2>&1";
        std::string out;
        FILE* f = ::popen(line.c_str(), "r");
        if (!f) throw std::runtime_error("popen failed");
        char buf[512];
        while (std::fgets(buf, sizeof buf, f)) out += buf;
        if (::pclose(f) != 0) throw std::runtime_error(line + " failed: " + out);
        return out;
    }
    [[nodiscard]] const std::string& url() const { return url_; }

private:
    std::string dir_, url_;
};

TEST_F(PgTest, ServerRestartMidRunBackendSurvivesAndStateIsIntact) {
    OwnServer server;
    struct Restore {
        std::string& ref;
        std::string old;
        ~Restore() { ref = old; } // TearDown cleans the shared server; this one is deleted whole
    } restore{url_, url_};
    url_ = server.url();
    auto b = open({{"retry_initial_ms", 20}, {"retry_max_ms", 200}, {"connect_timeout", 2}});
    auto lease = b->acquire_writer("runner");
    b->save("runner", as_doc(seed_doc(1)), meta_for(1));
    b->save("runner", as_doc(seed_doc(2)), meta_for(2));

    (void)server.run("halt");
    try {
        b->save("runner", as_doc(seed_doc(3)), meta_for(3));
        FAIL() << "save succeeded while the server was down";
    } catch (const Error& e) {
        EXPECT_EQ(e.code(), Errc::io);
        EXPECT_NE(std::string(e.what()).find("saving session 'runner'"), std::string::npos) << e.what();
    }
    EXPECT_THROW((void)b->load("runner"), Error);
    EXPECT_TRUE(lease->valid()); // unknown while down; nobody else can write either

    (void)server.run("start");
    // The runner keeps calling save at its next auto-save; backoff is short here.
    int failures = 0;
    ASSERT_TRUE(eventually(
        [&] {
            try {
                b->save("runner", as_doc(seed_doc(3)), meta_for(3));
                return true;
            } catch (const Error& e) {
                EXPECT_EQ(e.code(), Errc::io) << e.what();
                ++failures;
                return false;
            }
        },
        20s));
    auto r = b->load("runner");
    ASSERT_TRUE(r);
    EXPECT_EQ(r->sequence, 3u);
    EXPECT_EQ(print(r->doc), print(seed_doc(3)));
    ASSERT_EQ(b->history("runner").size(), 3u);
    EXPECT_EQ(print(b->load_at("runner", 2)->doc), print(seed_doc(2)));
    EXPECT_TRUE(lease->valid());
    auto other = loader().open("postgres", [&] {
        auto o = options();
        o.settings["url"] = server.url();
        return o;
    }());
    EXPECT_THROW((void)other->acquire_writer("runner"), Error);
    lease.reset();
}

// ------------------------------------------------------ per-trade journal

namespace jop = tradestate::session_op;
using tradestate::BackendJournal;
using tradestate::JournalFsync;
using tradestate::Money;

json::object cash_op(std::uint64_t n) { return jop::cash(Money::from_paise(static_cast<std::int64_t>(n)), "t" + std::to_string(n)); }

TEST_F(PgTest, JournalAppendReadCompactAndReplay) {
    auto b = open();
    ASSERT_TRUE(b->has_journal());
    EXPECT_FALSE(b->journal_read("j").has_value());
    auto lease = b->acquire_writer("j");
    auto w = BackendJournal::create(*b, "j", JournalFsync::always, 0, 0x1234abcd);
    EXPECT_EQ(w->id(), 0x1234abcdu);
    EXPECT_EQ(w->append(cash_op(1)), 1u);
    EXPECT_EQ(w->append(cash_op(2)), 2u);
    EXPECT_EQ(w->append(std::vector<json::object>{cash_op(3), cash_op(4), cash_op(5)}), 5u);
    auto stored = b->journal_read("j");
    ASSERT_TRUE(stored);
    EXPECT_EQ(stored->id, 0x1234abcdu);
    EXPECT_EQ(stored->base_seq, 0u);
    EXPECT_NE(stored->location.find(schema_), std::string::npos) << stored->location;
    auto c = tradestate::decode_journal(*stored);
    ASSERT_EQ(c.records.size(), 5u);
    for (std::uint64_t i = 0; i < 5; ++i) {
        EXPECT_EQ(c.records[i].seq, i + 1);
        EXPECT_EQ(c.records[i].op, cash_op(i + 1));
    }
    // A snapshot holds records 1..3: they go, 4 and 5 stay.
    w->compact(3);
    c = tradestate::decode_journal(*b->journal_read("j"));
    EXPECT_EQ(c.base_seq, 3u);
    ASSERT_EQ(c.records.size(), 2u);
    EXPECT_EQ(c.records[0].seq, 4u);
    // Replay over a state that holds record 3 applies exactly 4 and 5.
    tradestate::SessionState st;
    st.portfolio = tradestate::Portfolio(Money::from_rupees(1000));
    const auto r = tradestate::replay_journal(st, c, 3, "j");
    EXPECT_EQ(r.applied, 2u);
    EXPECT_EQ(st.portfolio.cash(), Money::from_rupees(1000) + Money::from_paise(9));
    EXPECT_EQ(r.last_seq, 5u);
    // Another writer object continues where the journal ends.
    w.reset();
    auto w2 = BackendJournal::open(*b, "j", JournalFsync::every_second);
    EXPECT_EQ(w2->last_seq(), 5u);
    EXPECT_EQ(w2->append(cash_op(6)), 6u);
    w2->compact(6);
    EXPECT_TRUE(b->journal_read("j")->records.empty());
    EXPECT_EQ(b->journal_read("j")->base_seq, 6u);
    // remove() takes the journal with the session.
    b->save("j", as_doc(seed_doc(1)), meta_for(1));
    lease.reset();
    EXPECT_TRUE(b->remove("j"));
    EXPECT_FALSE(b->journal_read("j").has_value());
}

TEST_F(PgTest, JournalRecordChangedBehindOurBackIsNamedCorruption) {
    auto b = open();
    auto lease = b->acquire_writer("j");
    auto w = BackendJournal::create(*b, "j", JournalFsync::always, 0, 7);
    (void)w->append(std::vector<json::object>{cash_op(1), cash_op(2), cash_op(3)});
    Raw raw(url_);
    raw.exec("UPDATE " + q("journal") + " SET payload = replace(payload, 't2', 't9') WHERE seq = 2");
    {
        const auto c = tradestate::decode_journal(*b->journal_read("j"));
        ASSERT_FALSE(c.intact()) << "a changed record was accepted";
        EXPECT_EQ(c.records.size(), 1u) << "decoding stops at the changed record";
        EXPECT_NE(c.corruption.find("journal record 2"), std::string::npos) << c.corruption;
        EXPECT_NE(c.corruption.find("checksum mismatch"), std::string::npos) << c.corruption;
    }
    raw.exec("DELETE FROM " + q("journal") + " WHERE seq = 2");
    {
        const auto c = tradestate::decode_journal(*b->journal_read("j"));
        ASSERT_FALSE(c.intact()) << "a missing record was accepted";
        EXPECT_NE(c.corruption.find("expected record 2"), std::string::npos) << c.corruption;
    }
    // Even the last record deleted is named: the head remembers what was appended.
    raw.exec("DELETE FROM " + q("journal") + " WHERE seq = 3");
    {
        const auto c = tradestate::decode_journal(*b->journal_read("j"));
        ASSERT_FALSE(c.intact()) << "a deleted last record went unnoticed";
        EXPECT_NE(c.corruption.find("records 2..3 were appended but are no longer stored"), std::string::npos)
            << c.corruption;
    }
}

TEST_F(PgTest, JournalAppendsAreFencedAndChecked) {
    auto a = open({{"application_name", "runner-a"}});
    auto b = open({{"application_name", "runner-b"}});
    auto lease = a->acquire_writer("j");
    auto w = BackendJournal::create(*a, "j", JournalFsync::always, 10, 99);
    EXPECT_EQ(w->append(cash_op(1)), 11u);
    // Another process without the lease is refused, naming the holder.
    auto e1 = tradestate::JournalEntry{12, tradestate::detail::print(json::value(cash_op(2)), {-1}), 0};
    e1.checksum = tradestate::detail::record_checksum(e1.seq, e1.payload);
    try {
        b->journal_append("j", 99, {e1}, true);
        FAIL() << "an append without the lease landed";
    } catch (const Error& e) {
        EXPECT_EQ(e.code(), Errc::locked) << e.what();
        EXPECT_NE(std::string(e.what()).find("runner-a"), std::string::npos) << e.what();
    }
    // A gap, a wrong journal id: refused. The same records again (a retry): accepted once.
    auto gap = e1;
    gap.seq = 14;
    gap.checksum = tradestate::detail::record_checksum(gap.seq, gap.payload);
    EXPECT_THROW(a->journal_append("j", 99, {gap}, true), Error);
    EXPECT_THROW(a->journal_append("j", 98, {e1}, true), Error);
    a->journal_append("j", 99, {e1}, true);
    a->journal_append("j", 99, {e1}, false);
    auto c = tradestate::decode_journal(*a->journal_read("j"));
    ASSERT_EQ(c.records.size(), 2u);
    EXPECT_EQ(c.records.back().seq, 12u);
    auto other = e1;
    other.payload = tradestate::detail::print(json::value(cash_op(77)), {-1});
    other.checksum = tradestate::detail::record_checksum(other.seq, other.payload);
    try {
        a->journal_append("j", 99, {other}, true);
        FAIL() << "a different record 12 replaced the stored one";
    } catch (const Error& e) {
        EXPECT_EQ(e.code(), Errc::corrupt) << e.what();
    }
    // A new journal keeps the unsnapshotted records aside instead of dropping them.
    auto w2 = BackendJournal::create(*a, "j", JournalFsync::always, 0, 100);
    EXPECT_TRUE(a->journal_read("j")->records.empty());
    Raw raw(url_);
    EXPECT_EQ(raw.one("SELECT count(*) FROM " + q("journal_replaced") + " WHERE journal_id = '" +
                      tradestate::detail::hex64(99) + "'"),
              "2");
}

TEST_F(PgTest, KilledJournalWriterLosesNoAcknowledgedRecord) {
    // A child appends records (policy always) and acknowledges each on a
    // pipe; it is SIGKILLed at a random moment, then the next child
    // continues. Every acknowledged record must be stored, in order.
    const auto options_for_child = options();
    std::mt19937 rng(20261127);
    std::uint64_t max_acked = 0, acks = 0;
    for (int round = 0; round < 12; ++round) {
        int fds[2];
        ASSERT_EQ(::pipe(fds), 0);
        const pid_t pid = ::fork();
        ASSERT_GE(pid, 0);
        if (pid == 0) {
            ::close(fds[0]);
            try {
                auto loader = tradestate::PluginLoader({tradestate::testing::plugin_dir()}, quiet());
                auto b = loader.open("postgres", options_for_child);
                std::unique_ptr<tradestate::WriterLease> lease;
                for (int i = 0; !lease; ++i) {
                    try {
                        lease = b->acquire_writer("k");
                    } catch (const Error&) {
                        if (i > 200) ::_exit(3);
                    }
                }
                std::unique_ptr<BackendJournal> w;
                if (b->journal_read("k")) w = BackendJournal::open(*b, "k", JournalFsync::always);
                else w = BackendJournal::create(*b, "k", JournalFsync::always, 0, 42);
                for (;;) {
                    const std::uint64_t next = w->last_seq() + 1;
                    const auto seq = w->append(cash_op(next));
                    if (::write(fds[1], &seq, sizeof seq) != static_cast<ssize_t>(sizeof seq)) ::_exit(4);
                }
            } catch (...) {
                ::_exit(5);
            }
        }
        ::close(fds[1]);
        std::uint64_t seq = 0;
        // Wait for the first ack of this round, then kill after a random delay.
        ASSERT_EQ(::read(fds[0], &seq, sizeof seq), static_cast<ssize_t>(sizeof seq)) << "round " << round;
        std::this_thread::sleep_for(std::chrono::milliseconds(std::uniform_int_distribution<int>(1, 80)(rng)));
        ::kill(pid, SIGKILL);
        int status = 0;
        ::waitpid(pid, &status, 0);
        ASSERT_TRUE(WIFSIGNALED(status)) << "child exited with " << WEXITSTATUS(status);
        do {
            EXPECT_GT(seq, max_acked);
            max_acked = seq;
            ++acks;
        } while (::read(fds[0], &seq, sizeof seq) == static_cast<ssize_t>(sizeof seq));
        ::close(fds[0]);
        auto b = open();
        const auto c = tradestate::decode_journal(*b->journal_read("k"));
        ASSERT_GE(c.last_seq(), max_acked) << "round " << round << ": an acknowledged record is missing";
        ASSERT_EQ(c.records.size(), c.last_seq());
        for (const auto& r : c.records) ASSERT_EQ(r.op, cash_op(r.seq));
    }
    EXPECT_GT(acks, 12u);
    std::cout << "journal kill test: 12 SIGKILLs, " << acks << " acknowledged appends, none lost\n";
}

} // namespace
