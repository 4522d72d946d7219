// fno_runner — the one random generator of the simulation: xoshiro256**
// (Blackman & Vigna, 2018) seeded through SplitMix64, with its complete
// state readable and writable so that a saved session resumes the exact
// same random sequence.
#pragma once

#include <tradestate/error.hpp>

#include <array>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <string>
#include <vector>

namespace fno {

class Rng {
public:
    explicit Rng(std::uint64_t seed = 1) { reseed(seed); }

    void reseed(std::uint64_t seed) {
        std::uint64_t x = seed;
        for (auto& w : s_) w = splitmix64(x);
        have_spare_ = false;
        spare_ = 0.0;
    }

    /// Next 64 random bits.
    std::uint64_t next() noexcept {
        const std::uint64_t result = rotl(s_[1] * 5, 7) * 9;
        const std::uint64_t t = s_[1] << 17;
        s_[2] ^= s_[0];
        s_[3] ^= s_[1];
        s_[1] ^= s_[2];
        s_[0] ^= s_[3];
        s_[2] ^= t;
        s_[3] = rotl(s_[3], 45);
        return result;
    }

    /// Uniform in [0, 1) with 53 random bits.
    double uniform() noexcept { return static_cast<double>(next() >> 11) * 0x1.0p-53; }

    /// Uniform in [lo, hi).
    double uniform(double lo, double hi) noexcept { return lo + (hi - lo) * uniform(); }

    /// Standard normal (Marsaglia polar method; the spare value is part of the state).
    double normal() noexcept {
        if (have_spare_) {
            have_spare_ = false;
            return spare_;
        }
        double u, v, s;
        do {
            u = uniform(-1.0, 1.0);
            v = uniform(-1.0, 1.0);
            s = u * u + v * v;
        } while (s >= 1.0 || s == 0.0);
        const double m = std::sqrt(-2.0 * std::log(s) / s);
        spare_ = v * m;
        have_spare_ = true;
        return u * m;
    }

    /// The full state as text: four 64-bit words and the spare normal (as
    /// its exact bit pattern), all in hex.
    [[nodiscard]] std::vector<std::string> state() const {
        std::vector<std::string> out;
        for (auto w : s_) out.push_back(hex(w));
        out.push_back(have_spare_ ? hex(bits(spare_)) : std::string());
        return out;
    }

    void set_state(const std::vector<std::string>& st) {
        if (st.size() != 5)
            throw tradestate::Error(tradestate::Errc::schema,
                                    "runner.rng must hold 5 strings (4 state words and the spare normal), found " +
                                        std::to_string(st.size()));
        std::array<std::uint64_t, 4> s{};
        for (std::size_t i = 0; i < 4; ++i) s[i] = unhex(st[i], "runner.rng[" + std::to_string(i) + "]");
        if (s[0] == 0 && s[1] == 0 && s[2] == 0 && s[3] == 0)
            throw tradestate::Error(tradestate::Errc::schema, "runner.rng is all zero, which xoshiro256** cannot leave");
        s_ = s;
        have_spare_ = !st[4].empty();
        spare_ = have_spare_ ? from_bits(unhex(st[4], "runner.rng[4]")) : 0.0;
    }

    friend bool operator==(const Rng& a, const Rng& b) noexcept {
        return a.s_ == b.s_ && a.have_spare_ == b.have_spare_ && bits(a.spare_) == bits(b.spare_);
    }

    // Exact text for doubles that must survive a save (a JSON number
    // printed and parsed back need not be bit-identical).
    static std::string hex(std::uint64_t v) {
        char buf[17];
        std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(v));
        return buf;
    }
    static std::uint64_t unhex(const std::string& s, const std::string& what) {
        if (s.size() != 16)
            throw tradestate::Error(tradestate::Errc::schema, what + " must be 16 hex digits, found '" + s + "'");
        std::uint64_t v = 0;
        for (char c : s) {
            int d;
            if (c >= '0' && c <= '9') d = c - '0';
            else if (c >= 'a' && c <= 'f') d = c - 'a' + 10;
            else if (c >= 'A' && c <= 'F') d = c - 'A' + 10;
            else throw tradestate::Error(tradestate::Errc::schema, what + " must be 16 hex digits, found '" + s + "'");
            v = (v << 4) | static_cast<std::uint64_t>(d);
        }
        return v;
    }
    static std::uint64_t bits(double d) noexcept { return __builtin_bit_cast(std::uint64_t, d); }
    static double from_bits(std::uint64_t u) noexcept { return __builtin_bit_cast(double, u); }

private:
    static std::uint64_t rotl(std::uint64_t x, int k) noexcept { return (x << k) | (x >> (64 - k)); }
    static std::uint64_t splitmix64(std::uint64_t& x) noexcept {
        std::uint64_t z = (x += 0x9e3779b97f4a7c15ull);
        z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
        z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
        return z ^ (z >> 31);
    }

    std::array<std::uint64_t, 4> s_{};
    bool have_spare_ = false;
    double spare_ = 0.0;
};

/// A double written as the hex of its bits, for exact round trips.
inline std::string exact_double(double d) { return Rng::hex(Rng::bits(d)); }
inline double exact_double(const std::string& s, const std::string& what) { return Rng::from_bits(Rng::unhex(s, what)); }

} // namespace fno
