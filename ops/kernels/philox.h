#pragma once
// Philox4x32-10 (Salmon et al., "Parallel random numbers: as easy as 1, 2, 3", SC 2011): a
// counter-based generator. The value drawn for element i of a draw depends only on
// (seed, offset, i), so any split of a loop across threads draws the same numbers.
#include <array>
#include <cmath>
#include <cstdint>

namespace tg::kernels {

using PhiloxBlock = std::array<uint32_t, 4>;

/// Ten Philox rounds on counter `ctr` with the 64-bit key `seed`.
inline PhiloxBlock philox4x32(uint64_t counter, uint64_t seed) {
  constexpr uint32_t kM0 = 0xD2511F53u, kM1 = 0xCD9E8D57u;
  constexpr uint32_t kW0 = 0x9E3779B9u, kW1 = 0xBB67AE85u;
  PhiloxBlock c = {static_cast<uint32_t>(counter), static_cast<uint32_t>(counter >> 32), 0u, 0u};
  uint32_t k0 = static_cast<uint32_t>(seed), k1 = static_cast<uint32_t>(seed >> 32);
  for (int round = 0; round < 10; ++round) {
    uint64_t p0 = uint64_t(kM0) * c[0];
    uint64_t p1 = uint64_t(kM1) * c[2];
    c = {static_cast<uint32_t>(p1 >> 32) ^ c[1] ^ k0, static_cast<uint32_t>(p1),
         static_cast<uint32_t>(p0 >> 32) ^ c[3] ^ k1, static_cast<uint32_t>(p0)};
    k0 += kW0;
    k1 += kW1;
  }
  return c;
}

/// Uniform in [0, 1) for element i of a draw starting at block `offset`
/// (two elements share one Philox block).
template <class T>
inline T philox_uniform(uint64_t seed, uint64_t offset, uint64_t i) {
  PhiloxBlock b = philox4x32(offset + i / 2, seed);
  uint64_t bits = (uint64_t(b[2 * (i % 2)]) << 32) | b[2 * (i % 2) + 1];
  if constexpr (sizeof(T) == 4)
    return static_cast<T>(bits >> 40) * T(1.0 / 16777216.0);          // 24 bits
  else
    return static_cast<T>(bits >> 11) * T(1.0 / 9007199254740992.0);  // 53 bits
}

/// Blocks a uniform draw of n elements consumes.
inline uint64_t philox_uniform_blocks(uint64_t n) { return (n + 1) / 2; }

/// Standard normal for element i of a draw starting at block `offset` (Box-Muller, one block
/// per element).
template <class T>
inline T philox_normal(uint64_t seed, uint64_t offset, uint64_t i) {
  PhiloxBlock b = philox4x32(offset + i, seed);
  double u1 = static_cast<double>((uint64_t(b[0]) << 32 | b[1]) >> 11) * (1.0 / 9007199254740992.0);
  double u2 = static_cast<double>((uint64_t(b[2]) << 32 | b[3]) >> 11) * (1.0 / 9007199254740992.0);
  // 1 - u1 is in (0, 1], so the log is finite.
  return static_cast<T>(std::sqrt(-2.0 * std::log(1.0 - u1)) * std::cos(6.283185307179586 * u2));
}

}  // namespace tg::kernels
