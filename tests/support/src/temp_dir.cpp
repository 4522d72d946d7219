#include <tradestate_test/temp_dir.hpp>

#include <cstdlib>
#include <stdexcept>
#include <system_error>

#include <unistd.h>

namespace tradestate::testing {

namespace fs = std::filesystem;

TempDir::TempDir(const std::string& prefix) {
    std::string tmpl = (fs::temp_directory_path() / (prefix + "-XXXXXX")).string();
    if (!::mkdtemp(tmpl.data())) throw std::system_error(errno, std::generic_category(), "mkdtemp " + tmpl);
    path_ = tmpl;
}

TempDir::~TempDir() {
    std::error_code ec;
    // Tests make directories read-only or unreadable; give them back first.
    for (auto it = fs::recursive_directory_iterator(path_, fs::directory_options::skip_permission_denied, ec);
         !ec && it != fs::recursive_directory_iterator(); it.increment(ec)) {
        std::error_code e2;
        if (it->is_directory(e2)) fs::permissions(it->path(), fs::perms::owner_all, fs::perm_options::add, e2);
    }
    fs::permissions(path_, fs::perms::owner_all, fs::perm_options::add, ec);
    fs::remove_all(path_, ec);
}

} // namespace tradestate::testing
