// tradestate tests — reading, writing and damaging files on disk.
#pragma once

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <map>
#include <string>
#include <vector>

namespace tradestate::testing {

/// The whole file (empty if it cannot be read).
[[nodiscard]] std::string slurp(const std::filesystem::path& p);
/// Replace `p` by a new file holding `bytes` (unlinked first, so hard links
/// to the old file, such as json-files backups, are not written through).
void spit(const std::filesystem::path& p, const std::string& bytes);
/// Overwrite bytes of `p` in place (same inode, same links).
void write_in_place(const std::filesystem::path& p, const std::string& bytes);
/// Set the byte at `offset` of `p` in place.
void put_byte(const std::filesystem::path& p, std::size_t offset, char c);
/// Cut `p` to `size` bytes in place.
void truncate_to(const std::filesystem::path& p, std::uintmax_t size);

/// Every regular file under `dir`, with its bytes.
[[nodiscard]] std::map<std::filesystem::path, std::string> snapshot_files(const std::filesystem::path& dir);
/// Make `dir` hold exactly `files` again (new files removed, each file re-created).
void restore_files(const std::filesystem::path& dir, const std::map<std::filesystem::path, std::string>& files);
/// Every path under `root` (files and directories), sorted.
[[nodiscard]] std::vector<std::filesystem::path> all_paths(const std::filesystem::path& root);
/// Files under `dir` (not recursive) whose name contains `part`.
[[nodiscard]] std::vector<std::filesystem::path> files_containing(const std::filesystem::path& dir, const std::string& part);

} // namespace tradestate::testing
