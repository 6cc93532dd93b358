#pragma once
// What every attention kernel needs to know about masking and dropout, on raw pointers.
#include <cmath>
#include <cstdint>
#include <limits>

#include "ops/kernels/parallel.h"
#include "ops/kernels/philox.h"

namespace tg::kernels {

/// Sizes of one attention problem. q [B, T, H, D], k [B, S, H, D], v [B, S, H, Dv]: row t of
/// head h in batch b of q starts at (b * T + t) * q_row + h * D (k and v alike, with S).
/// The row strides are 0 for contiguous tensors (H * D, H * Dv); the packed layout
/// [B, T, 3, H, D] of a fused q/k/v projection has 3 * H * D for all three (attention_qkv).
/// Every kernel reads q, k, v (and writes their gradients) with these row strides.
/// query_offset places the queries within the keys: query t sits at key position
/// query_offset + t, so causal means s <= query_offset + t (cached decoding: the new queries
/// follow the cached keys). 0 is top-left aligned, as PyTorch's is_causal.
/// Hkv: grouped-query attention, k and v with Hkv heads (0: H), query head h reading kv head
/// h / (H / Hkv). Dense, flash and the register tiles read it; each variant's op repeats the kv
/// heads for its other kernels (detail::attention_repeating_kv_heads).
struct AttnDims {
  int64_t B = 0, T = 0, S = 0, H = 0, D = 0, Dv = 0;
  int64_t q_row = 0, k_row = 0, v_row = 0;
  int64_t query_offset = 0;
  int64_t Hkv = 0;

  int64_t kv_heads() const { return Hkv ? Hkv : H; }
  /// The kv head query head h reads.
  int64_t kv_head(int64_t h) const { return h / (H / kv_heads()); }
  int64_t ldq() const { return q_row ? q_row : H * D; }
  int64_t ldk() const { return k_row ? k_row : kv_heads() * D; }
  int64_t ldv() const { return v_row ? v_row : kv_heads() * Dv; }
  bool contiguous() const { return q_row == 0 && k_row == 0 && v_row == 0; }
};

/// Runs fn(b, h) for h < heads of every batch row b < B: in parallel over them (each head's GEMMs
/// whole on its thread) when there are enough of them to keep the cores busy, else one after
/// another with each GEMM split over the threads. Each head's arithmetic is the same either way.
template <class F>
void for_each_head_of(int64_t B, int64_t heads, F&& fn) {
  const int64_t n = B * heads;
  if (n >= get_num_threads() && get_num_threads() > 1) {
    parallel_for(0, n, 1, [&](int64_t lo, int64_t hi) {
      for (int64_t i = lo; i < hi; ++i) fn(i / heads, i % heads);
    });
  } else {
    for (int64_t i = 0; i < n; ++i) fn(i / heads, i % heads);
  }
}

/// fn(b, h) for every query head.
template <class F>
void for_each_head(const AttnDims& d, F&& fn) {
  for_each_head_of(d.B, d.H, fn);
}

/// fn(b, g) for every kv head (grouped-query attention's backward: a group's query heads on one
/// thread).
template <class F>
void for_each_kv_head(const AttnDims& d, F&& fn) {
  for_each_head_of(d.B, d.kv_heads(), fn);
}

/// Masks combined: causal, key padding [B, S], and a general mask broadcast to [B, H, T, S]
/// by strides (0 along broadcast axes).
template <class T>
struct AttnMask {
  bool causal = false;
  int64_t offset = 0;                 ///< causal: query t sees keys s <= t + offset
  const bool* key_padding = nullptr;  ///< [B, S], true = padding
  int64_t S = 0;
  const bool* allow = nullptr;        ///< general b8 mask, true = may attend
  const T* additive = nullptr;        ///< general additive mask
  int64_t sb = 0, sh = 0, st = 0, ss = 0;

  bool has_general() const { return allow || additive; }

  /// The bias for score (b, h, t, s): 0, an additive value, or -inf when masked.
  T bias(int64_t b, int64_t h, int64_t t, int64_t s) const {
    constexpr T kNegInf = -std::numeric_limits<T>::infinity();
    if (causal && s > t + offset) return kNegInf;
    if (key_padding && key_padding[b * S + s]) return kNegInf;
    int64_t m = b * sb + h * sh + t * st + s * ss;
    if (allow && !allow[m]) return kNegInf;
    if (additive) return additive[m];
    return T(0);
  }
};

/// Dropout on attention weights: whether weight (b, h, t, s) is kept. Keyed by the flat index
/// of [B, H, T, S] so every variant drops the same weights for the same (seed, offset).
struct AttnDropout {
  double p = 0.0;
  uint64_t seed = 0, offset = 0;

  bool active() const { return p > 0.0; }
  double scale() const { return p < 1.0 ? 1.0 / (1.0 - p) : 0.0; }
  bool keep(const AttnDims& d, int64_t b, int64_t h, int64_t t, int64_t s) const {
    uint64_t i = static_cast<uint64_t>(((b * d.H + h) * d.T + t) * d.S + s);
    return philox_uniform<double>(seed, offset, i) >= p;
  }
  /// Philox blocks one attention call reserves.
  static uint64_t blocks(const AttnDims& d) {
    return philox_uniform_blocks(static_cast<uint64_t>(d.B * d.H * d.T * d.S));
  }
};

}  // namespace tg::kernels
