// FlashAttention kernels (see attention_flash.h): a tiled forward with an online softmax and a
// backward that recomputes each tile's weights from the saved log-sum-exp.
#include "ops/kernels/attention_flash.h"

#include <algorithm>
#include <cstdint>
#include <limits>
#include <type_traits>
#include <vector>

#include "ops/kernels/attention_dropout_keep.h"
#include "ops/kernels/attention_flash_tiled.h"
#include "ops/kernels/attention_tile.h"
#include "ops/kernels/blas_cpu.h"
#include "ops/kernels/gemm.h"
#include "ops/kernels/online_softmax.h"
#include "ops/kernels/parallel.h"
#include "ops/kernels/reduce_row.h"

namespace tg::kernels {
namespace {

constexpr int64_t kBr = kFlashRows, kBc = kFlashCols;

int64_t tiles(int64_t n, int64_t tile) { return (n + tile - 1) / tile; }

// What every tile of one call shares: sizes, masks, dropout, and the head pointers.
template <class T>
struct Flash {
  const AttnDims& d;
  T scale;
  const AttnMask<T>& mask;
  const AttnDropout& dropout;
  const T *q, *k, *v;
  // Row strides of q, k, v (and of their gradients): H*D, Hkv*D, Hkv*Dv when contiguous,
  // (H + 2*Hkv)*D for a packed projection (AttnDims); out and dout are contiguous, rows of
  // ldo = H*Dv.
  int64_t ldq, ldk, ldv, ldo;

  const T* qh(int64_t b, int64_t h, int64_t t) const { return q + (b * d.T + t) * ldq + h * d.D; }
  // Query head h reads kv head d.kv_head(h) (grouped-query attention: the group's heads share it).
  const T* kh(int64_t b, int64_t h, int64_t s) const { return k + (b * d.S + s) * ldk + d.kv_head(h) * d.D; }
  const T* vh(int64_t b, int64_t h, int64_t s) const { return v + (b * d.S + s) * ldv + d.kv_head(h) * d.Dv; }

  // Key tiles a query tile ending at t1 (exclusive) needs: causal stops at key t1 - 1 + offset.
  int64_t key_tiles_for(int64_t t1) const {
    return tiles(mask.causal ? std::min(d.S, t1 + mask.offset) : d.S, kBc);
  }
  // First query tile that sees key s0 (causal: query s0 - offset; none when that is >= T).
  int64_t first_query_tile(int64_t s0) const {
    return mask.causal ? std::max<int64_t>(0, s0 - mask.offset) / kBr : 0;
  }

  // True when every key of [s0, s0 + cols) is padding: the tile contributes nothing.
  bool all_padding(int64_t b, int64_t s0, int64_t cols) const {
    if (!mask.key_padding) return false;
    const bool* kp = mask.key_padding + b * d.S + s0;
    return std::all_of(kp, kp + cols, [](bool x) { return x; });
  }

  // sc [rows, kBc] = scale · Q_i K_jᵀ + mask for the tile at (t0, s0).
  void scores(int64_t b, int64_t h, int64_t t0, int64_t rows, int64_t s0, int64_t cols,
              T* sc) const {
    gemm<T>(false, true, rows, cols, d.D, scale, qh(b, h, t0), ldq, kh(b, h, s0), ldk, T(0), sc,
            kBc);
    constexpr T kNegInf = -std::numeric_limits<T>::infinity();
    if (mask.has_general()) {  // bias() covers causal and padding too
      for (int64_t r = 0; r < rows; ++r)
        for (int64_t c = 0; c < cols; ++c) sc[r * kBc + c] += mask.bias(b, h, t0 + r, s0 + c);
      return;
    }
    if (mask.key_padding) {
      const bool* kp = mask.key_padding + b * d.S + s0;
      for (int64_t r = 0; r < rows; ++r)
        for (int64_t c = 0; c < cols; ++c)
          if (kp[c]) sc[r * kBc + c] = kNegInf;
    }
    if (mask.causal && s0 + cols - 1 > t0 + mask.offset) {  // only tiles crossing the diagonal
      for (int64_t r = 0; r < rows; ++r)
        for (int64_t c = std::max<int64_t>(0, t0 + r + 1 + mask.offset - s0); c < cols; ++c)
          sc[r * kBc + c] = kNegInf;
    }
  }

  // keep [rows, kBc] = 1 / (1 - p) where dropout keeps weight (t0 + r, s0 + c), else 0.
  void dropout_tile(int64_t b, int64_t h, int64_t t0, int64_t rows, int64_t s0, int64_t cols,
                    T* keep) const {
    T sc = static_cast<T>(dropout.scale());
    uint8_t kept[kBc];
    for (int64_t r = 0; r < rows; ++r) {
      dropout_keep_run(d, dropout, b, h, t0 + r, s0, cols, kept);
      for (int64_t c = 0; c < cols; ++c) keep[r * kBc + c] = kept[c] ? sc : T(0);
    }
  }

  // Recomputes the weights of a tile from the saved lse: p = exp(score - lse) (0 for a row
  // whose keys are all masked, lse = -inf).
  void weights(int64_t b, int64_t h, int64_t t0, int64_t rows, int64_t s0, int64_t cols,
               const T* lse, T* p) const {
    scores(b, h, t0, rows, s0, cols, p);
    for (int64_t r = 0; r < rows; ++r) {
      T* row = p + r * kBc;
      T l = lse[t0 + r];
      if (l == -std::numeric_limits<T>::infinity()) {
        std::fill(row, row + cols, T(0));
        continue;
      }
      for (int64_t c = 0; c < cols; ++c) row[c] = fast_exp(row[c] - l);
    }
  }
};

// Scratch of one task: a score tile, its dropout scales, and the gradient tiles.
template <class T>
struct Scratch {
  std::vector<T> p, keep, w, ds;
  explicit Scratch(bool dropout)
      : p(size_t(kBr * kBc)),
        keep(dropout ? size_t(kBr * kBc) : 0),
        w(dropout ? size_t(kBr * kBc) : 0),
        ds(size_t(kBr * kBc)) {}
};

// Forward of one query tile of one head: online softmax over its key tiles.
template <class T>
void forward_tile(const Flash<T>& f, int64_t b, int64_t h, int64_t i, T* out, T* lse, T* sc, T* acc,
                  T* m, T* l) {
  const AttnDims& d = f.d;
  constexpr T kNegInf = -std::numeric_limits<T>::infinity();
  int64_t t0 = i * kBr, rows = std::min(kBr, d.T - t0);
  std::fill(acc, acc + rows * d.Dv, T(0));
  std::fill(m, m + rows, kNegInf);
  std::fill(l, l + rows, T(0));
  T dsc = static_cast<T>(f.dropout.scale());
  for (int64_t j = 0, nj = f.key_tiles_for(t0 + rows); j < nj; ++j) {
    int64_t s0 = j * kBc, cols = std::min(kBc, d.S - s0);
    if (f.all_padding(b, s0, cols)) continue;
    f.scores(b, h, t0, rows, s0, cols, sc);
    for (int64_t r = 0; r < rows; ++r) {
      T* row = sc + r * kBc;
      if (!online_softmax_row(row, cols, m[r], l[r], acc + r * d.Dv, d.Dv)) continue;  // nothing visible yet
      // Dropout after the softmax: the normaliser l keeps the un-dropped weights.
      if (f.dropout.active()) {
        uint8_t kept[kBc];
        dropout_keep_run(d, f.dropout, b, h, t0 + r, s0, cols, kept);
        for (int64_t c = 0; c < cols; ++c) row[c] = kept[c] ? row[c] * dsc : T(0);
      }
    }
    gemm<T>(false, false, rows, d.Dv, cols, T(1), sc, kBc, f.vh(b, h, s0), f.ldv, T(1), acc, d.Dv);
  }
  T* lh = lse + (b * d.H + h) * d.T;
  for (int64_t r = 0; r < rows; ++r)  // every key masked: zeros, as dense
    finish_softmax_row(acc + r * d.Dv, m[r], l[r], d.Dv, out + ((b * d.T + t0 + r) * d.H + h) * d.Dv, lh[t0 + r]);
}

// The gradient tiles of pair (query tile at t0, key tile at s0): s.p = P, s.w = P∘Z (dropout),
// s.ds = P∘(dP - delta) with dP = (dO Vᵀ)∘Z. Returns the tile P·Z to multiply by dO for dV.
template <class T>
const T* grad_tile(const Flash<T>& f, int64_t b, int64_t h, int64_t t0, int64_t rows, int64_t s0,
                   int64_t cols, const T* lse, const T* delta, const T* dout, Scratch<T>& s) {
  const AttnDims& d = f.d;
  f.weights(b, h, t0, rows, s0, cols, lse, s.p.data());
  const T* pz = s.p.data();
  const T* doh = dout + ((b * d.T + t0) * d.H + h) * d.Dv;
  // dW = dO_i V_jᵀ [rows, cols]
  gemm<T>(false, true, rows, cols, d.Dv, T(1), doh, f.ldo, f.vh(b, h, s0), f.ldv, T(0), s.ds.data(),
          kBc);
  if (f.dropout.active()) {
    f.dropout_tile(b, h, t0, rows, s0, cols, s.keep.data());
    for (int64_t x = 0; x < rows * kBc; ++x) s.w[size_t(x)] = s.p[size_t(x)] * s.keep[size_t(x)];
    for (int64_t x = 0; x < rows * kBc; ++x) s.ds[size_t(x)] *= s.keep[size_t(x)];
    pz = s.w.data();
  }
  for (int64_t r = 0; r < rows; ++r) {
    const T* pr = s.p.data() + r * kBc;
    T* g = s.ds.data() + r * kBc;
    T di = delta[t0 + r];
    for (int64_t c = 0; c < cols; ++c) g[c] = pr[c] * (g[c] - di);
  }
  return pz;
}

// The backward's products. For a key tile j, over its query tiles i in order:
//   dV_j += (P∘Z)ᵀ dO_i,  dK_j += scale · dSᵀ Q_i,  and (with_dq) dQ_i += scale · dS K_j;
// for a query tile i alone, over its key tiles j in order: dQ_i += scale · dS K_j.
// Either way every element of dq, dk, dv is summed over the same tiles in the same order.
template <class T>
struct Grad {
  const Flash<T>& f;
  const T *lse, *delta, *dout;
  T *dq, *dk, *dv;

  // dq, dk, dv have the row strides of q, k, v (a packed input gets a packed gradient). A null
  // one is not wanted: its products are skipped.
  T* dq_rows(int64_t b, int64_t h, int64_t t) const { return dq + (b * f.d.T + t) * f.ldq + h * f.d.D; }
  // dK and dV of the kv head query head h reads: a group's query heads add into the same rows.
  T* dk_rows(int64_t b, int64_t h, int64_t s) const { return dk + (b * f.d.S + s) * f.ldk + f.d.kv_head(h) * f.d.D; }
  T* dv_rows(int64_t b, int64_t h, int64_t s) const { return dv + (b * f.d.S + s) * f.ldv + f.d.kv_head(h) * f.d.Dv; }
  const T* dout_rows(int64_t b, int64_t h, int64_t t) const {
    return dout + ((b * f.d.T + t) * f.d.H + h) * f.d.Dv;
  }

  void zero_dq(int64_t b, int64_t h, int64_t i) const {
    if (!dq) return;
    for (int64_t t = i * kBr, t1 = std::min(f.d.T, t + kBr); t < t1; ++t)
      std::fill_n(dq_rows(b, h, t), f.d.D, T(0));
  }

  // Zeroes key tile j's rows of the dK and dV that query head h adds into.
  void zero_dkv(int64_t b, int64_t h, int64_t j) const {
    for (int64_t x = j * kBc, x1 = std::min(f.d.S, x + kBc); x < x1; ++x) {
      if (dk) std::fill_n(dk_rows(b, h, x), f.d.D, T(0));
      if (dv) std::fill_n(dv_rows(b, h, x), f.d.Dv, T(0));
    }
  }

  // Query head h's share of key tile j's dK and dV (added), and with_dq its terms of dQ.
  void key_tile(int64_t b, int64_t h, int64_t j, bool with_dq, Scratch<T>& s) const {
    const AttnDims& d = f.d;
    int64_t s0 = j * kBc, cols = std::min(kBc, d.S - s0);
    with_dq = with_dq && dq;
    if (!dk && !dv && !with_dq) return;
    if (f.all_padding(b, s0, cols)) return;
    const T* lh = lse + (b * d.H + h) * d.T;
    const T* dh = delta + (b * d.H + h) * d.T;
    for (int64_t i = f.first_query_tile(s0), nt = tiles(d.T, kBr); i < nt; ++i) {
      int64_t t0 = i * kBr, rows = std::min(kBr, d.T - t0);
      const T* pz = grad_tile(f, b, h, t0, rows, s0, cols, lh, dh, dout, s);
      if (dv)
        gemm<T>(true, false, cols, d.Dv, rows, T(1), pz, kBc, dout_rows(b, h, t0), f.ldo, T(1),
                dv_rows(b, h, s0), f.ldv);
      if (with_dq)
        gemm<T>(false, false, rows, d.D, cols, f.scale, s.ds.data(), kBc, f.kh(b, h, s0), f.ldk,
                T(1), dq_rows(b, h, t0), f.ldq);
      if (dk)
        gemm<T>(true, false, cols, d.D, rows, f.scale, s.ds.data(), kBc, f.qh(b, h, t0), f.ldq, T(1),
                dk_rows(b, h, s0), f.ldk);
    }
  }

  void query_tile(int64_t b, int64_t h, int64_t i, Scratch<T>& s) const {
    const AttnDims& d = f.d;
    if (!dq) return;
    zero_dq(b, h, i);
    const T* lh = lse + (b * d.H + h) * d.T;
    const T* dh = delta + (b * d.H + h) * d.T;
    int64_t t0 = i * kBr, rows = std::min(kBr, d.T - t0);
    for (int64_t j = 0, nj = f.key_tiles_for(t0 + rows); j < nj; ++j) {
      int64_t s0 = j * kBc, cols = std::min(kBc, d.S - s0);
      if (f.all_padding(b, s0, cols)) continue;
      grad_tile(f, b, h, t0, rows, s0, cols, lh, dh, dout, s);
      gemm<T>(false, false, rows, d.D, cols, f.scale, s.ds.data(), kBc, f.kh(b, h, s0), f.ldk, T(1),
              dq_rows(b, h, t0), f.ldq);
    }
  }
};


// The register-blocked tiles (attention_flash_tiled.h) where they apply. On 16 lanes (AVX-512
// builds) they beat these BLAS tiles on OpenBLAS's AVX-512 kernels at every head width (B1 H8
// causal, forward + backward, 2 threads, 2026-12-06: 1.75, 1.46, 1.14, 1.04× at T = 1024 and
// 1.51, 1.23, 1.11, 0.98× at T = 4096 for D = 16, 32, 64, 128). On 8 lanes they lose to that
// sgemm (the same cells at T = 4096: tiles 161, 297, 533, 1011 ms against 160, 232, 386, 773 ms)
// and are taken only where OpenBLAS runs narrower kernels, or with dropout (their vectorised
// draws).
bool use_register_tiles(const AttnDims& d, const AttnMask<float>& mask, const AttnDropout& dropout) {
  return flash_tiled_applies(d, mask) && (kTileLanes == 16 || dropout.active() || !blas_kernels_are_avx512());
}

}  // namespace

template <class T>
void flash_attention_forward(const AttnDims& d, T scale, const AttnMask<T>& mask,
                             const AttnDropout& dropout, const T* q, const T* k, const T* v, T* out,
                             T* lse) {
  if constexpr (std::is_same_v<T, float>) {
    if (use_register_tiles(d, mask, dropout)) return flash_tiled_forward(d, scale, mask, kNoBand, dropout, q, k, v, out, lse);
  }
  Flash<T> f{d, scale, mask, dropout, q, k, v, d.ldq(), d.ldk(), d.ldv(), d.H * d.Dv};
  int64_t nt = tiles(d.T, kBr), tasks = d.B * d.H * nt;
  parallel_for(0, tasks, 1, [&](int64_t lo, int64_t hi) {
    std::vector<T> sc(kBr * kBc), acc(kBr * d.Dv), m(kBr), l(kBr);
    for (int64_t x = lo; x < hi; ++x) {
      int64_t bh = x / nt;
      forward_tile(f, bh / d.H, bh % d.H, x % nt, out, lse, sc.data(), acc.data(), m.data(),
                   l.data());
    }
  });
}

template <class T>
void flash_attention_backward(const AttnDims& d, T scale, const AttnMask<T>& mask,
                              const AttnDropout& dropout, const T* q, const T* k, const T* v,
                              const T* out, const T* lse, const T* dout, T* delta, T* dq, T* dk,
                              T* dv) {
  if constexpr (std::is_same_v<T, float>) {
    if (use_register_tiles(d, mask, dropout))
      return flash_tiled_backward(d, scale, mask, kNoBand, dropout, q, k, v, out, lse, dout, delta, dq, dk, dv);
  }
  Flash<T> f{d, scale, mask, dropout, q, k, v, d.ldq(), d.ldk(), d.ldv(), d.H * d.Dv};
  // delta = rowsum(dO ∘ O), which equals rowsum(dP ∘ P) (with dropout too).
  parallel_for(0, d.B * d.H * d.T, rows_grain(2 * d.Dv), [&](int64_t lo, int64_t hi) {
    for (int64_t x = lo; x < hi; ++x) {
      int64_t t = x % d.T, bh = x / d.T;
      int64_t off = ((bh / d.H * d.T + t) * d.H + bh % d.H) * d.Dv;
      delta[x] = lane_sum<T>(d.Dv, [&](int64_t e) { return dout[off + e] * out[off + e]; });
    }
  });
  int64_t nt = tiles(d.T, kBr), ns = tiles(d.S, kBc), heads = d.B * d.H;
  // A kv head and the group of query heads that read it (grouped-query attention; a group of one
  // without): its dK and dV are summed over the group's heads in order.
  const int64_t group = d.H / d.kv_heads(), kv_heads = d.B * d.kv_heads();
  Grad<T> g{f, lse, delta, dout, dq, dk, dv};
  // With a kv head per thread or more, one task per kv head does 5 GEMMs per tile pair. With
  // fewer than threads, two passes parallel over tiles: key tiles (dK, dV), then query tiles
  // (dQ), which recomputes the scores and dO Vᵀ (7 GEMMs per pair) but uses every thread.
  // Both sum each element over the same tiles in the same order: the same bits either way.
  if (kv_heads >= get_num_threads()) {
    parallel_for(0, kv_heads, 1, [&](int64_t lo, int64_t hi) {
      Scratch<T> s(dropout.active());
      for (int64_t bg = lo; bg < hi; ++bg) {
        const int64_t b = bg / d.kv_heads(), h0 = bg % d.kv_heads() * group;
        for (int64_t j = 0; j < ns; ++j) g.zero_dkv(b, h0, j);
        for (int64_t h = h0; h < h0 + group; ++h) {
          for (int64_t i = 0; i < nt; ++i) g.zero_dq(b, h, i);
          for (int64_t j = 0; j < ns; ++j) g.key_tile(b, h, j, true, s);
        }
      }
    });
    return;
  }
  parallel_for(0, kv_heads * ns, 1, [&](int64_t lo, int64_t hi) {
    Scratch<T> s(dropout.active());
    for (int64_t x = lo; x < hi; ++x) {
      const int64_t b = x / ns / d.kv_heads(), h0 = x / ns % d.kv_heads() * group, j = x % ns;
      g.zero_dkv(b, h0, j);
      for (int64_t h = h0; h < h0 + group; ++h) g.key_tile(b, h, j, false, s);
    }
  });
  parallel_for(0, heads * nt, 1, [&](int64_t lo, int64_t hi) {
    Scratch<T> s(dropout.active());
    for (int64_t x = lo; x < hi; ++x) g.query_tile(x / nt / d.H, x / nt % d.H, x % nt, s);
  });
}

#define TG_INSTANTIATE(T)                                                                        \
  template void flash_attention_forward<T>(const AttnDims&, T, const AttnMask<T>&,               \
                                           const AttnDropout&, const T*, const T*, const T*, T*, \
                                           T*);                                                  \
  template void flash_attention_backward<T>(const AttnDims&, T, const AttnMask<T>&,              \
                                            const AttnDropout&, const T*, const T*, const T*,    \
                                            const T*, const T*, const T*, T*, T*, T*, T*);
TG_INSTANTIATE(float)
TG_INSTANTIATE(double)
#undef TG_INSTANTIATE

}  // namespace tg::kernels
