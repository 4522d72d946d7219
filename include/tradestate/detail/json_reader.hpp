// tradestate — reading typed fields out of a JSON object with errors that
// name the JSON path and the expected type, warnings for missing optional
// fields, and the unknown members kept for the next save.
#pragma once

#include <tradestate/error.hpp>
#include <tradestate/money.hpp>
#include <tradestate/timestamp.hpp>

#include <boost/json/object.hpp>
#include <boost/json/value.hpp>

#include <cmath>
#include <cstdint>
#include <initializer_list>
#include <optional>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

namespace tradestate::detail {

/// Warnings raised while converting a document to a state. Conversions run
/// inside `value_to`, which has no room for a context argument, so they go
/// to this per-thread sink; StatePersister clears it before and collects it
/// after each load.
inline std::vector<std::string>& load_warnings() {
    thread_local std::vector<std::string> w;
    return w;
}

[[nodiscard]] inline const char* kind_name(const boost::json::value& v) noexcept {
    switch (v.kind()) {
    case boost::json::kind::null: return "null";
    case boost::json::kind::bool_: return "a boolean";
    case boost::json::kind::int64:
    case boost::json::kind::uint64: return "an integer";
    case boost::json::kind::double_: return "a number";
    case boost::json::kind::string: return "a string";
    case boost::json::kind::array: return "an array";
    case boost::json::kind::object: return "an object";
    }
    return "?";
}

[[noreturn]] inline void type_error(const std::string& path, const char* expected, const boost::json::value& found) {
    throw Error(Errc::schema, path + ": expected " + expected + ", found " + kind_name(found));
}

template <class T> struct json_type_name;
template <> struct json_type_name<std::string> { static constexpr const char* value = "a string"; };
template <> struct json_type_name<std::int64_t> { static constexpr const char* value = "an integer"; };
template <> struct json_type_name<double> { static constexpr const char* value = "a number"; };
template <> struct json_type_name<bool> { static constexpr const char* value = "a boolean"; };
template <> struct json_type_name<Money> { static constexpr const char* value = "an amount (number)"; };
template <> struct json_type_name<Timestamp> { static constexpr const char* value = "an ISO 8601 timestamp string"; };

/// Convert one JSON value to T, naming `path` in any error.
template <class T> T convert(const boost::json::value& v, const std::string& path) {
    if constexpr (std::is_same_v<T, std::string>) {
        if (!v.is_string()) type_error(path, "a string", v);
        return std::string(v.get_string());
    } else if constexpr (std::is_same_v<T, std::int64_t>) {
        if (v.is_int64()) return v.get_int64();
        if (v.is_uint64() && v.get_uint64() <= static_cast<std::uint64_t>(INT64_MAX))
            return static_cast<std::int64_t>(v.get_uint64());
        if (v.is_double()) {
            const double d = v.get_double();
            if (std::isfinite(d) && d == std::floor(d) && std::fabs(d) < 9.0e15) return static_cast<std::int64_t>(d);
        }
        type_error(path, "an integer", v);
    } else if constexpr (std::is_same_v<T, double>) {
        if (v.is_double()) {
            if (!std::isfinite(v.get_double())) type_error(path, "a finite number", v);
            return v.get_double();
        }
        if (v.is_int64()) return static_cast<double>(v.get_int64());
        if (v.is_uint64()) return static_cast<double>(v.get_uint64());
        type_error(path, "a number", v);
    } else if constexpr (std::is_same_v<T, bool>) {
        if (!v.is_bool()) type_error(path, "a boolean", v);
        return v.get_bool();
    } else if constexpr (std::is_same_v<T, Money> || std::is_same_v<T, Timestamp>) {
        if constexpr (std::is_same_v<T, Money>) {
            if (!v.is_number() && !v.is_string()) type_error(path, json_type_name<T>::value, v);
        } else {
            if (!v.is_string()) type_error(path, json_type_name<T>::value, v);
        }
        try {
            return boost::json::value_to<T>(v);
        } catch (const Error& e) {
            throw Error(Errc::schema, path + ": " + e.what());
        }
    } else {
        return boost::json::value_to<T>(v); // a tradestate type: reads its own path
    }
}

/// Reads members of one JSON object; remembers which keys it consumed so
/// that `rest()` returns the unknown ones, to be written back on save.
class ObjectReader {
public:
    ObjectReader(const boost::json::value& v, std::string path) : path_(std::move(path)) {
        if (!v.is_object()) type_error(path_, "an object", v);
        obj_ = &v.get_object();
    }

    [[nodiscard]] const std::string& path() const noexcept { return path_; }
    [[nodiscard]] std::string child(std::string_view key) const { return path_ + "." + std::string(key); }
    [[nodiscard]] const boost::json::object& object() const noexcept { return *obj_; }

    [[nodiscard]] const boost::json::value* find(std::string_view key) {
        used_.emplace_back(key);
        return obj_->if_contains(key);
    }

    /// A field that must be present: error naming the path and type if not.
    template <class T> [[nodiscard]] T required(std::string_view key) {
        const auto* v = find(key);
        if (!v)
            throw Error(Errc::schema, child(key) + ": missing required field (expected " +
                                          std::string(json_type_name<T>::value) + ")");
        return convert<T>(*v, child(key));
    }

    /// A field that may be absent: `fallback` and a warning naming it (if `warn`).
    template <class T> [[nodiscard]] T optional(std::string_view key, T fallback, bool warn = true) {
        const auto* v = find(key);
        if (!v) {
            if (warn) load_warnings().push_back(child(key) + ": missing, using default");
            return fallback;
        }
        return convert<T>(*v, child(key));
    }

    /// A field that may be absent or null.
    template <class T> [[nodiscard]] std::optional<T> maybe(std::string_view key, bool warn = false) {
        const auto* v = find(key);
        if (!v || v->is_null()) {
            if (warn && !v) load_warnings().push_back(child(key) + ": missing");
            return std::nullopt;
        }
        return convert<T>(*v, child(key));
    }

    /// The members no `find` asked for, in their original order.
    [[nodiscard]] boost::json::object rest() const {
        boost::json::object out;
        for (const auto& kv : *obj_) {
            bool known = false;
            for (const auto& u : used_)
                if (u == kv.key()) { known = true; break; }
            if (!known) out.emplace(kv.key(), kv.value());
        }
        return out;
    }

private:
    const boost::json::object* obj_ = nullptr;
    std::string path_;
    std::vector<std::string> used_;
};

/// Append the members of `extra` that `out` does not already have.
inline void append_extra(boost::json::object& out, const boost::json::object& extra) {
    for (const auto& kv : extra)
        if (!out.contains(kv.key())) out.emplace(kv.key(), kv.value());
}

} // namespace tradestate::detail
