// tradestate — a compact binary encoding of a boost::json::value.
//
// Used as the payload of the mmap-binary and compressed-archive backends
// (layout: docs/binary-document.md). Every value is one tag byte followed
// by its body:
//
//   0x00 null          0x01 false          0x02 true
//   0x03 int64         zigzag varint
//   0x04 uint64        varint (Boost.JSON's unsigned kind, kept as such)
//   0x05 double        8 bytes, IEEE 754 binary64, little-endian
//   0x06 string        varint byte length, then the UTF-8 bytes as is
//   0x07 array         varint element count, then the elements
//   0x08 object        varint member count, then per member: varint key
//                      length, key bytes, value
//
// Varints are LEB128 (7 bits per byte, low group first, at most 10 bytes).
// The decoder trusts nothing: every length and count is checked against the
// bytes that remain, nesting is limited (64 containers by default), object
// keys must be unique, varints may not exceed 10 bytes or overflow 64 bits,
// and bytes after the top-level value are an error. Errors name the byte
// offset.
#pragma once

#include <tradestate/error.hpp>

#include <boost/json/array.hpp>
#include <boost/json/object.hpp>
#include <boost/json/string.hpp>
#include <boost/json/value.hpp>

#include <bit>
#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>

namespace tradestate::detail {

namespace binary_tag {
inline constexpr unsigned char null_ = 0x00;
inline constexpr unsigned char false_ = 0x01;
inline constexpr unsigned char true_ = 0x02;
inline constexpr unsigned char int64 = 0x03;
inline constexpr unsigned char uint64 = 0x04;
inline constexpr unsigned char double_ = 0x05;
inline constexpr unsigned char string = 0x06;
inline constexpr unsigned char array = 0x07;
inline constexpr unsigned char object = 0x08;
} // namespace binary_tag

/// Deepest container nesting the encoder writes and the decoder accepts.
inline constexpr std::size_t binary_max_depth = 64;

// ------------------------------------------------------------------ encoding

inline void binary_put_varint(std::string& out, std::uint64_t v) {
    char buf[10];
    std::size_t n = 0;
    while (v >= 0x80) {
        buf[n++] = static_cast<char>((v & 0x7f) | 0x80);
        v >>= 7;
    }
    buf[n++] = static_cast<char>(v);
    out.append(buf, n);
}

inline void binary_encode_to(std::string& out, const boost::json::value& v, std::size_t depth = 0,
                             std::size_t max_depth = binary_max_depth) {
    switch (v.kind()) {
    case boost::json::kind::null: out.push_back(static_cast<char>(binary_tag::null_)); break;
    case boost::json::kind::bool_:
        out.push_back(static_cast<char>(v.get_bool() ? binary_tag::true_ : binary_tag::false_));
        break;
    case boost::json::kind::int64: {
        const auto i = v.get_int64();
        const auto z = (static_cast<std::uint64_t>(i) << 1) ^ static_cast<std::uint64_t>(i >> 63);
        out.push_back(static_cast<char>(binary_tag::int64));
        binary_put_varint(out, z);
        break;
    }
    case boost::json::kind::uint64:
        out.push_back(static_cast<char>(binary_tag::uint64));
        binary_put_varint(out, v.get_uint64());
        break;
    case boost::json::kind::double_: {
        const auto bits = std::bit_cast<std::uint64_t>(v.get_double());
        char buf[9];
        buf[0] = static_cast<char>(binary_tag::double_);
        for (int i = 0; i < 8; ++i) buf[1 + i] = static_cast<char>((bits >> (8 * i)) & 0xff);
        out.append(buf, 9);
        break;
    }
    case boost::json::kind::string: {
        const auto& s = v.get_string();
        out.push_back(static_cast<char>(binary_tag::string));
        binary_put_varint(out, s.size());
        out.append(s.data(), s.size());
        break;
    }
    case boost::json::kind::array: {
        if (depth >= max_depth)
            throw Error(Errc::invalid_argument, "cannot encode a document nested deeper than " +
                                                    std::to_string(max_depth) + " arrays/objects");
        const auto& a = v.get_array();
        out.push_back(static_cast<char>(binary_tag::array));
        binary_put_varint(out, a.size());
        for (const auto& e : a) binary_encode_to(out, e, depth + 1, max_depth);
        break;
    }
    case boost::json::kind::object: {
        if (depth >= max_depth)
            throw Error(Errc::invalid_argument, "cannot encode a document nested deeper than " +
                                                    std::to_string(max_depth) + " arrays/objects");
        const auto& o = v.get_object();
        out.push_back(static_cast<char>(binary_tag::object));
        binary_put_varint(out, o.size());
        for (const auto& kv : o) {
            binary_put_varint(out, kv.key().size());
            out.append(kv.key().data(), kv.key().size());
            binary_encode_to(out, kv.value(), depth + 1, max_depth);
        }
        break;
    }
    }
}

/// Encode `v`; throws Errc::invalid_argument if it is nested deeper than the limit.
[[nodiscard]] inline std::string binary_encode(const boost::json::value& v) {
    std::string out;
    binary_encode_to(out, v);
    return out;
}

// ------------------------------------------------------------------ decoding

class BinaryDecoder {
public:
    BinaryDecoder(std::string_view bytes, std::string_view what, std::size_t max_depth)
        : p_(reinterpret_cast<const unsigned char*>(bytes.data())), size_(bytes.size()), what_(what),
          max_depth_(max_depth) {}

    boost::json::value document() {
        if (size_ == 0) fail(0, "empty document");
        boost::json::value v = value(0);
        if (pos_ != size_)
            fail(pos_, std::to_string(size_ - pos_) + " unexpected byte(s) after the end of the document");
        return v;
    }

private:
    [[noreturn]] void fail(std::size_t at, const std::string& why) const {
        throw Error(Errc::parse, std::string(what_) + ": invalid binary document at offset " + std::to_string(at) +
                                     ": " + why);
    }

    std::size_t remaining() const noexcept { return size_ - pos_; }

    std::uint64_t varint(const char* what) {
        const std::size_t start = pos_;
        std::uint64_t v = 0;
        for (unsigned shift = 0;; shift += 7) {
            if (pos_ >= size_) fail(start, std::string("truncated ") + what);
            const unsigned char b = p_[pos_++];
            if (shift == 63 && (b & 0x7e) != 0) fail(start, std::string(what) + " overflows 64 bits");
            v |= static_cast<std::uint64_t>(b & 0x7f) << shift;
            if ((b & 0x80) == 0) break;
            if (shift == 63) fail(start, std::string(what) + " is longer than 10 bytes");
        }
        return v;
    }

    /// A length/count that must fit in what is left, each item needing at least `min_item` bytes.
    std::size_t bounded(const char* what, std::size_t min_item) {
        const std::size_t start = pos_;
        const std::uint64_t n = varint(what);
        if (n > remaining() / min_item)
            fail(start, std::string(what) + " " + std::to_string(n) + " exceeds the " + std::to_string(remaining()) +
                            " byte(s) left");
        return static_cast<std::size_t>(n);
    }

    boost::json::value value(std::size_t depth) {
        if (pos_ >= size_) fail(pos_, "truncated: a value was expected");
        const std::size_t at = pos_;
        const unsigned char tag = p_[pos_++];
        switch (tag) {
        case binary_tag::null_: return nullptr;
        case binary_tag::false_: return false;
        case binary_tag::true_: return true;
        case binary_tag::int64: {
            const std::uint64_t z = varint("integer");
            return static_cast<std::int64_t>((z >> 1) ^ (~(z & 1) + 1));
        }
        case binary_tag::uint64: {
            return varint("unsigned integer");
        }
        case binary_tag::double_: {
            if (remaining() < 8) fail(at, "truncated double");
            std::uint64_t bits = 0;
            for (int i = 0; i < 8; ++i) bits |= static_cast<std::uint64_t>(p_[pos_ + static_cast<std::size_t>(i)]) << (8 * i);
            pos_ += 8;
            return std::bit_cast<double>(bits);
        }
        case binary_tag::string: {
            const std::size_t n = bounded("string length", 1);
            boost::json::value v(boost::json::string_view(reinterpret_cast<const char*>(p_ + pos_), n));
            pos_ += n;
            return v;
        }
        case binary_tag::array: {
            if (depth >= max_depth_) fail(at, "nesting deeper than " + std::to_string(max_depth_) + " levels");
            const std::size_t n = bounded("array length", 1);
            boost::json::array a;
            a.reserve(n);
            for (std::size_t i = 0; i < n; ++i) a.push_back(value(depth + 1));
            return a;
        }
        case binary_tag::object: {
            if (depth >= max_depth_) fail(at, "nesting deeper than " + std::to_string(max_depth_) + " levels");
            const std::size_t n = bounded("object size", 2);
            boost::json::object o;
            o.reserve(n);
            for (std::size_t i = 0; i < n; ++i) {
                const std::size_t key_at = pos_;
                const std::size_t klen = bounded("key length", 1);
                boost::json::string_view key(reinterpret_cast<const char*>(p_ + pos_), klen);
                pos_ += klen;
                auto r = o.emplace(key, value(depth + 1));
                if (!r.second) fail(key_at, "duplicate key \"" + std::string(key.substr(0, 80)) + "\" in an object");
            }
            return o;
        }
        default: fail(at, "unknown tag 0x" + hex(tag));
        }
    }

    static std::string hex(unsigned char c) {
        static constexpr char digits[] = "0123456789abcdef";
        return {digits[c >> 4], digits[c & 15]};
    }

    const unsigned char* p_;
    std::size_t size_;
    std::size_t pos_ = 0;
    std::string_view what_;
    std::size_t max_depth_;
};

/// Decode a document written by binary_encode. `what` names it in errors
/// (e.g. "state/s1.tsmm slot B"). Throws Errc::parse naming the offset.
[[nodiscard]] inline boost::json::value binary_decode(std::string_view bytes, std::string_view what,
                                                      std::size_t max_depth = binary_max_depth) {
    return BinaryDecoder(bytes, what, max_depth).document();
}

} // namespace tradestate::detail
