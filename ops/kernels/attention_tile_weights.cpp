// tile_softmax_weights (attention_tile_weights.h): the tile's scores in register blocks of
// kKeys keys by kVectors vectors of lanes, each block turned into weights before the next.
#include "ops/kernels/attention_tile_weights.h"

#include <limits>

#include "ops/kernels/attention_tile_block.h"

namespace tg::kernels {
namespace {

constexpr int64_t kRows = kTiledRows, kCols = kTiledCols, kLanes = kTileLanes;
// A block: kKeys x kVectors accumulators (16 of AVX-512's 32 registers, 8 of AVX2's 16), the
// shape of tile_gemm's blocks for a 64-row product.
constexpr int kVectors = 2;
constexpr int kKeys = kTileLanes == 16 ? 8 : 4;
static_assert(kCols % kKeys == 0 && kRows % (kVectors * kLanes) == 0);

bool any_lane_above(TileVec a, TileVec b) {
#if defined(__AVX512F__)
  return _mm512_cmp_ps_mask(a, b, _CMP_GT_OQ) != 0;
#elif defined(__AVX__)
  return _mm256_movemask_ps(_mm256_cmp_ps(a, b, _CMP_GT_OQ)) != 0;
#else
  for (int64_t x = 0; x < kLanes; ++x)
    if (a[x] > b[x]) return true;
  return false;
#endif
}

// One group of kVectors strips, lanes [g0, g0 + kVectors · kLanes); returns its strips' bits.
uint32_t group_weights(int64_t D, const float* k, int64_t ldk, const float* qT, float* pT, float* m, float* l,
                       float* alpha, int64_t g0) {
  const TileVec kMinus = splat_value(-std::numeric_limits<float>::infinity());
  TileVec top_seen[kVectors], shift[kVectors], sum[kVectors], scale[kVectors];
  bool moved[kVectors] = {};
  TG_UNROLL_WHOLE
  for (int v = 0; v < kVectors; ++v) {
    top_seen[v] = load_lanes(m + g0 + v * kLanes);
    // A lane that has seen no key (m = -inf) moves on its first finite score; until then its
    // weights are exp(-inf - 0) = 0.
    shift[v] = top_seen[v] == kMinus ? TileVec{} : top_seen[v];
    sum[v] = TileVec{};
    scale[v] = splat_value(1.0f);
  }
  for (int64_t c0 = 0; c0 < kCols; c0 += kKeys) {
    TileVec acc[kKeys][kVectors];
    TG_UNROLL_WHOLE
    for (int r = 0; r < kKeys; ++r)
      TG_UNROLL_WHOLE
      for (int v = 0; v < kVectors; ++v) acc[r][v] = TileVec{};
    // The scores of keys c0.. (K's rows) for the group's lanes, summed as tile_gemm sums them.
    tile_blocks::block_accumulate<TileVec, kKeys, kVectors, tile_blocks::AStep::kRowsContiguous>(
        D, k + c0 * ldk, ldk, 1, qT + g0, kRows, acc);
    TG_UNROLL_WHOLE
    for (int v = 0; v < kVectors; ++v) {
      float* const p0 = pT + g0 + v * kLanes;
      TileVec top = acc[0][v];
      TG_UNROLL_WHOLE
      for (int r = 1; r < kKeys; ++r) top = acc[r][v] > top ? acc[r][v] : top;
      if (any_lane_above(top, top_seen[v] + kWeightHeadroom)) {
        // The maximum moves to this block's on the lanes it passes: the weights so far, their
        // sum and (through alpha) the output accumulator scale by a = exp(m - m_new).
        const TileVec m_new = top > top_seen[v] ? top : top_seen[v];
        const TileVec a = m_new == top_seen[v] ? splat_value(1.0f) : softmax_exp(top_seen[v] - m_new);
        sum[v] *= a;
        scale[v] *= a;
        for (int64_t c = 0; c < c0; ++c) store_lanes(p0 + c * kRows, load_lanes(p0 + c * kRows) * a);
        top_seen[v] = m_new;
        shift[v] = m_new == kMinus ? TileVec{} : m_new;
        moved[v] = true;
      }
      TG_UNROLL_WHOLE
      for (int r = 0; r < kKeys; ++r) {
        const TileVec w = softmax_exp(acc[r][v] - shift[v]);
        store_lanes(p0 + (c0 + r) * kRows, w);
        sum[v] += w;
      }
    }
  }
  uint32_t strips = 0;
  TG_UNROLL_WHOLE
  for (int v = 0; v < kVectors; ++v) {
    const int64_t at = g0 + v * kLanes;
    store_lanes(l + at, fma_lanes(load_lanes(l + at), scale[v], sum[v]));
    store_lanes(m + at, top_seen[v]);
    store_lanes(alpha + at, scale[v]);
    if (moved[v]) strips |= 1u << (at / kLanes);
  }
  return strips;
}

}  // namespace

uint32_t tile_softmax_weights(int64_t D, const float* k, int64_t ldk, const float* qT, float* pT, float* m,
                              float* l, float* alpha) {
  uint32_t strips = 0;
  for (int64_t g0 = 0; g0 < kRows; g0 += kVectors * kLanes) strips |= group_weights(D, k, ldk, qT, pT, m, l, alpha, g0);
  return strips;
}

}  // namespace tg::kernels
