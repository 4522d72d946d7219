// write_file_atomic: old or new content after a SIGKILL at any moment, and
// nothing left behind when a step fails.
#include <tradestate_test/support.hpp>

#include <tradestate/detail/atomic_file.hpp>

#include <gtest/gtest.h>

#include <filesystem>
#include <random>
#include <thread>

#include <signal.h>
#include <sys/wait.h>

namespace fs = std::filesystem;
using namespace tradestate;
namespace d = tradestate::detail;
using tradestate::testing::TempDir;

namespace {
std::string content(int generation) {
    // Large enough to need several write() calls' worth of pages, and self-describing.
    std::string s = "generation " + std::to_string(generation) + "\n";
    s.append(200000 + generation % 7 * 4096, static_cast<char>('a' + generation % 26));
    s += "\nend " + std::to_string(generation) + "\n";
    return s;
}

bool is_some_generation(const std::string& s, int max_gen) {
    for (int g = 0; g <= max_gen; ++g)
        if (s == content(g)) return true;
    return false;
}
} // namespace

TEST(AtomicFile, SurvivesSigkillAtRandomMoments) {
    TempDir dir;
    const fs::path target = dir.path() / "state.json";
    d::write_file_atomic(target, content(0));
    std::mt19937 rng(99);
    std::uniform_int_distribution<int> wait_us(0, 3000);
    int gen_base = 0;
    constexpr int kills = 200;
    for (int k = 0; k < kills; ++k) {
        int pipefd[2];
        ASSERT_EQ(::pipe(pipefd), 0);
        const pid_t pid = ::fork();
        ASSERT_GE(pid, 0);
        if (pid == 0) {
            ::close(pipefd[0]);
            for (int g = gen_base + 1;; ++g) {
                d::write_file_atomic(target, content(g % 50));
                char c = 1;
                if (::write(pipefd[1], &c, 1) != 1) ::_exit(2);
            }
        }
        ::close(pipefd[1]);
        char c;
        ASSERT_EQ(::read(pipefd[0], &c, 1), 1); // at least one save done
        std::this_thread::sleep_for(std::chrono::microseconds(wait_us(rng)));
        ::kill(pid, SIGKILL);
        int status = 0;
        ::waitpid(pid, &status, 0);
        ::close(pipefd[0]);
        ASSERT_TRUE(WIFSIGNALED(status));
        const std::string now = d::read_file(target);
        ASSERT_TRUE(is_some_generation(now, 49)) << "torn file after kill " << k << ", size " << now.size();
    }
    // Temp files of killed writers may remain (they are invisible dot-files); the target never is one of them.
    for (auto& e : fs::directory_iterator(dir.path())) {
        if (e.path() == target) continue;
        EXPECT_EQ(e.path().filename().string().rfind(".state.json.tmp.", 0), 0u) << e.path();
    }
}

TEST(AtomicFile, FailedRenameLeavesTargetAndNoTempFile) {
    TempDir dir;
    const fs::path target = dir.path() / "is_a_dir";
    fs::create_directories(target / "child"); // rename(file, non-empty dir) fails
    try {
        d::write_file_atomic(target, "data");
        FAIL();
    } catch (const Error& e) {
        EXPECT_EQ(e.code(), Errc::io);
        EXPECT_NE(std::string(e.what()).find(target.string()), std::string::npos) << e.what();
    }
    int entries = 0;
    for ([[maybe_unused]] auto& e : fs::directory_iterator(dir.path())) ++entries;
    EXPECT_EQ(entries, 1); // only the directory itself
}

TEST(AtomicFile, MissingDirectoryIsAClearError) {
    TempDir dir;
    try {
        d::write_file_atomic(dir.path() / "nope" / "x.json", "data");
        FAIL();
    } catch (const Error& e) {
        EXPECT_EQ(e.code(), Errc::io);
        EXPECT_NE(std::string(e.what()).find("cannot create temporary file"), std::string::npos) << e.what();
    }
}

TEST(AtomicFile, ReadRefusesOversizedFiles) {
    TempDir dir;
    d::write_file_atomic(dir.path() / "big", std::string(5000, 'x'));
    EXPECT_EQ(d::read_file(dir.path() / "big", 5000).size(), 5000u);
    try {
        (void)d::read_file(dir.path() / "big", 4999);
        FAIL();
    } catch (const Error& e) {
        EXPECT_EQ(e.code(), Errc::corrupt);
        EXPECT_NE(std::string(e.what()).find("over the limit of 4999 bytes"), std::string::npos);
    }
    EXPECT_THROW((void)d::read_file(dir.path() / "absent"), Error);
}
