#include "ops/kernels/attention_dropout_keep.h"

#if defined(__AVX512F__)
#include <immintrin.h>
#endif

#include <algorithm>
#include <cmath>
#include <cstring>

namespace tg::kernels {
namespace {

// Philox4x32-10 on the counters first .. first + 7 with key `seed`: the two 64-bit draws of each
// block (words 0,1 and 2,3, as philox_uniform reads them). The rounds of philox4x32 on eight
// blocks at once, each 32-bit word in a 64-bit lane so a product is one lane-wise multiply.
constexpr int kPhiloxLanes = 8;
using U64x8 = uint64_t __attribute__((vector_size(64)));

void philox_draws(uint64_t first, uint64_t seed, uint64_t* lo_draw, uint64_t* hi_draw) {
  constexpr uint64_t kM0 = 0xD2511F53u, kM1 = 0xCD9E8D57u, kLow = 0xFFFFFFFFu;
  constexpr uint32_t kW0 = 0x9E3779B9u, kW1 = 0xBB67AE85u;
  const U64x8 counter = U64x8{0, 1, 2, 3, 4, 5, 6, 7} + first;
  U64x8 c0 = counter & kLow, c1 = counter >> 32, c2 = U64x8{}, c3 = U64x8{};
  uint32_t k0 = uint32_t(seed), k1 = uint32_t(seed >> 32);
  for (int round = 0; round < 10; ++round) {
#if defined(__AVX512F__)
    // 32 x 32 -> 64-bit products of the low halves (the lanes hold 32-bit words): one
    // vpmuludq, where the generic 64-bit product is a slower vpmullq.
    const U64x8 p0 = U64x8(_mm512_mul_epu32(__m512i(c0), _mm512_set1_epi64(int64_t(kM0))));
    const U64x8 p1 = U64x8(_mm512_mul_epu32(__m512i(c2), _mm512_set1_epi64(int64_t(kM1))));
#else
    const U64x8 p0 = c0 * kM0, p1 = c2 * kM1;
#endif
    c0 = (p1 >> 32) ^ c1 ^ uint64_t(k0);
    c1 = p1 & kLow;
    c2 = (p0 >> 32) ^ c3 ^ uint64_t(k1);
    c3 = p0 & kLow;
    k0 += kW0;
    k1 += kW1;
  }
  const U64x8 lo = (c0 << 32) | c1, hi = (c2 << 32) | c3;
  std::memcpy(lo_draw, &lo, sizeof lo);
  std::memcpy(hi_draw, &hi, sizeof hi);
}

}  // namespace

// keep() is philox_uniform<double> >= p: element i is word pair i % 2 of Philox block
// offset + i / 2, uniform = (draw >> 11) · 2^-53, exact in double, so it is kept when
// draw >> 11 >= ceil(p · 2^53).
void dropout_keep_draws(const AttnDropout& dropout, uint64_t i0, int64_t n, uint8_t* keep) {
  const double scaled = std::ceil(dropout.p * 9007199254740992.0);
  const uint64_t threshold = scaled >= 9007199254740992.0 ? (uint64_t(1) << 53) : uint64_t(scaled);
  uint64_t lo[kPhiloxLanes], hi[kPhiloxLanes];
  // Element e of the run is element e + skip counted from the first block's first element.
  const int64_t skip = int64_t(i0 % 2);
  for (int64_t e = 0; e < n + skip; e += 2 * kPhiloxLanes) {
    philox_draws(dropout.offset + i0 / 2 + uint64_t(e / 2), dropout.seed, lo, hi);
    for (int l = 0; l < kPhiloxLanes; ++l) {
      const int64_t c = e + 2 * l - skip;  // the run's element of the block's first draw
      if (c >= 0 && c < n) keep[c] = (lo[l] >> 11) >= threshold;
      if (c + 1 < n) keep[c + 1] = (hi[l] >> 11) >= threshold;
    }
  }
}

}  // namespace tg::kernels
