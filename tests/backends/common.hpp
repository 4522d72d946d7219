// Helpers shared by the backend-specific tests: temp dirs, plugin loading,
// sample documents, byte-level file surgery.
#pragma once

#include <tradestate/plugin_loader.hpp>

#include <gtest/gtest.h>

#include <boost/json.hpp>

#include <atomic>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>

#include <unistd.h>

namespace tstest {

namespace fs = std::filesystem;

/// A fresh directory under /tmp, removed with everything in it.
class TempDir {
public:
    TempDir() {
        static std::atomic<int> n{0};
        path_ = fs::path("/tmp") / ("tradestate-backends-" + std::to_string(::getpid()) + "-" + std::to_string(n++));
        fs::remove_all(path_);
        fs::create_directories(path_);
    }
    ~TempDir() {
        std::error_code ec;
        fs::permissions(path_, fs::perms::owner_all, fs::perm_options::add, ec);
        fs::remove_all(path_, ec);
    }
    TempDir(const TempDir&) = delete;
    TempDir& operator=(const TempDir&) = delete;
    [[nodiscard]] const fs::path& path() const { return path_; }

private:
    fs::path path_;
};

inline std::shared_ptr<tradestate::Backend> open_backend(const std::string& name, const fs::path& dir,
                                                         boost::json::object settings = {}, bool fsync = true) {
    tradestate::BackendOptions o;
    o.state_dir = dir;
    o.fsync = fsync;
    o.settings = std::move(settings);
    tradestate::PluginLoader loader({fs::path(TRADESTATE_TEST_PLUGIN_DIR)});
    return loader.open(name, o);
}

/// A portfolio-like document with `positions` open positions.
inline boost::json::value sample_doc(int positions, std::int64_t tag) {
    boost::json::array pos;
    pos.reserve(static_cast<std::size_t>(positions));
    for (int i = 0; i < positions; ++i) {
        pos.push_back(boost::json::object{{"symbol", "NIFTY25SEP" + std::to_string(24000 + 50 * (i % 40)) + "CE"},
                                          {"quantity", 75 * (i % 7 + 1)},
                                          {"entry_price", 123.45 + i * 0.05},
                                          {"strategy", "straddle — स्ट्रैडल"},
                                          {"id", static_cast<std::int64_t>(i)}});
    }
    return boost::json::object{{"tag", tag}, {"cash", 1000000.25}, {"positions", std::move(pos)}};
}

inline tradestate::SaveMeta meta_for(std::int64_t iteration, const std::string& saved_at = "2025-09-05T10:15:00+05:30") {
    tradestate::SaveMeta m;
    m.saved_at = saved_at;
    m.iteration = iteration;
    m.positions = iteration % 5;
    m.cash_paise = 100000000 + iteration;
    return m;
}

inline tradestate::Document doc_of(boost::json::value v) {
    tradestate::Document d;
    d.main = std::move(v);
    return d;
}

inline std::string slurp(const fs::path& p) {
    std::ifstream f(p, std::ios::binary);
    return {std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>()};
}

inline void spit(const fs::path& p, const std::string& bytes) {
    std::ofstream f(p, std::ios::binary | std::ios::trunc);
    f.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

inline std::uint64_t le64(const std::string& s, std::size_t at) {
    std::uint64_t v = 0;
    for (int i = 0; i < 8; ++i) v |= static_cast<std::uint64_t>(static_cast<unsigned char>(s[at + static_cast<std::size_t>(i)])) << (8 * i);
    return v;
}

} // namespace tstest
