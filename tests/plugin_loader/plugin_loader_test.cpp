// Plugin loading through Boost.DLL: the real json-files plugin, and every way
// a plugin can be wrong (unknown, missing dir, unloadable, not a plugin, ABI
// mismatch, misnamed), plus library lifetime and logger passing.
#include <tradestate_test/support.hpp>

#include <tradestate/detail/atomic_file.hpp>
#include <tradestate/open.hpp>
#include <tradestate/plugin_loader.hpp>

#include <spdlog/sinks/ostream_sink.h>
#include <spdlog/spdlog.h>

#include <gtest/gtest.h>

#include <boost/json.hpp>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

#include <grp.h>
#include <unistd.h>

using namespace tradestate;
namespace fs = std::filesystem;

namespace {

const fs::path plugin_dir = tradestate::testing::plugin_dir();
const fs::path bad_dir = TRADESTATE_TEST_BAD_PLUGIN_DIR;
using tradestate::testing::TempDir;

std::shared_ptr<spdlog::logger> quiet() { return tradestate::testing::quiet_logger(); }

BackendOptions opts_in(const fs::path& dir) { return tradestate::testing::options_in(dir, false); }

/// Run `fn`, expect a tradestate::Error with `code`; return its message.
template <class F>
std::string error_of(F&& fn, Errc code) {
    try {
        fn();
    } catch (const Error& e) {
        EXPECT_EQ(e.code(), code) << e.what();
        return e.what();
    } catch (const std::exception& e) {
        ADD_FAILURE() << "not a tradestate::Error: " << e.what();
        return e.what();
    }
    ADD_FAILURE() << "no error";
    return {};
}

bool mapped(const fs::path& lib) {
    std::ifstream maps("/proc/self/maps");
    std::string line;
    const std::string want = fs::canonical(lib).string();
    while (std::getline(maps, line))
        if (line.find(want) != std::string::npos) return true;
    return false;
}

TEST(PluginLoader, LoadsJsonFilesByNameFromThePluginDir) {
    TempDir tmp;
    PluginLoader loader({plugin_dir}, quiet());
    const auto names = loader.available();
    EXPECT_NE(std::find(names.begin(), names.end(), "json-files"), names.end());
    EXPECT_EQ(loader.locate("json-files"), plugin_dir / "libtradestate-backend-json-files.so");
    auto b = loader.open("json-files", opts_in(tmp.path()));
    ASSERT_TRUE(b);
    EXPECT_EQ(b->name(), "json-files");
    Document d;
    d.main = boost::json::object{{"iteration", 3}};
    b->save("default", d, SaveMeta{"2025-09-29T11:49:10.218268", 3, 0, 100});
    auto r = b->load("default");
    ASSERT_TRUE(r);
    EXPECT_EQ(r->doc, d.main);
    EXPECT_EQ(r->meta.cash_paise, 100);
}

TEST(PluginLoader, DefaultSearchFindsThePluginsNextToTheExecutable) {
    // test programs live in <build>/bin, plugins in <build>/lib/tradestate/plugins
    const auto dirs = plugin_search_dirs();
    ASSERT_FALSE(dirs.empty());
    EXPECT_EQ(fs::weakly_canonical(dirs[0]), fs::weakly_canonical(plugin_dir));
    // then the install dir (listed once, even when it is the same directory)
    EXPECT_EQ(dirs.back(), fs::path(TRADESTATE_INSTALL_PLUGIN_DIR).lexically_normal());
    EXPECT_EQ(plugin_search_dirs("/opt/x"), std::vector<fs::path>{"/opt/x"}); // configured: only there
    PluginLoader loader(dirs, quiet());
    const auto names = loader.available();
    EXPECT_NE(std::find(names.begin(), names.end(), "json-files"), names.end());
}

TEST(PluginLoader, UnknownBackendListsTheAvailableOnes) {
    PluginLoader loader({plugin_dir}, quiet());
    const auto msg = error_of([&] { (void)loader.open("no-such-backend", opts_in("/tmp")); }, Errc::not_found);
    EXPECT_NE(msg.find("unknown backend 'no-such-backend'"), std::string::npos) << msg;
    EXPECT_NE(msg.find("available backends:"), std::string::npos) << msg;
    EXPECT_NE(msg.find("json-files"), std::string::npos) << msg;
    EXPECT_NE(msg.find(plugin_dir.string()), std::string::npos) << msg;
}

TEST(PluginLoader, MissingPluginDirIsNamed) {
    TempDir tmp;
    const fs::path missing = tmp.path() / "no" / "plugins";
    PluginLoader loader({missing}, quiet());
    EXPECT_TRUE(loader.available().empty());
    const auto msg = error_of([&] { (void)loader.open("json-files", opts_in(tmp.path())); }, Errc::not_found);
    EXPECT_NE(msg.find(missing.string() + " (does not exist)"), std::string::npos) << msg;
    EXPECT_NE(msg.find("plugin_dir"), std::string::npos) << msg;
}

TEST(PluginLoader, ADirectoryWithoutPluginsIsNamedAsResolved) {
    TempDir tmp;
    fs::create_directories(tmp.path() / "empty");
    const auto cwd = fs::current_path();
    fs::current_path(tmp.path());
    PluginLoader loader({"empty/../empty"}, quiet());
    const auto msg = error_of([&] { (void)loader.open("json-files", opts_in(tmp.path())); }, Errc::not_found);
    fs::current_path(cwd);
    EXPECT_NE(msg.find("no tradestate plugins (libtradestate-backend-*.so) in:"), std::string::npos) << msg;
    EXPECT_NE(msg.find("empty/../empty (= " + fs::weakly_canonical(tmp.path() / "empty").string() + ")"), std::string::npos)
        << msg;
    EXPECT_EQ(msg.find("unknown backend"), std::string::npos) << msg;
}

TEST(PluginLoader, UnloadableLibraryShowsTheLoadersMessage) {
    PluginLoader loader({bad_dir}, quiet());
    const auto msg = error_of([&] { (void)loader.open("undefined-symbol", opts_in("/tmp")); }, Errc::plugin);
    EXPECT_NE(msg.find("cannot load plugin " + (bad_dir / "libtradestate-backend-undefined-symbol.so").string()),
              std::string::npos)
        << msg;
    EXPECT_NE(msg.find("undefined symbol: tradestate_test_symbol_nobody_defines"), std::string::npos) << msg;
}

TEST(PluginLoader, GarbageFileIsAnUnloadablePlugin) {
    TempDir tmp;
    {
        std::ofstream f(tmp.path() / "libtradestate-backend-garbage.so");
        for (int i = 0; i < 100; ++i) f << "this is not an ELF file\n"; // long enough to have a header
    }
    PluginLoader loader({tmp.path()}, quiet());
    EXPECT_EQ(loader.available(), std::vector<std::string>{"garbage"});
    const auto msg = error_of([&] { (void)loader.open("garbage", opts_in(tmp.path())); }, Errc::plugin);
    EXPECT_NE(msg.find("libtradestate-backend-garbage.so"), std::string::npos) << msg;
    EXPECT_NE(msg.find("invalid ELF header"), std::string::npos) << msg;
}

TEST(PluginLoader, APluginBuiltForAnotherMachineSaysSo) {
    // A real plugin with the machine of its ELF header set to AArch64 (and
    // one set to 32-bit): what a package for another architecture holds.
#if !defined(__x86_64__)
    GTEST_SKIP() << "the patched headers are foreign to an x86-64 host; this host is not one";
#endif
    TempDir tmp;
    const auto make = [&](const std::string& name, std::size_t at, std::string bytes) {
        const fs::path lib = tmp.path() / ("libtradestate-backend-" + name + ".so");
        std::string image = detail::read_file(plugin_dir / "libtradestate-backend-json-files.so");
        image.replace(at, bytes.size(), bytes);
        detail::write_file_atomic(lib, image, false);
        fs::permissions(lib, fs::perms::owner_read | fs::perms::owner_write | fs::perms::group_read | fs::perms::others_read);
        return lib;
    };
    const auto arm = make("arm", 18, std::string("\xb7\x00", 2)); // e_machine = 183, little-endian
    const auto thirty_two = make("thirty-two", 4, "\x01");          // EI_CLASS = ELFCLASS32
    PluginLoader loader({tmp.path()}, quiet());
    auto msg = error_of([&] { (void)loader.open("arm", opts_in(tmp.path())); }, Errc::plugin);
    EXPECT_NE(msg.find("cannot load plugin " + arm.string() + ": it is built for AArch64 (ARM 64-bit), 64-bit little-endian"),
              std::string::npos)
        << msg;
    EXPECT_NE(msg.find("but this program runs on x86-64"), std::string::npos) << msg;
    msg = error_of([&] { (void)loader.open("thirty-two", opts_in(tmp.path())); }, Errc::plugin);
    EXPECT_NE(msg.find(thirty_two.string() + ": it is built for x86-64, 32-bit little-endian"), std::string::npos) << msg;
}

TEST(PluginLoader, LibraryWithoutTheEntryPointsIsNotAPlugin) {
    PluginLoader loader({bad_dir}, quiet());
    const auto msg = error_of([&] { (void)loader.open("not-a-plugin", opts_in("/tmp")); }, Errc::plugin);
    EXPECT_NE(msg.find("is not a tradestate backend plugin"), std::string::npos) << msg;
}

TEST(PluginLoader, AbiMismatchSaysWhatToRebuild) {
    PluginLoader loader({bad_dir}, quiet());
    // the fixture's factory aborts: reaching it would kill this test
    const auto msg = error_of([&] { (void)loader.open("abi-mismatch", opts_in("/tmp")); }, Errc::abi_mismatch);
    EXPECT_NE(msg.find("speaks plugin ABI " + std::to_string(plugin_abi_version + 1)), std::string::npos) << msg;
    EXPECT_NE(msg.find("this program speaks ABI " + std::to_string(plugin_abi_version)), std::string::npos) << msg;
    EXPECT_NE(msg.find("built with tradestate 99.0.0"), std::string::npos) << msg;
    EXPECT_NE(msg.find("rebuild the plugin"), std::string::npos) << msg;
    // it is never in the real plugin dir
    EXPECT_FALSE(fs::exists(plugin_dir / "libtradestate-backend-abi-mismatch.so"));
}

TEST(PluginLoader, PluginThatCallsItselfSomethingElseIsRefused) {
    TempDir tmp;
    fs::copy_file(plugin_dir / "libtradestate-backend-json-files.so", tmp.path() / "libtradestate-backend-other.so");
    PluginLoader loader({tmp.path()}, quiet());
    const auto msg = error_of([&] { (void)loader.open("other", opts_in(tmp.path())); }, Errc::plugin);
    EXPECT_NE(msg.find("calls itself backend 'json-files', expected 'other'"), std::string::npos) << msg;
}

TEST(PluginLoader, LibraryStaysLoadedWhileTheBackendLives) {
    TempDir tmp;
    const fs::path lib = plugin_dir / "libtradestate-backend-json-files.so";
    std::shared_ptr<Backend> b;
    {
        PluginLoader loader({plugin_dir}, quiet());
        b = loader.open("json-files", opts_in(tmp.path()));
    } // the loader is gone
    ASSERT_TRUE(mapped(lib));
    Document d;
    d.main = boost::json::object{{"k", "v"}};
    b->save("s", d, {}); // code from the plugin still runs
    auto r = b->load("s");
    ASSERT_TRUE(r);
    EXPECT_EQ(r->doc, d.main);
    EXPECT_TRUE(mapped(lib));
    EXPECT_EQ(b.use_count(), 1);
    b.reset(); // last owner: backend destroyed first, then the library handle
}

TEST(PluginLoader, PluginLogsThroughTheHostsLogger) {
    TempDir tmp;
    std::ostringstream captured;
    auto sink = std::make_shared<spdlog::sinks::ostream_sink_mt>(captured);
    auto logger = std::make_shared<spdlog::logger>("host", sink);
    logger->set_level(spdlog::level::debug);
    PluginLoader loader({plugin_dir}, logger);
    BackendOptions o;
    o.state_dir = tmp.path();
    o.fsync = false;
    auto b = loader.open("json-files", o); // o.logger empty: the loader's is passed
    Document d;
    d.main = boost::json::object{{"iteration", 1}};
    b->save("default", d, {});
    logger->flush();
    EXPECT_NE(captured.str().find("json-files: saved session 'default' sequence 1"), std::string::npos) << captured.str();
    EXPECT_NE(captured.str().find("[host]"), std::string::npos) << captured.str();
    // What a load finds worth telling is returned to the host (which reports it once), not logged by the plugin.
    std::ofstream(tmp.path() / "fno_system_state.json") << R"({"iteration": 1, "portfolio": {"cash": 10.5}})";
    captured.str("");
    auto r = b->load("default");
    ASSERT_TRUE(r);
    EXPECT_EQ(r->meta.cash_paise, 1050);
    ASSERT_EQ(r->warnings.size(), 1u);
    EXPECT_NE(r->warnings[0].find("no checksum (written by another program)"), std::string::npos);
    logger->flush();
    EXPECT_EQ(captured.str().find("no checksum"), std::string::npos) << captured.str();
}

TEST(PluginLoader, ABackendNameIsCheckedBeforeItBecomesAPath) {
    // backend = "x/../../evil2" would name <dir>/libtradestate-backend-x/../../evil2.so
    TempDir tmp;
    fs::create_directories(tmp.path() / "a" / "plugins" / "libtradestate-backend-x");
    fs::copy_file(plugin_dir / "libtradestate-backend-json-files.so", tmp.path() / "a" / "evil2.so");
    PluginLoader loader({tmp.path() / "a" / "plugins"}, quiet());
    for (const std::string name : {"x/../../evil2", "../evil2", "", ".hidden", "a b"}) {
        const auto msg = error_of([&] { (void)loader.open(name, opts_in(tmp.path())); }, Errc::invalid_argument);
        EXPECT_NE(msg.find("invalid backend name"), std::string::npos) << msg;
    }
    EXPECT_FALSE(mapped(tmp.path() / "a" / "evil2.so"));
}

TEST(PluginLoader, APluginOthersCanWriteIsRefusedWithTheReason) {
    TempDir tmp;
    const fs::path dir = tmp.path() / "plugins", lib = dir / "libtradestate-backend-json-files.so";
    fs::create_directories(dir);
    fs::copy_file(plugin_dir / "libtradestate-backend-json-files.so", lib);
    fs::permissions(dir, fs::perms(0755));
    PluginLoader loader({dir}, quiet());
    auto refused = [&](const std::string& what) {
        const auto msg = error_of([&] { (void)loader.open("json-files", opts_in(tmp.path())); }, Errc::plugin);
        EXPECT_NE(msg.find(what), std::string::npos) << msg;
        EXPECT_NE(msg.find("chmod go-w"), std::string::npos) << msg;
    };
    fs::permissions(lib, fs::perms(0666));
    refused("the file " + lib.string() + " is writable by everyone (mode 0666)");
    fs::permissions(lib, fs::perms(0644));
    fs::permissions(dir, fs::perms(0777));
    refused("its directory " + dir.string() + " is writable by everyone (mode 0777)");
    if (const ::group* g = ::getgrnam("nogroup"); g && ::geteuid() == 0) {
        fs::permissions(dir, fs::perms(0755));
        ASSERT_EQ(::chown(lib.c_str(), static_cast<uid_t>(-1), g->gr_gid), 0);
        fs::permissions(lib, fs::perms(0664));
        refused("is writable by its group (mode 0664)");
        fs::permissions(lib, fs::perms(0644));
    }
    // a sticky directory (as /tmp) lets no one replace our file: loads
    fs::permissions(dir, fs::perms(01777));
    EXPECT_NO_THROW((void)loader.open("json-files", opts_in(tmp.path())));
    fs::permissions(dir, fs::perms(0755));
    EXPECT_NO_THROW((void)loader.open("json-files", opts_in(tmp.path())));
}

TEST(OpenBackend, SettingsForABackendThatDoesNotExistAreRefused) {
    TempDir tmp;
    auto cfg = Config::parse("[persistence]\nbackend = \"json-files\"\nplugin_dir = \"" + plugin_dir.string() +
                                 "\"\nstate_dir = \"" + tmp.str() + "\"\n\n[persistence.compresed-archive]\nkeep_days = 3\n",
                             "mmap.toml");
    const auto msg = error_of([&] { (void)open_backend(cfg, quiet()); }, Errc::config);
    EXPECT_NE(msg.find("[persistence.compresed-archive]: there is no backend 'compresed-archive'"), std::string::npos)
        << msg;
    EXPECT_NE(msg.find("available backends: "), std::string::npos) << msg;
    EXPECT_NE(msg.find("json-files"), std::string::npos) << msg;
    // a table for a backend that exists is fine, also when another one is selected
    const auto ok = Config::parse("[persistence]\nbackend = \"json-files\"\nplugin_dir = \"" + plugin_dir.string() +
                                      "\"\nstate_dir = \"" + tmp.str() + "\"\n\n[persistence.mmap-binary]\n",
                                  "mmap.toml");
    EXPECT_NO_THROW((void)open_backend(ok, quiet()));
}

TEST(OpenBackend, ABackendNameInConfigTomlIsCheckedWhereItIsWritten) {
    try {
        (void)Config::parse("[persistence]\nbackend = \"x/../../evil2\"\n", "mine.toml");
        FAIL() << "accepted";
    } catch (const Error& e) {
        EXPECT_EQ(e.code(), Errc::config);
        EXPECT_NE(std::string(e.what()).find("mine.toml:2:"), std::string::npos) << e.what();
        EXPECT_NE(std::string(e.what()).find("is not a backend name"), std::string::npos) << e.what();
    }
}

} // namespace
