#pragma once
// The register block of the tile products: RB rows by NV vectors of accumulators, kept in
// registers over the whole K loop. tile_gemm (attention_tile.cpp) loads and stores its blocks
// around it; tile_softmax_weights (attention_tile_weights.cpp) turns its blocks of scores into
// weights while they are still in registers.
#include <cstdint>
#include <cstring>

#include "ops/kernels/attention_tile.h"
#include "ops/kernels/unroll.h"

namespace tg::kernels::tile_blocks {

// The products' vectors: V is TileVec (kTileLanes lanes) or, on AVX-512, HalfVec (8 lanes, a
// strip of N = 8 left over by the 16-lane strips: head widths 8, 24, 40, ...).
template <class V>
constexpr int64_t lanes_of = int64_t(sizeof(V) / sizeof(float));

template <class V>
V load_v(const float* p) {
  V v;
  std::memcpy(&v, p, sizeof v);
  return v;
}

template <class V>
void store_v(float* p, V v) {
  std::memcpy(p, &v, sizeof v);
}

inline TileVec splat_v(float x, TileVec) { return splat_value(x); }
inline TileVec fma_v(TileVec a, TileVec b, TileVec c) { return fma_lanes(a, b, c); }

#if defined(__AVX512F__)
using HalfVec = float __attribute__((vector_size(32)));
inline HalfVec splat_v(float x, HalfVec) { return _mm256_set1_ps(x); }
inline HalfVec fma_v(HalfVec a, HalfVec b, HalfVec c) { return _mm256_fmadd_ps(a, b, c); }
#endif

// How A is read: kRowsContiguous when a_ks == 1 (A(m, k) = row_m[k]: one base per row, indexed
// by k), kColumnsContiguous when a_ms == 1 (A(m, k) = col_k[m]: one pointer stepping over k),
// else kStrided (a pointer per row, each stepping by a_ks). The first two keep the loop's
// integer work to one counter, which matters when a block does only 12 FMAs per step.
enum class AStep { kRowsContiguous, kColumnsContiguous, kStrided };

// acc[m][v] += Σ_k A(m, k) · B[k, v · lanes ..] for k < K in order: A(m, k) = a[m * a_ms + k * a_ks]
// read per Step, B's rows b (stride ldb). Every loop over the block's rows and vectors is unrolled
// whole (TG_UNROLL_WHOLE), so that acc is RB * NV registers.
template <class V, int RB, int NV, AStep Step>
inline void block_accumulate(int64_t K, const float* a, int64_t a_ms, int64_t a_ks, const float* b, int64_t ldb,
                             V (&acc)[RB][NV]) {
  constexpr int64_t L = lanes_of<V>;
  const float* am[RB];
  TG_UNROLL_WHOLE
  for (int m = 0; m < RB; ++m) am[m] = a + m * a_ms;
  for (int64_t k = 0; k < K; ++k) {
    V bv[NV];
    TG_UNROLL_WHOLE
    for (int v = 0; v < NV; ++v) bv[v] = load_v<V>(b + k * ldb + v * L);
    TG_UNROLL_WHOLE
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
      const V xv = splat_v(x, V{});
      TG_UNROLL_WHOLE
      for (int v = 0; v < NV; ++v) acc[m][v] = fma_v(xv, bv[v], acc[m][v]);
    }
  }
}

}  // namespace tg::kernels::tile_blocks
