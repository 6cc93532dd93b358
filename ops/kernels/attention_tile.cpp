// The tile product kernel and the transposed copy of attention_tile.h.
#include "ops/kernels/attention_tile.h"

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <vector>

#include "ops/kernels/attention_dropout_keep.h"
#include "ops/kernels/attention_tile_block.h"
#include "ops/kernels/transpose_matrix.h"
#include "ops/kernels/unroll.h"

namespace tg::kernels {
namespace {

using namespace tile_blocks;

// The register block: RB rows of C by NV vectors of lanes, kept in registers over the whole K
// loop. AVX2: 6 x 2 = 12 accumulators, plus 2 rows of B and a broadcast: 15 of its 16 registers.
// AVX-512: 6 x 4 = 24 accumulators of its 32 registers on every 64 columns (10 loads per 24
// FMAs) unless the rows are 16, 32 or 64 (eight_row_blocks, below), then 8 x 2 on the 32 or 16
// columns left (head widths 16, 32, 48, ...). In a scratch harness (one core, CPU time, operands in L1,
// the tiles' shapes) 6 x 4 ran 1.00-1.10x the rate of 8 x 2 alone (1.06 on PV at D = 128, 1.10
// on a transposed A), about 190 GFLOP/s; 12 x 2 and 16 x 1 for the narrow strips gained nothing
// measurable in the attention bench.
constexpr int kBlockRows = kTileLanes == 16 ? 8 : 6;
#if defined(__AVX512F__)
constexpr int kWideBlockRows = 6;  // strips of 4 vectors
// Products of 16, 32 or 64 rows (a tile's 64 keys in QKᵀ, D = 16's to 64's PV, every 16-key chunk of
// a tile crossing a band edge) skip the 4-vector strips: their 6-row blocks left a block of 4 or 2
// rows, which ran at about half the rate, where 8-row blocks on 2-vector strips leave none. One
// thread on the AMD Zen 5, alternating runs, sliding window of 256, causal, T = 8192:
// - at 16 and 32 rows: forward 1.10-1.18x at D = 16, 1.04-1.05x at D = 32; fwd+bwd 1.05x at
//   D = 16, 1.03-1.06x at D = 32; flash fwd+bwd at D = 16 (T = 4096) 1.04x;
// - 64 rows as well: forward 1.05-1.06x at D = 64, fwd+bwd 1.03-1.04x; flash's forward at D = 64
//   (T = 4096) 1.03x, 216 GFLOP/s. At D = 128, 1.01x; 128 rows in 8-row blocks gained nothing.
// (The harness figures above, where 6 x 4 won, were the Intel machine's.)
constexpr bool eight_row_blocks(int64_t M) { return M <= 64 && M % 8 == 0 && M % kWideBlockRows != 0; }
#endif

// One register block of C: loaded (or zero), block_accumulate, stored.
template <class V, int RB, int NV, bool Accumulate, AStep Step>
void tile_block(int64_t K, const float* a, int64_t a_ms, int64_t a_ks, const float* b, int64_t ldb,
                float* c, int64_t ldc) {
  constexpr int64_t L = lanes_of<V>;
  V acc[RB][NV];
  TG_UNROLL_WHOLE
  for (int m = 0; m < RB; ++m)
    TG_UNROLL_WHOLE
    for (int v = 0; v < NV; ++v) acc[m][v] = Accumulate ? load_v<V>(c + m * ldc + v * L) : V{};
  block_accumulate<V, RB, NV, Step>(K, a, a_ms, a_ks, b, ldb, acc);
  TG_UNROLL_WHOLE
  for (int m = 0; m < RB; ++m)
    TG_UNROLL_WHOLE
    for (int v = 0; v < NV; ++v) store_v(c + m * ldc + v * L, acc[m][v]);
}

// The last rows < kBlockRows of a strip, as one block of exactly that many rows.
template <class V, int RB, int NV, bool Accumulate, AStep Step>
void tile_rest(int64_t rows, int64_t K, const float* a, int64_t a_ms, int64_t a_ks, const float* b, int64_t ldb,
               float* c, int64_t ldc) {
  if constexpr (RB > 0) {
    if (rows == RB)
      tile_block<V, RB, NV, Accumulate, Step>(K, a, a_ms, a_ks, b, ldb, c, ldc);
    else
      tile_rest<V, RB - 1, NV, Accumulate, Step>(rows, K, a, a_ms, a_ks, b, ldb, c, ldc);
  }
}

// Rows [0, M) of one column strip of NV vectors: full blocks of RB rows, then the rest in one
// smaller block.
template <class V, int NV, bool Accumulate, AStep Step, int RB = kBlockRows>
void tile_strip(int64_t M, int64_t K, const float* a, int64_t a_ms, int64_t a_ks, const float* b,
                int64_t ldb, float* c, int64_t ldc) {
  int64_t m = 0;
  for (; m + RB <= M; m += RB)
    tile_block<V, RB, NV, Accumulate, Step>(K, a + m * a_ms, a_ms, a_ks, b, ldb, c + m * ldc, ldc);
  tile_rest<V, RB - 1, NV, Accumulate, Step>(M - m, K, a + m * a_ms, a_ms, a_ks, b, ldb, c + m * ldc, ldc);
}

template <bool Accumulate, AStep Step>
void tile_gemm_impl(int64_t M, int64_t N, int64_t K, const float* a, int64_t a_ms, int64_t a_ks,
                    const float* b, int64_t ldb, float* c, int64_t ldc) {
  constexpr int64_t L = kTileLanes;
  int64_t n = 0;
#if defined(__AVX512F__)
  if (!eight_row_blocks(M))
    for (; n + 4 * L <= N; n += 4 * L)
      tile_strip<TileVec, 4, Accumulate, Step, kWideBlockRows>(M, K, a, a_ms, a_ks, b + n, ldb, c + n, ldc);
#endif
  for (; n + 2 * L <= N; n += 2 * L)
    tile_strip<TileVec, 2, Accumulate, Step>(M, K, a, a_ms, a_ks, b + n, ldb, c + n, ldc);
  if (n + L <= N) {
    tile_strip<TileVec, 1, Accumulate, Step>(M, K, a, a_ms, a_ks, b + n, ldb, c + n, ldc);
    n += L;
  }
#if defined(__AVX512F__)
  if (n < N) tile_strip<HalfVec, 1, Accumulate, Step>(M, K, a, a_ms, a_ks, b + n, ldb, c + n, ldc);
#endif
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

void dropout_keep_tile(uint64_t seed, uint64_t offset, double p, float scale, uint64_t index0,
                       uint64_t row_step, int64_t rows, int64_t cols, float* keepT, int64_t ld) {
  const AttnDropout dropout{p, seed, offset};
  for (int64_t c = 0; c < cols; ++c) std::fill(keepT + c * ld + rows, keepT + (c + 1) * ld, 0.0f);
  std::vector<uint8_t> keep(static_cast<size_t>(cols));
  for (int64_t r = 0; r < rows; ++r) {
    dropout_keep_draws(dropout, index0 + uint64_t(r) * row_step, cols, keep.data());
    for (int64_t c = 0; c < cols; ++c) keepT[c * ld + r] = keep[size_t(c)] ? scale : 0.0f;
  }
}

void transpose_tile(const float* src, int64_t lds, int64_t rows, int64_t cols, float scale,
                    float* dst, int64_t rows_pad) {
  // Transposed in blocks of registers (transpose_matrix: 16 x 16, then 8 x 8), then scaled: the same
  // single rounding of scale · x as scaling while copying. A column-at-a-time copy read each
  // source row 64 times over: 5% of sliding window's time, whose query tiles meet few key tiles.
  transpose_matrix(src, rows, cols, lds, dst, rows_pad);
  for (int64_t c = 0; c < cols; ++c) {
    float* d = dst + c * rows_pad;
    if (scale != 1.0f)
      for (int64_t r = 0; r < rows; ++r) d[r] *= scale;
    std::fill(d + rows, d + rows_pad, 0.0f);
  }
}

}  // namespace tg::kernels
