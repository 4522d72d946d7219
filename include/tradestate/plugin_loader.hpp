// tradestate — finding and loading backend plugins with Boost.DLL.
//
// A backend named NAME lives in `libtradestate-backend-NAME.so`. The host
// looks in, in order: the configured plugin_dir (only there, if one is
// configured); otherwise `<executable dir>/../lib/tradestate/plugins`
// (the build tree and an installed prefix share this shape), then the
// install directory compiled in (TRADESTATE_INSTALL_PLUGIN_DIR).
//
// Before calling anything else in a library it reads the C-linkage
// `tradestate_plugin_abi_version()` and refuses a mismatch. The returned
// Backend keeps its library loaded for as long as it lives.
#pragma once

#include <tradestate/backend.hpp>
#include <tradestate/detail/session_name.hpp>
#include <tradestate/error.hpp>
#include <tradestate/version.hpp>

#include <boost/dll/runtime_symbol_info.hpp>
#include <boost/dll/shared_library.hpp>

#include <spdlog/spdlog.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <system_error>
#include <utility>
#include <vector>

#include <dlfcn.h>
#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <sys/stat.h>
#include <unistd.h>

#ifndef TRADESTATE_INSTALL_PLUGIN_DIR
#define TRADESTATE_INSTALL_PLUGIN_DIR "/usr/local/lib/tradestate/plugins"
#endif

namespace tradestate {

inline constexpr const char* plugin_file_prefix = "libtradestate-backend-";
inline constexpr const char* plugin_file_suffix = ".so";

/// File name of the plugin for backend `name`.
[[nodiscard]] inline std::string plugin_file_name(const std::string& name) {
    return plugin_file_prefix + name + plugin_file_suffix;
}

/// Where plugins are looked for: `configured` alone if not empty, else next
/// to the running executable, then the install directory.
[[nodiscard]] inline std::vector<std::filesystem::path> plugin_search_dirs(const std::filesystem::path& configured = {}) {
    if (!configured.empty()) return {configured};
    std::vector<std::filesystem::path> dirs;
    boost::dll::fs::error_code ec;
    auto exe = boost::dll::program_location(ec);
    if (!ec) {
        auto near = std::filesystem::path(exe.parent_path().string()) / ".." / "lib" / "tradestate" / "plugins";
        dirs.push_back(near.lexically_normal());
    }
    const auto installed = std::filesystem::path(TRADESTATE_INSTALL_PLUGIN_DIR).lexically_normal();
    if (std::find(dirs.begin(), dirs.end(), installed) == dirs.end()) dirs.push_back(installed);
    return dirs;
}

/// Loads backends from a list of directories.
class PluginLoader {
public:
    explicit PluginLoader(std::vector<std::filesystem::path> dirs = plugin_search_dirs(),
                          std::shared_ptr<spdlog::logger> logger = spdlog::default_logger())
        : dirs_(std::move(dirs)), logger_(std::move(logger)) {}

    [[nodiscard]] const std::vector<std::filesystem::path>& search_dirs() const noexcept { return dirs_; }

    /// Names of all backends found, sorted, without duplicates.
    [[nodiscard]] std::vector<std::string> available() const {
        std::vector<std::string> names;
        const std::string prefix = plugin_file_prefix, suffix = plugin_file_suffix;
        for (const auto& d : dirs_) {
            std::error_code ec;
            for (auto it = std::filesystem::directory_iterator(d, ec); !ec && it != std::filesystem::directory_iterator();
                 it.increment(ec)) {
                auto f = it->path().filename().string();
                if (f.size() > prefix.size() + suffix.size() && f.compare(0, prefix.size(), prefix) == 0 &&
                    f.compare(f.size() - suffix.size(), suffix.size(), suffix) == 0)
                    names.push_back(f.substr(prefix.size(), f.size() - prefix.size() - suffix.size()));
            }
        }
        std::sort(names.begin(), names.end());
        names.erase(std::unique(names.begin(), names.end()), names.end());
        return names;
    }

    /// Path of the plugin for `name`, or throw a message listing what exists.
    [[nodiscard]] std::filesystem::path locate(const std::string& name) const {
        detail::validate_portable_name(name, "backend name"); // it becomes part of a path
        for (const auto& d : dirs_) {
            auto p = d / plugin_file_name(name);
            std::error_code ec;
            if (std::filesystem::exists(p, ec)) return p;
        }
        std::string where;
        bool any_dir = false;
        for (const auto& d : dirs_) {
            std::error_code ec;
            const bool is_dir = std::filesystem::is_directory(d, ec);
            any_dir = any_dir || is_dir;
            where += "\n  " + resolved(d) + (is_dir ? "" : " (does not exist)");
        }
        auto found = available();
        std::string list;
        for (const auto& n : found) list += (list.empty() ? "" : ", ") + n;
        const std::string hint = "\nset persistence.plugin_dir in config.toml to the directory holding " +
                                 plugin_file_name(name) + " (a build puts the plugins in <build>/lib/tradestate/plugins)";
        if (!any_dir) throw Error(Errc::not_found, "no plugin directory found; looked in:" + where + hint);
        if (found.empty())
            throw Error(Errc::not_found, "no tradestate plugins (" + std::string(plugin_file_prefix) + "*" +
                                             plugin_file_suffix + ") in:" + where + hint);
        throw Error(Errc::not_found, "unknown backend '" + name + "': no " + plugin_file_name(name) + " in:" + where +
                                         "\navailable backends: " + list);
    }

    /// `d` as written and, when that differs, the directory it names.
    [[nodiscard]] static std::string resolved(const std::filesystem::path& d) {
        std::error_code ec;
        auto abs = std::filesystem::weakly_canonical(std::filesystem::absolute(d, ec), ec);
        if (ec || abs.empty() || abs == d) return d.string();
        return d.string() + " (= " + abs.string() + ")";
    }

    /// Load the plugin for `name` and create a backend with `opts`.
    [[nodiscard]] std::shared_ptr<Backend> open(const std::string& name, BackendOptions opts) const {
        return open_file(locate(name), name, std::move(opts));
    }

    /// Where backend `name` keeps its data, read from the plugin without
    /// constructing a backend (nullopt: a plugin that does not say).
    [[nodiscard]] std::optional<PluginStorage> storage_of(const std::string& name) const {
        Holder h;
        load_checked(h, locate(name), name);
        if (!h.lib.has("tradestate_plugin_storage")) return std::nullopt;
        const auto v = h.lib.get<std::uint32_t()>("tradestate_plugin_storage")();
        if (v == static_cast<std::uint32_t>(PluginStorage::state_dir)) return PluginStorage::state_dir;
        if (v == static_cast<std::uint32_t>(PluginStorage::external)) return PluginStorage::external;
        return std::nullopt;
    }

    /// Load a plugin from an explicit file (tests, tools).
    [[nodiscard]] std::shared_ptr<Backend> open_file(const std::filesystem::path& file, const std::string& expected_name,
                                                     BackendOptions opts) const {
        auto holder = std::make_shared<Holder>();
        load_checked(*holder, file, expected_name);
        if (!opts.logger) opts.logger = logger_;
        auto& factory = holder->lib.get_alias<backend_factory>("tradestate_create_backend");
        holder->backend = factory(opts);
        if (!holder->backend) throw Error(Errc::plugin, file.string() + ": the factory returned no backend");
        logger_->debug("loaded backend '{}' from {}", expected_name, file.string());
        Backend* raw = holder->backend.get();
        return std::shared_ptr<Backend>(std::move(holder), raw);
    }

private:
    struct Holder {
        boost::dll::shared_library lib;   // destroyed last
        std::unique_ptr<Backend> backend; // destroyed first
    };

    /// Load `file` into `holder.lib` and check that it is a tradestate plugin
    /// of this ABI called `expected_name` (empty: any name). Nothing of the
    /// plugin's own code runs before these checks pass.
    void load_checked(Holder& holder, const std::filesystem::path& file, const std::string& expected_name) const {
        refuse_if_others_can_write(file);
        refuse_foreign_machine(file);
        boost::dll::fs::error_code ec;
        holder.lib.load(boost::dll::fs::path(file.string()), boost::dll::load_mode::rtld_now | boost::dll::load_mode::rtld_local, ec);
        if (ec) {
            const char* dl = ::dlerror();
            throw Error(Errc::plugin, "cannot load plugin " + file.string() + ": " +
                                          (dl ? std::string(dl) : ec.message()));
        }
        if (!holder.lib.has("tradestate_plugin_abi_version") || !holder.lib.has("tradestate_backend_name") ||
            !holder.lib.has("tradestate_create_backend"))
            throw Error(Errc::plugin, file.string() +
                                          " is not a tradestate backend plugin (it lacks tradestate_plugin_abi_version, "
                                          "tradestate_backend_name or tradestate_create_backend)");
        const auto abi = holder.lib.get<std::uint32_t()>("tradestate_plugin_abi_version")();
        if (abi != plugin_abi_version) {
            std::string built = holder.lib.has("tradestate_plugin_built_with")
                                    ? holder.lib.get<const char*()>("tradestate_plugin_built_with")()
                                    : "an unknown tradestate version";
            throw Error(Errc::abi_mismatch,
                        "plugin " + file.string() + " speaks plugin ABI " + std::to_string(abi) + " (built with " + built +
                            "), but this program speaks ABI " + std::to_string(plugin_abi_version) + " (tradestate " +
                            version_string + "): rebuild the plugin against tradestate " + version_string +
                            " headers (e.g. `cmake --build build`), or reinstall both from the same release");
        }
        const std::string real_name = holder.lib.get<const char*()>("tradestate_backend_name")();
        if (!expected_name.empty() && real_name != expected_name)
            throw Error(Errc::plugin, file.string() + " calls itself backend '" + real_name + "', expected '" +
                                          expected_name + "'");
    }

    /// Loading a plugin runs its code in this process, with this process's
    /// rights. As OpenSSH does with keys, refuse a plugin file that is not a
    /// regular file owned by root or by us, or that someone else could have
    /// changed: writable by group or others, or in a directory they can
    /// write (and that is not sticky). A group that is the owner's own
    /// private group (same name, no other members) is the owner.
    static void refuse_if_others_can_write(const std::filesystem::path& file) {
        struct ::stat st {};
        if (::stat(file.c_str(), &st) != 0)
            throw Error(Errc::plugin, "cannot load plugin " + file.string() + ": " + std::strerror(errno));
        if (!S_ISREG(st.st_mode))
            throw Error(Errc::plugin, "cannot load plugin " + file.string() + ": not a regular file");
        if (st.st_uid != 0 && st.st_uid != ::geteuid())
            throw Error(Errc::plugin, "refusing plugin " + file.string() + ": it is owned by uid " +
                                          std::to_string(st.st_uid) + ", neither root nor this user; chown it");
        auto check = [&](const std::filesystem::path& p, const struct ::stat& s, const char* what) {
            const bool dir = S_ISDIR(s.st_mode);
            if (dir && (s.st_mode & S_ISVTX)) return;
            std::string who;
            if (s.st_mode & S_IWOTH) who = "everyone";
            else if ((s.st_mode & S_IWGRP) && !private_group(s.st_uid, s.st_gid)) who = "its group";
            if (who.empty()) return;
            char mode[8];
            std::snprintf(mode, sizeof mode, "%04o", static_cast<unsigned>(s.st_mode & 07777));
            throw Error(Errc::plugin, "refusing plugin " + file.string() + ": " + what + " " + p.string() +
                                          " is writable by " + who + " (mode " + mode +
                                          "), so someone else could replace the code this program would run; chmod "
                                          "go-w " + p.string());
        };
        check(file, st, "the file");
        const auto dir = file.parent_path().empty() ? std::filesystem::path(".") : file.parent_path();
        struct ::stat ds {};
        if (::stat(dir.c_str(), &ds) == 0) check(dir, ds, "its directory");
    }
    /// The class, byte order and machine of an ELF file's header; nullopt
    /// for anything that is not ELF (dlopen names that itself).
    struct ElfKind {
        unsigned char bits = 0, order = 0;
        std::uint16_t machine = 0;
        bool operator==(const ElfKind&) const = default;
    };
    [[nodiscard]] static std::optional<ElfKind> elf_kind(const char* path) {
        const int fd = ::open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
        if (fd < 0) return std::nullopt;
        unsigned char h[20] = {};
        const ssize_t n = ::pread(fd, h, sizeof h, 0);
        ::close(fd);
        if (n != static_cast<ssize_t>(sizeof h) || std::memcmp(h, "\x7f" "ELF", 4) != 0) return std::nullopt;
        ElfKind k;
        k.bits = h[4];  // EI_CLASS: 1 = 32-bit, 2 = 64-bit
        k.order = h[5]; // EI_DATA: 1 = little-endian, 2 = big-endian
        k.machine = k.order == 2 ? static_cast<std::uint16_t>(h[18] << 8 | h[19])
                                 : static_cast<std::uint16_t>(h[19] << 8 | h[18]);
        return k;
    }
    [[nodiscard]] static std::string describe(const ElfKind& k) {
        std::string m;
        switch (k.machine) {
        case 3: m = "x86 (i386)"; break;
        case 8: m = "MIPS"; break;
        case 20: m = "PowerPC"; break;
        case 21: m = "PowerPC 64"; break;
        case 22: m = "s390"; break;
        case 40: m = "ARM (32-bit)"; break;
        case 62: m = "x86-64"; break;
        case 183: m = "AArch64 (ARM 64-bit)"; break;
        case 243: m = "RISC-V"; break;
        case 258: m = "LoongArch"; break;
        default: m = "ELF machine " + std::to_string(k.machine);
        }
        return m + ", " + (k.bits == 2 ? "64" : "32") + "-bit " + (k.order == 2 ? "big" : "little") + "-endian";
    }
    /// glibc's dlopen says "cannot open shared object file: No such file or
    /// directory" for an ELF file built for another machine; say so.
    static void refuse_foreign_machine(const std::filesystem::path& file) {
        const auto theirs = elf_kind(file.c_str());
        const auto mine = elf_kind("/proc/self/exe");
        if (!theirs || !mine || *theirs == *mine) return;
        throw Error(Errc::plugin, "cannot load plugin " + file.string() + ": it is built for " + describe(*theirs) +
                                      ", but this program runs on " + describe(*mine) +
                                      "; build the plugin for this machine (or install the package for it)");
    }

    [[nodiscard]] static bool private_group(::uid_t uid, ::gid_t gid) {
        const ::passwd* pw = ::getpwuid(uid);
        if (!pw || pw->pw_gid != gid) return false;
        const std::string user = pw->pw_name;
        const ::group* gr = ::getgrgid(gid);
        if (!gr || user != gr->gr_name) return false;
        for (char** m = gr->gr_mem; m && *m; ++m)
            if (user != *m) return false;
        return true;
    }

    std::vector<std::filesystem::path> dirs_;
    std::shared_ptr<spdlog::logger> logger_;
};

} // namespace tradestate
