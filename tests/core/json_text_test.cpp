// JSON text: Python-compatible printing and strict, path-naming parsing.
#include <tradestate/detail/atomic_file.hpp>
#include <tradestate/detail/json.hpp>

#include <tradestate_test/paths.hpp>

#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <cstring>
#include <random>

using tradestate::Error;
using tradestate::Errc;
namespace d = tradestate::detail;

TEST(JsonText, NumbersPrintAsShortestDecimalLikePython) {
    auto v = d::parse(R"([914462.59, 1000000.0, 0.0, -28.4, 220.42, 1e22, 1e-05, 0.0001, 123456789012345.67, 75])", "t");
    EXPECT_EQ(d::print(v, {-1}), "[914462.59,1000000.0,0.0,-28.4,220.42,1e+22,1e-05,0.0001,123456789012345.67,75]");
}

TEST(JsonText, IndentMatchesPythonJsonDumpIndent2) {
    auto v = d::parse(R"({"a":{"b":[1,{}],"c":[]},"s":"₹ \"q\"\n"})", "t");
    EXPECT_EQ(d::print(v), "{\n  \"a\": {\n    \"b\": [\n      1,\n      {}\n    ],\n    \"c\": []\n  },\n  \"s\": \"₹ \\\"q\\\"\\n\"\n}");
}

TEST(JsonText, PrintedTextMatchesPythonByteForByte) {
    // If Debian's python3 is here, compare with json.dumps(indent=2, ensure_ascii=False) directly.
    if (std::system("/usr/bin/python3 -c 'import json' >/dev/null 2>&1") != 0) GTEST_SKIP() << "no /usr/bin/python3";
    const auto dir = std::filesystem::temp_directory_path() / ("ts_py_" + std::to_string(::getpid()));
    std::filesystem::create_directories(dir);
    const std::string src = R"({"cash": 914462.59, "x": [1e22, 1e-07, 0.1, 100.0, -0.0, 5], "u": "ünï €", "n": null, "t": true})";
    d::write_file_atomic(dir / "in.json", src, false);
    const std::string cmd = "/usr/bin/python3 -c \"import json,sys; d=json.load(open(sys.argv[1])); "
                            "open(sys.argv[2],'w').write(json.dumps(d, indent=2, ensure_ascii=False))\" " +
                            (dir / "in.json").string() + " " + (dir / "py.json").string();
    ASSERT_EQ(std::system(cmd.c_str()), 0);
    const auto py = d::read_file(dir / "py.json");
    EXPECT_EQ(d::print(d::parse(src, "in.json")), py);
    std::filesystem::remove_all(dir);
}

TEST(JsonText, MalformedInputsGiveLocatedErrors) {
    struct Case { std::string text; std::string expect; };
    const Case cases[] = {
        {"{\"a\": 1,\n \"b\": }", "doc.json:2:7"},
        {"{\"a\": 1", "doc.json:1:8"},
        {"", "empty document"},
        {"[1, 2,]", "doc.json:1:7"},
        {"{\"a\": NaN}", "doc.json:1:7"},
        {"{\"a\": Infinity}", "doc.json:1:7"},
        {"{\"a\": 1} x", "doc.json:1:10"},
        {"{\"a\":1,\"a\":2}", "duplicate key in object at $"},
        {"{\"p\":{\"x\":{\"k\":1,\"k\":1}}}", "duplicate key in object at $.p.x"},
        {"[{\"a\":1},{\"b\":2,\"b\":3}]", "duplicate key in object at $[1]"},
        {std::string(65, '[') + std::string(65, ']'), "nesting deeper than 64 levels"},
        {"{\"a\": \"\xff\xfe\"}", "doc.json:1:8"},
    };
    for (const auto& c : cases) {
        try {
            (void)d::parse(c.text, "doc.json");
            ADD_FAILURE() << "accepted: " << c.text;
        } catch (const Error& e) {
            EXPECT_EQ(e.code(), Errc::parse);
            EXPECT_NE(std::string(e.what()).find(c.expect), std::string::npos) << e.what() << " / wanted " << c.expect;
        }
    }
}

TEST(JsonText, EveryTruncationOfADocumentIsRejected) {
    const std::string doc = d::read_file(tradestate::testing::seed_file());
    const auto full = d::parse(doc, "seed");
    std::size_t last_brace = doc.rfind('}');
    for (std::size_t n = 0; n < last_brace; ++n) {
        EXPECT_THROW((void)d::parse(std::string_view(doc).substr(0, n), "seed"), Error) << "prefix " << n;
    }
    EXPECT_EQ(d::parse(doc, "seed"), full);
}

TEST(JsonText, RandomBytesNeverCrash) {
    std::mt19937 rng(7);
    std::uniform_int_distribution<int> len(0, 64), byte(0, 255);
    const std::string alphabet = "{}[]\":,0123456789.eE-+truefalsenul \\u";
    std::uniform_int_distribution<std::size_t> pick(0, alphabet.size() - 1);
    int accepted = 0;
    for (int i = 0; i < 20000; ++i) {
        std::string s;
        const int n = len(rng);
        for (int k = 0; k < n; ++k) s.push_back(i % 2 ? static_cast<char>(byte(rng)) : alphabet[pick(rng)]);
        try {
            auto v = d::parse(s, "fuzz");
            ++accepted;
            EXPECT_EQ(d::parse(d::print(v), "again"), v); // whatever parses, prints and re-parses equal
        } catch (const Error& e) {
            EXPECT_EQ(e.code(), Errc::parse);
        }
    }
    EXPECT_GT(accepted, 0);
}

TEST(JsonText, EveryFiniteDoubleReadsBackBitIdentical) {
    // Checksums are taken over re-printed documents, so print -> parse must be exact.
    std::mt19937_64 rng(1);
    for (int i = 0; i < 200000; ++i) {
        const std::uint64_t bits = rng();
        double x;
        std::memcpy(&x, &bits, sizeof x);
        if (!std::isfinite(x)) continue;
        const auto text = d::print(boost::json::value(x));
        const double back = d::parse(text, "t").get_double();
        ASSERT_EQ(std::memcmp(&back, &x, sizeof x), 0) << text;
    }
    EXPECT_EQ(d::print(d::parse("123456789012345.67", "t")), "123456789012345.67");
}
