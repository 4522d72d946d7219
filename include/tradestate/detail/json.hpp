// tradestate — JSON text in and out.
//
// Printing: Boost.JSON's serializer writes doubles in exponent form
// (9.1446259E5). We print like Python's json.dump: shortest round-trip
// decimal (914462.59), integral doubles with ".0" (1000000.0), exponent
// form only outside [1e-4, 1e16) as Python does, and `indent` spaces per
// level. UTF-8 is written as is.
//
// Parsing: strict JSON, with what Boost.JSON 1.81 does not check itself:
// duplicate keys are an error (it silently keeps the last), every error
// names the document and the line:column, and nesting is limited.
#pragma once

#include <tradestate/error.hpp>

#include <boost/json/basic_parser_impl.hpp>
#include <boost/json/value.hpp>
#include <boost/json/value_stack.hpp>

#include <charconv>
#include <cmath>
#include <cstdint>
#include <string>
#include <string_view>
#include <system_error>
#include <utility>
#include <vector>

namespace tradestate::detail {

// ---------------------------------------------------------------- printing

/// Append `d` as Python's repr(float) would, or throw for NaN/Inf (not JSON).
inline void append_double(std::string& out, double d) {
    if (!std::isfinite(d))
        throw Error(Errc::invalid_argument, "cannot write a non-finite number (NaN or Infinity) to JSON");
    char buf[64];
    const double a = std::fabs(d);
    std::to_chars_result r;
    const bool fixed = a == 0.0 || (a >= 1e-4 && a < 1e16);
    if (fixed)
        r = std::to_chars(buf, buf + sizeof buf, d, std::chars_format::fixed);
    else
        r = std::to_chars(buf, buf + sizeof buf, d, std::chars_format::scientific);
    std::string_view s(buf, static_cast<std::size_t>(r.ptr - buf));
    if (fixed) {
        out.append(s);
        if (s.find('.') == std::string_view::npos) out.append(".0");
        return;
    }
    // Python: 1e+22, 1.5e-07 — mantissa shortest, exponent at least 2 digits.
    auto e = s.find('e');
    out.append(s.substr(0, e));
    out.push_back('e');
    auto exp = s.substr(e + 1);
    char sign = '+';
    if (!exp.empty() && (exp[0] == '+' || exp[0] == '-')) {
        sign = exp[0];
        exp.remove_prefix(1);
    }
    while (exp.size() > 2 && exp[0] == '0') exp.remove_prefix(1);
    out.push_back(sign);
    if (exp.size() < 2) out.push_back('0');
    out.append(exp);
}

inline void append_escaped(std::string& out, std::string_view s) {
    out.push_back('"');
    // Runs of characters that need no escape are copied at once.
    std::size_t plain = 0;
    for (std::size_t i = 0; i < s.size(); ++i) {
        const auto c = static_cast<unsigned char>(s[i]);
        if (c >= 0x20 && c != '"' && c != '\\') continue;
        out.append(s.data() + plain, i - plain);
        plain = i + 1;
        switch (c) {
        case '"': out.append("\\\""); break;
        case '\\': out.append("\\\\"); break;
        case '\n': out.append("\\n"); break;
        case '\r': out.append("\\r"); break;
        case '\t': out.append("\\t"); break;
        case '\b': out.append("\\b"); break;
        case '\f': out.append("\\f"); break;
        default:
            if (c < 0x20) {
                static constexpr char hex[] = "0123456789abcdef";
                out.append("\\u00");
                out.push_back(hex[c >> 4]);
                out.push_back(hex[c & 15]);
            }
        }
    }
    out.append(s.data() + plain, s.size() - plain);
    out.push_back('"');
}

struct PrintOptions {
    int indent = 2; ///< spaces per level; negative prints compact, no spaces
};

inline void print_to(std::string& out, const boost::json::value& v, const PrintOptions& opt, int depth = 0) {
    const bool pretty = opt.indent >= 0;
    auto newline = [&](int d) {
        out.push_back('\n');
        out.append(static_cast<std::size_t>(d * opt.indent), ' ');
    };
    switch (v.kind()) {
    case boost::json::kind::null: out.append("null"); break;
    case boost::json::kind::bool_: out.append(v.get_bool() ? "true" : "false"); break;
    case boost::json::kind::int64: {
        char buf[24];
        auto r = std::to_chars(buf, buf + sizeof buf, v.get_int64());
        out.append(buf, r.ptr);
        break;
    }
    case boost::json::kind::uint64: {
        char buf[24];
        auto r = std::to_chars(buf, buf + sizeof buf, v.get_uint64());
        out.append(buf, r.ptr);
        break;
    }
    case boost::json::kind::double_: append_double(out, v.get_double()); break;
    case boost::json::kind::string: append_escaped(out, v.get_string()); break;
    case boost::json::kind::array: {
        const auto& a = v.get_array();
        if (a.empty()) { out.append("[]"); break; }
        out.push_back('[');
        bool first = true;
        for (const auto& e : a) {
            if (!first) out.append(pretty ? "," : ",");
            first = false;
            if (pretty) newline(depth + 1);
            print_to(out, e, opt, depth + 1);
        }
        if (pretty) newline(depth);
        out.push_back(']');
        break;
    }
    case boost::json::kind::object: {
        const auto& o = v.get_object();
        if (o.empty()) { out.append("{}"); break; }
        out.push_back('{');
        bool first = true;
        for (const auto& kv : o) {
            if (!first) out.push_back(',');
            first = false;
            if (pretty) newline(depth + 1);
            append_escaped(out, kv.key());
            out.append(pretty ? ": " : ":");
            print_to(out, kv.value(), opt, depth + 1);
        }
        if (pretty) newline(depth);
        out.push_back('}');
        break;
    }
    }
}

/// Print `v` as JSON text (indent 2 by default, like the seed's files).
[[nodiscard]] inline std::string print(const boost::json::value& v, const PrintOptions& opt = {}) {
    std::string out;
    print_to(out, v, opt);
    return out;
}

// ----------------------------------------------------------------- parsing

struct ParseLimits {
    std::size_t max_depth = 64;
};

/// 1-based line and column of byte `offset` in `text`.
inline std::pair<std::size_t, std::size_t> line_column(std::string_view text, std::size_t offset) {
    std::size_t line = 1, col = 1;
    if (offset > text.size()) offset = text.size();
    for (std::size_t i = 0; i < offset; ++i) {
        if (text[i] == '\n') { ++line; col = 1; } else { ++col; }
    }
    return {line, col};
}

struct checking_handler {
    static constexpr std::size_t max_object_size = boost::json::object::max_size();
    static constexpr std::size_t max_array_size = boost::json::array::max_size();
    static constexpr std::size_t max_key_size = boost::json::string::max_size();
    static constexpr std::size_t max_string_size = boost::json::string::max_size();

    // A constructor (not aggregate paren-init) so that clang 14 compiles basic_parser<checking_handler> too.
    explicit checking_handler(boost::json::storage_ptr sp = {}) : st(std::move(sp)) {}

    boost::json::value_stack st;
    std::vector<std::size_t> object_sizes; // member counts seen, in post-order
    std::string number;                    // text of a number split across parts

    bool on_document_begin(boost::json::error_code&) { return true; }
    bool on_document_end(boost::json::error_code&) { return true; }
    bool on_object_begin(boost::json::error_code&) { return true; }
    bool on_object_end(std::size_t n, boost::json::error_code&) {
        object_sizes.push_back(n);
        st.push_object(n);
        return true;
    }
    bool on_array_begin(boost::json::error_code&) { return true; }
    bool on_array_end(std::size_t n, boost::json::error_code&) { st.push_array(n); return true; }
    bool on_key_part(boost::json::string_view s, std::size_t, boost::json::error_code&) { st.push_chars(s); return true; }
    bool on_key(boost::json::string_view s, std::size_t, boost::json::error_code&) { st.push_key(s); return true; }
    bool on_string_part(boost::json::string_view s, std::size_t, boost::json::error_code&) { st.push_chars(s); return true; }
    bool on_string(boost::json::string_view s, std::size_t, boost::json::error_code&) { st.push_string(s); return true; }
    bool on_number_part(boost::json::string_view s, boost::json::error_code&) {
        number.append(s.data(), s.size());
        return true;
    }
    bool on_int64(std::int64_t i, boost::json::string_view, boost::json::error_code&) {
        number.clear();
        st.push_int64(i);
        return true;
    }
    bool on_uint64(std::uint64_t u, boost::json::string_view, boost::json::error_code&) {
        number.clear();
        st.push_uint64(u);
        return true;
    }
    // Boost.JSON 1.81 rounds some 17-digit decimals to a neighbouring double;
    // std::from_chars is correctly rounded, so every printed double reads back
    // bit-identical (checksums over re-printed documents depend on it).
    bool on_double(double d, boost::json::string_view s, boost::json::error_code&) {
        const char* first = s.data();
        const char* last = s.data() + s.size();
        if (!number.empty()) {
            number.append(s.data(), s.size());
            first = number.data();
            last = number.data() + number.size();
        }
        double exact = d;
        if (auto r = std::from_chars(first, last, exact); r.ec == std::errc{} && r.ptr == last) d = exact;
        number.clear();
        st.push_double(d);
        return true;
    }
    bool on_bool(bool b, boost::json::error_code&) { st.push_bool(b); return true; }
    bool on_null(boost::json::error_code&) { st.push_null(); return true; }
    bool on_comment_part(boost::json::string_view, boost::json::error_code&) { return true; }
    bool on_comment(boost::json::string_view, boost::json::error_code&) { return true; }
};

/// Post-order walk matching the parser's object_end order; returns the JSON
/// path of the first object that lost members to a duplicate key.
inline bool find_duplicate(const boost::json::value& v, const std::vector<std::size_t>& sizes,
                           std::size_t& next, std::string& path) {
    if (v.is_array()) {
        std::size_t i = 0;
        for (const auto& e : v.get_array()) {
            if (find_duplicate(e, sizes, next, path)) {
                path = "[" + std::to_string(i) + "]" + path;
                return true;
            }
            ++i;
        }
    } else if (v.is_object()) {
        for (const auto& kv : v.get_object()) {
            if (find_duplicate(kv.value(), sizes, next, path)) {
                path = "." + std::string(kv.key()) + path;
                return true;
            }
        }
        if (next >= sizes.size() || sizes[next] != v.get_object().size()) return true;
        ++next;
    }
    return false;
}

/// Parse strict JSON. `what` names the document in error messages
/// (usually a file path). Throws Error(Errc::parse) with line:column.
[[nodiscard]] inline boost::json::value parse(std::string_view text, std::string_view what,
                                              const ParseLimits& limits = {}) {
    boost::json::parse_options po;
    po.max_depth = limits.max_depth;
    boost::json::basic_parser<checking_handler> p(po, boost::json::storage_ptr{});
    boost::json::error_code ec;
    const std::size_t n = p.write_some(false, text.data(), text.size(), ec);
    if (!ec && n < text.size()) ec = boost::json::error::extra_data;
    if (ec) {
        std::size_t off = n;
        auto [line, col] = line_column(text, off);
        std::string reason = ec.message();
        if (ec == boost::json::error::too_deep)
            reason = "nesting deeper than " + std::to_string(limits.max_depth) + " levels";
        else if (text.empty())
            reason = "empty document";
        throw Error(Errc::parse, std::string(what) + ":" + std::to_string(line) + ":" + std::to_string(col) +
                                     ": invalid JSON: " + reason);
    }
    boost::json::value v = p.handler().st.release();
    std::size_t next = 0;
    std::string path;
    if (find_duplicate(v, p.handler().object_sizes, next, path))
        throw Error(Errc::parse, std::string(what) + ": invalid JSON: duplicate key in object at $" + path);
    return v;
}

} // namespace tradestate::detail
