// The backend-specific tests' vocabulary, on top of the test-support library.
#pragma once

#include <tradestate_test/support.hpp>

#include <tradestate/detail/endian.hpp>

#include <gtest/gtest.h>

#include <boost/json.hpp>

#include <filesystem>
#include <string>

namespace tstest {

namespace fs = std::filesystem;
using tradestate::testing::ForkedChild;
using tradestate::testing::open_backend;
using tradestate::testing::slurp;
using tradestate::testing::spit;
using tradestate::testing::TempDir;

/// A seed-shaped document with `positions` open positions, identified by `tag` (its iteration).
inline boost::json::value sample_doc(int positions, std::int64_t tag) {
    return tradestate::testing::make_doc(static_cast<std::size_t>(positions), 0, static_cast<std::uint64_t>(tag), tag);
}

inline tradestate::SaveMeta meta_for(std::int64_t iteration, const std::string& saved_at = "2025-09-05T10:15:00+05:30") {
    tradestate::SaveMeta m;
    m.saved_at = saved_at;
    m.iteration = iteration;
    m.positions = iteration % 5;
    m.cash_paise = 100000000 + iteration;
    return m;
}

inline tradestate::Document doc_of(boost::json::value v) {
    tradestate::Document d;
    d.main = std::move(v);
    return d;
}

inline std::uint64_t le64(const std::string& s, std::size_t at) { return tradestate::detail::get_u64(s.data() + at); }

} // namespace tstest
