// The tile product kernel and the transposed copy of attention_tile.h.
#include "ops/kernels/attention_tile.h"

#if defined(__AVX512F__)
#include <immintrin.h>
#endif

#include <algorithm>
#include <cmath>
#include <cstring>
#include <vector>

namespace tg::kernels {
namespace {

constexpr int64_t L = kTileLanes;

// The register block: RB rows of C by NV vectors of lanes, kept in registers over the whole K
// loop (6 x 2 = 12 accumulators, plus 2 rows of B and a broadcast: 15 of AVX2's 16 registers).
constexpr int kBlockRows = 6;

// How A is read: kRowsContiguous when a_ks == 1 (A(m, k) = row_m[k]: one base per row, indexed
// by k), kColumnsContiguous when a_ms == 1 (A(m, k) = col_k[m]: one pointer stepping over k),
// else kStrided (a pointer per row, each stepping by a_ks). The first two keep the loop's
// integer work to one counter, which matters when a block does only 12 FMAs per step.
enum class AStep { kRowsContiguous, kColumnsContiguous, kStrided };

template <int RB, int NV, bool Accumulate, AStep Step>
void tile_block(int64_t K, const float* a, int64_t a_ms, int64_t a_ks, const float* b, int64_t ldb,
                float* c, int64_t ldc) {
  TileVec acc[RB][NV];
  for (int m = 0; m < RB; ++m)
    for (int v = 0; v < NV; ++v) acc[m][v] = Accumulate ? load_lanes(c + m * ldc + v * L) : TileVec{};
  const float* am[RB];
  for (int m = 0; m < RB; ++m) am[m] = a + m * a_ms;
  for (int64_t k = 0; k < K; ++k) {
    TileVec bv[NV];
    for (int v = 0; v < NV; ++v) bv[v] = load_lanes(b + k * ldb + v * L);
    for (int m = 0; m < RB; ++m) {
      float x;
      if constexpr (Step == AStep::kRowsContiguous) {
        x = am[m][k];
      } else if constexpr (Step == AStep::kColumnsContiguous) {
        x = a[k * a_ks + m];
      } else {
        x = *am[m];
        am[m] += a_ks;
      }
      const TileVec xv = splat_value(x);
      for (int v = 0; v < NV; ++v) acc[m][v] = fma_lanes(xv, bv[v], acc[m][v]);
    }
  }
  for (int m = 0; m < RB; ++m)
    for (int v = 0; v < NV; ++v) store_lanes(c + m * ldc + v * L, acc[m][v]);
}

// Rows [0, M) of one column strip of NV vectors: full blocks, then the rest in one smaller block.
template <int NV, bool Accumulate, AStep Step>
void tile_strip(int64_t M, int64_t K, const float* a, int64_t a_ms, int64_t a_ks, const float* b,
                int64_t ldb, float* c, int64_t ldc) {
  int64_t m = 0;
  for (; m + kBlockRows <= M; m += kBlockRows)
    tile_block<kBlockRows, NV, Accumulate, Step>(K, a + m * a_ms, a_ms, a_ks, b, ldb, c + m * ldc, ldc);
  const float* ar = a + m * a_ms;
  float* cr = c + m * ldc;
  switch (M - m) {
    case 5: tile_block<5, NV, Accumulate, Step>(K, ar, a_ms, a_ks, b, ldb, cr, ldc); break;
    case 4: tile_block<4, NV, Accumulate, Step>(K, ar, a_ms, a_ks, b, ldb, cr, ldc); break;
    case 3: tile_block<3, NV, Accumulate, Step>(K, ar, a_ms, a_ks, b, ldb, cr, ldc); break;
    case 2: tile_block<2, NV, Accumulate, Step>(K, ar, a_ms, a_ks, b, ldb, cr, ldc); break;
    case 1: tile_block<1, NV, Accumulate, Step>(K, ar, a_ms, a_ks, b, ldb, cr, ldc); break;
    default: break;
  }
}

template <bool Accumulate, AStep Step>
void tile_gemm_impl(int64_t M, int64_t N, int64_t K, const float* a, int64_t a_ms, int64_t a_ks,
                    const float* b, int64_t ldb, float* c, int64_t ldc) {
  int64_t n = 0;
  for (; n + 2 * L <= N; n += 2 * L) tile_strip<2, Accumulate, Step>(M, K, a, a_ms, a_ks, b + n, ldb, c + n, ldc);
  if (n < N) tile_strip<1, Accumulate, Step>(M, K, a, a_ms, a_ks, b + n, ldb, c + n, ldc);
}

template <bool Accumulate>
void tile_gemm_step(int64_t M, int64_t N, int64_t K, const float* a, int64_t a_ms, int64_t a_ks,
                    const float* b, int64_t ldb, float* c, int64_t ldc) {
  if (a_ks == 1)
    tile_gemm_impl<Accumulate, AStep::kRowsContiguous>(M, N, K, a, a_ms, a_ks, b, ldb, c, ldc);
  else if (a_ms == 1)
    tile_gemm_impl<Accumulate, AStep::kColumnsContiguous>(M, N, K, a, a_ms, a_ks, b, ldb, c, ldc);
  else
    tile_gemm_impl<Accumulate, AStep::kStrided>(M, N, K, a, a_ms, a_ks, b, ldb, c, ldc);
}

}  // namespace

void tile_gemm(bool accumulate, int64_t M, int64_t N, int64_t K, const float* a, int64_t a_ms,
               int64_t a_ks, const float* b, int64_t ldb, float* c, int64_t ldc) {
  if (accumulate)
    tile_gemm_step<true>(M, N, K, a, a_ms, a_ks, b, ldb, c, ldc);
  else
    tile_gemm_step<false>(M, N, K, a, a_ms, a_ks, b, ldb, c, ldc);
}

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

void dropout_keep_tile(uint64_t seed, uint64_t offset, double p, float scale, uint64_t index0,
                       uint64_t row_step, int64_t rows, int64_t cols, float* keepT, int64_t ld) {
  // keep() is uniform >= p with uniform = (draw >> 11) · 2^-53, exact in double: the same as
  // (draw >> 11) >= ceil(p · 2^53).
  const double scaled = std::ceil(p * 9007199254740992.0);
  const uint64_t threshold = scaled >= 9007199254740992.0 ? (uint64_t(1) << 53) : uint64_t(scaled);
  for (int64_t c = 0; c < cols; ++c) std::fill(keepT + c * ld + rows, keepT + (c + 1) * ld, 0.0f);
  // One row's draws in element order: the blocks' word pairs, from the block of its first element.
  std::vector<uint64_t> draws(size_t(cols + 2 * kPhiloxLanes));
  uint64_t lo[kPhiloxLanes], hi[kPhiloxLanes];
  for (int64_t r = 0; r < rows; ++r) {
    // Element i of the draw is word pair i % 2 of block offset + i / 2.
    const uint64_t i0 = index0 + uint64_t(r) * row_step, first_block = i0 / 2;
    const int64_t skip = int64_t(i0 % 2);
    for (int64_t e = 0; e < cols + skip; e += 2 * kPhiloxLanes) {
      philox_draws(offset + first_block + uint64_t(e / 2), seed, lo, hi);
      for (int l = 0; l < kPhiloxLanes; ++l) {
        draws[size_t(e + 2 * l)] = lo[l];
        draws[size_t(e + 2 * l + 1)] = hi[l];
      }
    }
    const uint64_t* row = draws.data() + skip;
    for (int64_t c = 0; c < cols; ++c) keepT[c * ld + r] = (row[c] >> 11) >= threshold ? scale : 0.0f;
  }
}

void transpose_tile(const float* src, int64_t lds, int64_t rows, int64_t cols, float scale,
                    float* dst, int64_t rows_pad) {
  for (int64_t c = 0; c < cols; ++c) {
    float* d = dst + c * rows_pad;
    for (int64_t r = 0; r < rows; ++r) d[r] = scale * src[r * lds + c];
    for (int64_t r = rows; r < rows_pad; ++r) d[r] = 0.0f;
  }
}

}  // namespace tg::kernels
