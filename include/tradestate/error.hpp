// tradestate — the one exception type the library throws.
#pragma once

#include <stdexcept>
#include <string>
#include <string_view>

namespace tradestate {

/// What went wrong, coarse enough to branch on.
enum class Errc {
    invalid_argument, ///< a caller passed something unusable (bad session name, ...)
    not_found,        ///< the session, file or plugin does not exist
    parse,            ///< a document is not valid JSON / TOML / binary format
    schema,           ///< valid syntax, wrong shape: missing field, wrong type
    corrupt,          ///< checksum, magic or length mismatch
    io,               ///< the operating system refused (disk full, read-only, EIO)
    config,           ///< config.toml is wrong
    plugin,           ///< a plugin failed to load or is not a tradestate plugin
    abi_mismatch,     ///< a plugin was built for another plugin ABI
    unsupported,      ///< the backend does not offer this operation
    locked,           ///< another process holds the writer lock
    data_loss,        ///< acknowledged data is gone (named in the message); see Session::resume
};

/// The name before 0.4.
using errc [[deprecated("renamed tradestate::Errc")]] = Errc;

inline constexpr std::string_view to_string(Errc e) noexcept {
    switch (e) {
    case Errc::invalid_argument: return "invalid argument";
    case Errc::not_found: return "not found";
    case Errc::parse: return "parse error";
    case Errc::schema: return "schema error";
    case Errc::corrupt: return "corrupt data";
    case Errc::io: return "I/O error";
    case Errc::config: return "configuration error";
    case Errc::plugin: return "plugin error";
    case Errc::abi_mismatch: return "plugin ABI mismatch";
    case Errc::unsupported: return "unsupported operation";
    case Errc::locked: return "locked";
    case Errc::data_loss: return "data loss";
    }
    return "error";
}

/// Every failure in tradestate is reported as an `Error`; `what()` is a
/// complete sentence meant for the person reading the log.
class Error : public std::runtime_error {
public:
    Error(Errc code, const std::string& message) : std::runtime_error(message), code_(code) {}
    [[nodiscard]] Errc code() const noexcept { return code_; }

private:
    Errc code_;
};

} // namespace tradestate
