// The compact binary document encoding: round trips and hostile input.
#include <tradestate/detail/binary_doc.hpp>

#include <gtest/gtest.h>

#include <boost/json.hpp>

#include <cmath>
#include <cstdint>
#include <limits>
#include <random>
#include <string>

namespace {

using tradestate::Error;
using tradestate::Errc;
namespace td = tradestate::detail;

/// Same value and the same Boost.JSON kind everywhere (== treats 5 and 5u as equal).
bool same(const boost::json::value& a, const boost::json::value& b) {
    if (a.kind() != b.kind()) return false;
    switch (a.kind()) {
    case boost::json::kind::double_: {
        const double x = a.get_double(), y = b.get_double();
        return std::signbit(x) == std::signbit(y) && (x == y || (std::isnan(x) && std::isnan(y)));
    }
    case boost::json::kind::array: {
        const auto &x = a.get_array(), &y = b.get_array();
        if (x.size() != y.size()) return false;
        for (std::size_t i = 0; i < x.size(); ++i)
            if (!same(x[i], y[i])) return false;
        return true;
    }
    case boost::json::kind::object: {
        const auto &x = a.get_object(), &y = b.get_object();
        if (x.size() != y.size()) return false;
        auto it = y.begin();
        for (const auto& kv : x) {
            if (kv.key() != it->key() || !same(kv.value(), it->value())) return false;
            ++it;
        }
        return true;
    }
    default: return a == b;
    }
}

class Gen {
public:
    explicit Gen(std::uint64_t seed) : rng_(seed) {}

    std::string str() {
        static const char* pieces[] = {"a", "NIFTY", " ", "₹", "स्ट्रैडल", "日本", "😀", "\"", "\\", "\n", "\x01", "é", ""};
        std::string s;
        const auto n = pick(6);
        for (std::size_t i = 0; i < n; ++i) s += pieces[pick(std::size(pieces))];
        return s;
    }
    boost::json::value value(int depth) {
        switch (pick(depth > 0 ? 10 : 8)) {
        case 0: return nullptr;
        case 1: return pick(2) == 0;
        case 2: {
            static const std::int64_t edge[] = {0, 1, -1, 63, -64, 64, INT64_MAX, INT64_MIN, 1LL << 35, -(1LL << 50)};
            return pick(2) ? edge[pick(std::size(edge))] : static_cast<std::int64_t>(rng_());
        }
        case 3: return static_cast<std::uint64_t>(rng_() | (1ull << 63)); // needs uint64
        case 4: return static_cast<std::uint64_t>(pick(1000));           // small, still the unsigned kind
        case 5: {
            static const double edge[] = {0.0, -0.0, 914462.59, 1e-300, -1e300, std::numeric_limits<double>::denorm_min(),
                                          std::numeric_limits<double>::infinity(), 0.1};
            if (pick(2)) return edge[pick(std::size(edge))];
            double d;
            do d = std::bit_cast<double>(rng_()); while (std::isnan(d));
            return d;
        }
        case 6:
        case 7: return boost::json::string(str());
        case 8: {
            boost::json::array a;
            const auto n = pick(5);
            for (std::size_t i = 0; i < n; ++i) a.push_back(value(depth - 1));
            return a;
        }
        default: {
            boost::json::object o;
            const auto n = pick(5);
            for (std::size_t i = 0; i < n; ++i) o[str() + std::to_string(i)] = value(depth - 1);
            return o;
        }
        }
    }

private:
    std::size_t pick(std::size_t n) { return static_cast<std::size_t>(rng_() % n); }
    std::mt19937_64 rng_;
};

boost::json::value nested(std::size_t depth) {
    boost::json::value v = 42;
    for (std::size_t i = 0; i < depth; ++i) {
        if (i % 2) v = boost::json::array{std::move(v)};
        else v = boost::json::object{{"k", std::move(v)}};
    }
    return v;
}

Errc decode_error(std::string_view bytes) {
    try {
        (void)td::binary_decode(bytes, "test");
    } catch (const Error& e) {
        EXPECT_NE(std::string(e.what()).find("offset"), std::string::npos) << e.what();
        return e.code();
    }
    ADD_FAILURE() << "decoded without error";
    return Errc::invalid_argument;
}

TEST(BinaryDoc, RandomDocumentsRoundTripWithKinds) {
    const std::uint64_t seed = std::random_device{}();
    SCOPED_TRACE("seed " + std::to_string(seed));
    Gen g(seed);
    for (int i = 0; i < 2000; ++i) {
        const auto v = g.value(6);
        const auto bytes = td::binary_encode(v);
        const auto back = td::binary_decode(bytes, "random");
        ASSERT_TRUE(same(v, back)) << boost::json::serialize(v);
    }
}

TEST(BinaryDoc, ExtremesRoundTrip) {
    boost::json::object o;
    o["min"] = INT64_MIN;
    o["max"] = INT64_MAX;
    o["umax"] = UINT64_MAX;
    o["neg_zero"] = -0.0;
    o["price"] = 914462.59;
    o["unicode key ₹ 😀"] = "NIFTY25SEP24650CE — स्ट्रैडल";
    o["empty"] = boost::json::object{};
    o["empty_array"] = boost::json::array{};
    o["nul"] = boost::json::string(std::string_view("a\0b", 3));
    const boost::json::value v = o;
    EXPECT_TRUE(same(td::binary_decode(td::binary_encode(v), "x"), v));
    EXPECT_EQ(td::binary_decode(td::binary_encode(v), "x").at("nul").get_string().size(), 3u);
}

TEST(BinaryDoc, DepthLimitIsExactlyTheLimit) {
    const auto ok = nested(td::binary_max_depth);
    EXPECT_TRUE(same(td::binary_decode(td::binary_encode(ok), "deep"), ok));
    const auto too_deep = nested(td::binary_max_depth + 1);
    try {
        (void)td::binary_encode(too_deep);
        FAIL() << "encoded a document deeper than the limit";
    } catch (const Error& e) {
        EXPECT_EQ(e.code(), Errc::invalid_argument);
    }
    // Hand-made: 65 nested one-element arrays around null.
    std::string bytes;
    for (std::size_t i = 0; i < td::binary_max_depth + 1; ++i) bytes += "\x07\x01";
    bytes.push_back('\0');
    EXPECT_EQ(decode_error(bytes), Errc::parse);
    // And the same with 64 decodes.
    EXPECT_NO_THROW((void)td::binary_decode(std::string_view(bytes).substr(2), "deep"));
}

TEST(BinaryDoc, EveryTruncationIsRejected) {
    const boost::json::value v = boost::json::object{
        {"s", "₹1,234.50"}, {"n", -12345}, {"u", UINT64_MAX}, {"d", 0.25}, {"a", boost::json::array{nullptr, true, false}}};
    const auto bytes = td::binary_encode(v);
    ASSERT_GT(bytes.size(), 20u);
    for (std::size_t n = 0; n < bytes.size(); ++n)
        EXPECT_EQ(decode_error(std::string_view(bytes).substr(0, n)), Errc::parse) << "prefix of " << n << " bytes";
    EXPECT_TRUE(same(td::binary_decode(bytes, "full"), v));
}

TEST(BinaryDoc, HostileInputIsRejected) {
    const auto ok = td::binary_encode(boost::json::value{1, 2, 3});
    EXPECT_EQ(decode_error(ok + "x"), Errc::parse);                               // trailing garbage
    EXPECT_EQ(decode_error("\x09"), Errc::parse);                                 // unknown tag
    EXPECT_EQ(decode_error(std::string("\x07\xff\xff\xff\xff\xff\xff\xff\x0f", 9)), Errc::parse); // huge count
    EXPECT_EQ(decode_error(std::string("\x06\x80\x80\x80\x80\x80\x80\x80\x80\x80\x80\x01", 12)), Errc::parse); // long varint
    EXPECT_EQ(decode_error(std::string("\x03\xff\xff\xff\xff\xff\xff\xff\xff\xff\x7f", 11)), Errc::parse); // overflow
    EXPECT_EQ(decode_error(std::string("\x08\x02\x01k\x00\x01k\x00", 8)), Errc::parse); // duplicate key
    EXPECT_EQ(decode_error(std::string("\x05\x00\x00", 3)), Errc::parse);        // short double
    EXPECT_EQ(decode_error(""), Errc::parse);
}

TEST(BinaryDoc, RandomByteFlipsNeverCrash) {
    Gen g(7);
    std::mt19937_64 rng(11);
    int rejected = 0;
    for (int i = 0; i < 3000; ++i) {
        auto bytes = td::binary_encode(g.value(4));
        bytes[rng() % bytes.size()] ^= static_cast<char>(1 + rng() % 255);
        try {
            (void)td::binary_decode(bytes, "flipped");
        } catch (const Error& e) {
            EXPECT_EQ(e.code(), Errc::parse);
            ++rejected;
        }
    }
    EXPECT_GT(rejected, 0);
}

} // namespace
