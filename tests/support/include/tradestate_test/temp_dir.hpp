// tradestate tests — a private temporary directory, removed with everything in it.
#pragma once

#include <filesystem>
#include <string>

namespace tradestate::testing {

/// A fresh directory under $TMPDIR (or /tmp), mode 0700 like mkdtemp(3)
/// makes it, removed recursively (after restoring owner permissions) when
/// the object goes.
class TempDir {
public:
    explicit TempDir(const std::string& prefix = "tradestate-test");
    ~TempDir();
    TempDir(const TempDir&) = delete;
    TempDir& operator=(const TempDir&) = delete;

    [[nodiscard]] const std::filesystem::path& path() const noexcept { return path_; }
    [[nodiscard]] std::filesystem::path operator/(const std::filesystem::path& p) const { return path_ / p; }
    [[nodiscard]] std::string str() const { return path_.string(); }

private:
    std::filesystem::path path_;
};

} // namespace tradestate::testing
