// The conformance suite's vocabulary on top of the test-support library:
// which backends run (backends.hpp), their options, and child processes
// that re-run this test binary.
#pragma once

#include "backends.hpp"

#include <tradestate_test/support.hpp>

#include <tradestate/backend.hpp>
#include <tradestate/detail/json.hpp>
#include <tradestate/plugin_loader.hpp>

#include <boost/json.hpp>

#include <chrono>
#include <filesystem>
#include <optional>
#include <ostream>
#include <string>
#include <vector>

namespace tradestate::testing {

namespace fs = std::filesystem;
namespace json = boost::json;

/// How gtest shows a parameter: the backend's name.
inline void PrintTo(const BackendEntry& e, std::ostream* os) { *os << e.name; }

/// Options for `entry` in `state_dir`; nullopt + `skip` set when the backend
/// cannot run here.
inline std::optional<BackendOptions> options_for(const BackendEntry& entry, const fs::path& state_dir,
                                                 std::string& skip) {
    BackendOptions o = options_in(state_dir, false); // durability is not what these cases measure; the crash test turns it on
    if (!fs::exists(plugin_dir() / plugin_file_name(entry.name))) {
        skip = "plugin " + plugin_file_name(entry.name) + " is not built in " + plugin_dir().string();
        return std::nullopt;
    }
    if (entry.configure) {
        if (auto why = entry.configure(o)) {
            skip = *why;
            return std::nullopt;
        }
    }
    return o;
}

inline const BackendEntry& entry_named(const std::string& name) {
    for (const auto& e : conformance_backends())
        if (name == e.name) return e;
    throw std::runtime_error("backend '" + name + "' is not in backends.hpp");
}

/// This test binary again, with `args`, its stdout on a pipe.
class Child : public Process {
public:
    explicit Child(const std::vector<std::string>& args) : Process(with_self(args)) {}
    std::optional<std::string> read_line(int timeout_ms = 30000) {
        return Process::read_line(std::chrono::milliseconds(timeout_ms));
    }

private:
    static std::vector<std::string> with_self(std::vector<std::string> args) {
        args.insert(args.begin(), "/proc/self/exe");
        return args;
    }
};

/// The metadata a host would hand over with `doc`.
inline SaveMeta meta_of(const json::value& doc) { return doc_meta(doc); }
inline void write_bytes(const fs::path& p, const std::string& bytes) { spit(p, bytes); }

} // namespace tradestate::testing
