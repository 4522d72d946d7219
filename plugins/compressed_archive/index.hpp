// The compressed-archive plugin's index: a cache beside the live file
// naming the offset and sequence of every good record, valid only for the
// file (inode, length) it describes. Private to the plugin.
#pragma once

#include "files.hpp"

#include <tradestate/detail/atomic_file.hpp>
#include <tradestate/detail/checksum.hpp>

#include <spdlog/logger.h>

#include <cstdint>
#include <cstring>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include <sys/stat.h>

namespace tradestate::compressed_archive {

inline constexpr char index_magic[8] = {'T', 'S', 'A', 'R', 'C', 'I', 'D', 'X'};

struct Index {
    std::uint64_t ino = 0, covered = 0;
    std::vector<std::pair<std::uint64_t, std::uint64_t>> entries;
    std::string first_day;
};

/// Write the index of `files.live` (entries are (offset, sequence) of its
/// good records, `covered` its length). A failure is logged, not thrown.
inline void write_index(const SessionFiles& files, const std::vector<std::pair<std::uint64_t, std::uint64_t>>& entries,
                        std::uint64_t covered, spdlog::logger* log) {
    struct stat st {};
    if (::stat(files.live.c_str(), &st) != 0) return;
    std::string b(40, '\0');
    std::memcpy(b.data(), index_magic, 8);
    put32(b.data() + 8, 1);
    put64(b.data() + 16, static_cast<std::uint64_t>(st.st_ino));
    put64(b.data() + 24, covered);
    put64(b.data() + 32, entries.size());
    for (const auto& [off, seq] : entries) {
        char e[16];
        put64(e, off);
        put64(e + 8, seq);
        b.append(e, 16);
    }
    char sum[8];
    put64(sum, detail::xxh3(b));
    b.append(sum, 8);
    try {
        // A cache: validated on every use, so it needs no fsync.
        detail::write_file_atomic(files.index, b, false);
    } catch (const Error& e) {
        if (log) log->warn("cannot update index {}: {} (it is rebuilt by the next save)", files.index.string(), e.what());
    }
}

/// The index at `path`, if it is intact.
[[nodiscard]] inline std::optional<Index> read_index(const fs::path& path, std::uint64_t max_bytes) {
    std::string b;
    try {
        b = detail::read_file(path, max_bytes);
    } catch (const Error&) {
        return std::nullopt;
    }
    if (b.size() < 48 || std::memcmp(b.data(), index_magic, 8) != 0 || get32(b.data() + 8) != 1) return std::nullopt;
    if (get64(b.data() + b.size() - 8) != detail::xxh3(std::string_view(b.data(), b.size() - 8))) return std::nullopt;
    Index idx;
    idx.ino = get64(b.data() + 16);
    idx.covered = get64(b.data() + 24);
    const std::uint64_t n = get64(b.data() + 32);
    if (n != (b.size() - 48) / 16 || (b.size() - 48) % 16 != 0) return std::nullopt;
    for (std::uint64_t i = 0; i < n; ++i)
        idx.entries.emplace_back(get64(b.data() + 40 + 16 * i), get64(b.data() + 48 + 16 * i));
    return idx;
}

/// The index, if it describes the live file exactly as it is now.
[[nodiscard]] inline std::optional<Index> fresh_index(const fs::path& path, const struct stat& st, std::uint64_t max_bytes) {
    auto idx = read_index(path, max_bytes);
    if (!idx || idx->ino != static_cast<std::uint64_t>(st.st_ino) ||
        idx->covered != static_cast<std::uint64_t>(st.st_size))
        return std::nullopt;
    return idx;
}

} // namespace tradestate::compressed_archive
