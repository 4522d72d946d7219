#include <tradestate_test/files.hpp>

#include <algorithm>
#include <fstream>
#include <iterator>
#include <sstream>
#include <stdexcept>

namespace tradestate::testing {

namespace fs = std::filesystem;

std::string slurp(const fs::path& p) {
    std::ifstream f(p, std::ios::binary);
    return {std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>()};
}

void spit(const fs::path& p, const std::string& bytes) {
    std::error_code ec;
    fs::remove(p, ec);
    std::ofstream f(p, std::ios::binary | std::ios::trunc);
    f.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
    if (!f) throw std::runtime_error("cannot write " + p.string());
}

void write_in_place(const fs::path& p, const std::string& bytes) {
    std::fstream f(p, std::ios::binary | std::ios::in | std::ios::out);
    if (!f) throw std::runtime_error("cannot open " + p.string());
    f.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
    if (!f) throw std::runtime_error("cannot write " + p.string());
}

void put_byte(const fs::path& p, std::size_t offset, char c) {
    std::fstream f(p, std::ios::binary | std::ios::in | std::ios::out);
    if (!f) throw std::runtime_error("cannot open " + p.string());
    f.seekp(static_cast<std::streamoff>(offset));
    f.put(c);
}

void truncate_to(const fs::path& p, std::uintmax_t size) { fs::resize_file(p, size); }

std::map<fs::path, std::string> snapshot_files(const fs::path& dir) {
    std::map<fs::path, std::string> out;
    for (auto& e : fs::recursive_directory_iterator(dir))
        if (e.is_regular_file()) out[e.path()] = slurp(e.path());
    return out;
}

void restore_files(const fs::path& dir, const std::map<fs::path, std::string>& files) {
    std::vector<fs::path> extra;
    for (auto& e : fs::recursive_directory_iterator(dir))
        if (e.is_regular_file() && !files.count(e.path())) extra.push_back(e.path());
    for (const auto& p : extra) fs::remove(p);
    for (const auto& [p, bytes] : files) {
        fs::create_directories(p.parent_path());
        spit(p, bytes);
    }
}

std::vector<fs::path> all_paths(const fs::path& root) {
    std::vector<fs::path> out;
    for (auto& e : fs::recursive_directory_iterator(root)) out.push_back(e.path());
    std::sort(out.begin(), out.end());
    return out;
}

std::vector<fs::path> files_containing(const fs::path& dir, const std::string& part) {
    std::vector<fs::path> out;
    std::error_code ec;
    for (auto it = fs::directory_iterator(dir, ec); !ec && it != fs::directory_iterator(); it.increment(ec))
        if (it->path().filename().string().find(part) != std::string::npos) out.push_back(it->path());
    std::sort(out.begin(), out.end());
    return out;
}

} // namespace tradestate::testing
