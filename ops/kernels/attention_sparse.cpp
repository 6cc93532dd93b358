#include "ops/kernels/attention_sparse.h"

#include <algorithm>
#include <cstdint>
#include <limits>
#include <vector>

#include "ops/kernels/attention_dropout_keep.h"
#include "ops/kernels/gemm.h"
#include "ops/kernels/parallel.h"
#include "ops/kernels/reduce_row.h"

namespace tg::kernels {
namespace {

// Runs fn(task) for tasks [0, n) in parallel, each GEMM whole on its thread; serially when the
// whole job is too small to pay for tasks. Each task writes its own outputs, so the split does
// not change any result.
template <class F>
void for_each_task(int64_t n, int64_t total_flops, F&& fn) {
  int64_t grain = total_flops < (int64_t(1) << 21) ? n : 1;
  parallel_for(0, n, grain, [&](int64_t lo, int64_t hi) {
    for (int64_t i = lo; i < hi; ++i) fn(i);
  });
}

// Sets rows [0, rows) of width `width` (row stride ld) to zero.
template <class T>
void zero_rows(T* p, int64_t rows, int64_t width, int64_t ld) {
  for (int64_t r = 0; r < rows; ++r) std::fill(p + r * ld, p + r * ld + width, T(0));
}

// One query row's scores over its ranges -> softmax weights in place. Keys outside the
// visible interval [a, e) (band and causal) or marked as padding get weight 0; a row that sees
// no key becomes zeros.
template <class T>
void masked_softmax_row(const int64_t* lo, const int64_t* hi, int64_t nranges, int64_t a, int64_t e,
                        const bool* padding, int64_t width, T* row) {
  constexpr T kNegInf = -std::numeric_limits<T>::infinity();
  T* x = row;
  for (int64_t r = 0; r < nranges; ++r) {
    int64_t len = hi[r] - lo[r];
    int64_t vis_lo = std::clamp(a, lo[r], hi[r]) - lo[r];  // visible columns [vis_lo, vis_hi)
    int64_t vis_hi = std::clamp(e, lo[r] + vis_lo, hi[r]) - lo[r];
    std::fill(x, x + vis_lo, kNegInf);
    std::fill(x + vis_hi, x + len, kNegInf);
    if (padding)
      for (int64_t c = vis_lo; c < vis_hi; ++c)
        if (padding[lo[r] + c]) x[c] = kNegInf;
    x += len;
  }
  T mx = row_max(row, width);
  if (mx == kNegInf) {
    std::fill(row, row + width, T(0));
    return;
  }
  T sum = lane_sum<T>(width, [&](int64_t c) {
    T ex = fast_exp(row[c] - mx);
    row[c] = ex;
    return ex;
  });
  T inv = T(1) / sum;
  for (int64_t c = 0; c < width; ++c) row[c] *= inv;
}

// keep [width]: the dropout draws of query t over its block-row's key ranges, in column order.
void keep_over_ranges(const AttnDims& d, const AttnDropout& dropout, int64_t b, int64_t h, int64_t t,
                      const int64_t* lo, const int64_t* hi, int64_t nranges, uint8_t* keep) {
  for (int64_t r = 0, col = 0; r < nranges; col += hi[r] - lo[r], ++r)
    dropout_keep_run(d, dropout, b, h, t, lo[r], hi[r] - lo[r], keep + col);
}

// A piece of a block-row's matrix that lands in one key block: columns [col, col + n) of
// block-row `row`, keys [s, s + n).
struct Piece {
  int64_t row, col, s, n;
};

// For each key block of `block` keys, the pieces of the block-rows that see it, in row order.
std::vector<std::vector<Piece>> pieces_by_key_block(const KeyRanges& kr, int64_t block) {
  std::vector<std::vector<Piece>> out(static_cast<size_t>((kr.S + block - 1) / block));
  for (int64_t i = 0; i < kr.rows(); ++i) {
    int64_t col = 0;
    for (int64_t r = kr.row_start[size_t(i)]; r < kr.row_start[size_t(i) + 1]; ++r) {
      int64_t lo = kr.lo[size_t(r)], hi = kr.hi[size_t(r)];
      for (int64_t s = lo; s < hi;) {
        int64_t end = std::min(hi, (s / block + 1) * block);
        out[size_t(s / block)].push_back({i, col + (s - lo), s, end - s});
        s = end;
      }
      col += hi - lo;
    }
  }
  return out;
}

}  // namespace

template <class T>
void block_sparse_attention_forward(const AttnDims& d, T scale, const AttnMask<T>& mask,
                                    const AttnBand& band, const KeyRanges& kr,
                                    const AttnDropout& dropout, const T* q, const T* k, const T* v,
                                    T* out, T* weights) {
  const int64_t rows = kr.rows(), per_head = kr.per_head();
  // Row strides of q, k, v (AttnDims: packed or contiguous); out is contiguous.
  const int64_t ldq = d.ldq(), ldk = d.ldk(), ldv = d.ldv(), ldo = d.H * d.Dv;
  const T drop_scale = static_cast<T>(dropout.scale());
  int64_t flops = 2 * d.B * d.H * per_head * (d.D + d.Dv);

  for_each_task(d.B * d.H * rows, flops, [&](int64_t task) {
    const int64_t b = task / (d.H * rows), h = task / rows % d.H, i = task % rows;
    const int64_t t0 = i * kr.block, n = kr.row_size(i), w = kr.width[size_t(i)];
    const int64_t r0 = kr.row_start[size_t(i)], nr = kr.row_start[size_t(i) + 1] - r0;
    const int64_t* lo = kr.lo.data() + r0;
    const int64_t* hi = kr.hi.data() + r0;
    T* oh = out + ((b * d.T + t0) * d.H + h) * d.Dv;  // [n, Dv], row stride H*Dv
    if (w == 0) {
      zero_rows(oh, n, d.Dv, ldo);
      return;
    }
    const T* qh = q + (b * d.T + t0) * ldq + h * d.D;
    T* p = weights + (b * d.H + h) * per_head + kr.offset[size_t(i)];  // [n, w]
    // Scores: one GEMM per key range, side by side in p.
    for (int64_t r = 0, col = 0; r < nr; col += hi[r] - lo[r], ++r)
      gemm<T>(false, true, n, hi[r] - lo[r], d.D, scale, qh, ldq,
              k + (b * d.S + lo[r]) * ldk + h * d.D, ldk, T(0), p + col, w);
    const bool* padding = mask.key_padding ? mask.key_padding + b * d.S : nullptr;
    for (int64_t rr = 0; rr < n; ++rr) {
      int64_t t = t0 + rr;
      int64_t a = std::max<int64_t>(0, t - band.left);
      int64_t e = std::min(d.S, t + band.right + 1);
      if (mask.causal) e = std::min(e, t + 1 + mask.offset);
      masked_softmax_row(lo, hi, nr, a, e, padding, w, p + rr * w);
    }
    const T* pw = p;
    std::vector<T> dropped;
    if (dropout.active()) {
      dropped.resize(static_cast<size_t>(n * w));
      std::vector<uint8_t> keep(static_cast<size_t>(w));
      for (int64_t rr = 0; rr < n; ++rr) {
        keep_over_ranges(d, dropout, b, h, t0 + rr, lo, hi, nr, keep.data());
        for (int64_t c = 0; c < w; ++c)
          dropped[size_t(rr * w + c)] = keep[size_t(c)] ? p[rr * w + c] * drop_scale : T(0);
      }
      pw = dropped.data();
    }
    // out = W V over the ranges, accumulated range by range.
    for (int64_t r = 0, col = 0; r < nr; col += hi[r] - lo[r], ++r)
      gemm<T>(false, false, n, d.Dv, hi[r] - lo[r], T(1), pw + col, w,
              v + (b * d.S + lo[r]) * ldv + h * d.Dv, ldv, r == 0 ? T(0) : T(1), oh, ldo);
  });
}

template <class T>
void block_sparse_attention_backward(const AttnDims& d, T scale, const AttnDropout& dropout,
                                     const KeyRanges& kr, const T* q, const T* k, const T* v,
                                     const T* weights, const T* dout, T* dq, T* dk, T* dv, T* ds,
                                     T* dropped) {
  const int64_t rows = kr.rows(), per_head = kr.per_head();
  // dq, dk, dv have the row strides of q, k, v (AttnDims); dout is contiguous.
  const int64_t ldq = d.ldq(), ldk = d.ldk(), ldv = d.ldv(), ldo = d.H * d.Dv;
  const T drop_scale = static_cast<T>(dropout.scale());
  int64_t flops = 2 * d.B * d.H * per_head * (d.D + d.Dv);

  // Phase 1, per block-row: dW = dO Vᵀ, dS = P ∘ (dP - rowsum(dP ∘ P)), dQ = scale · dS K.
  for_each_task(d.B * d.H * rows, flops, [&](int64_t task) {
    const int64_t b = task / (d.H * rows), h = task / rows % d.H, i = task % rows;
    const int64_t t0 = i * kr.block, n = kr.row_size(i), w = kr.width[size_t(i)];
    const int64_t r0 = kr.row_start[size_t(i)], nr = kr.row_start[size_t(i) + 1] - r0;
    const int64_t* lo = kr.lo.data() + r0;
    const int64_t* hi = kr.hi.data() + r0;
    T* dqh = dq ? dq + (b * d.T + t0) * ldq + h * d.D : nullptr;  // null: dQ not wanted
    if (w == 0) {
      if (dqh) zero_rows(dqh, n, d.D, ldq);
      return;
    }
    const T* doh = dout + ((b * d.T + t0) * d.H + h) * d.Dv;
    const int64_t at = (b * d.H + h) * per_head + kr.offset[size_t(i)];
    const T* p = weights + at;  // [n, w]
    T* gs = ds + at;            // [n, w]: dW, then dP, then dS
    for (int64_t r = 0, col = 0; r < nr; col += hi[r] - lo[r], ++r)
      gemm<T>(false, true, n, hi[r] - lo[r], d.Dv, T(1), doh, ldo,
              v + (b * d.S + lo[r]) * ldv + h * d.Dv, ldv, T(0), gs + col, w);
    if (dropout.active()) {
      // Through dropout: dP = dW · keep / (1 - p); W = P · keep / (1 - p) for dV. Where P is 0
      // both are 0 and so is dS, so the draw is skipped.
      T* wd = dropped + at;
      std::vector<uint8_t> keep(static_cast<size_t>(w));
      for (int64_t rr = 0; rr < n; ++rr) {
        keep_over_ranges(d, dropout, b, h, t0 + rr, lo, hi, nr, keep.data());
        for (int64_t c = rr * w; c < (rr + 1) * w; ++c) {
          bool kept = keep[size_t(c - rr * w)] && p[c] != T(0);
          gs[c] = kept ? gs[c] * drop_scale : T(0);
          wd[c] = kept ? p[c] * drop_scale : T(0);
        }
      }
    }
    for (int64_t rr = 0; rr < n; ++rr) {
      const T* pr = p + rr * w;
      T* gr = gs + rr * w;
      T dot = lane_sum<T>(w, [&](int64_t c) { return gr[c] * pr[c]; });
      for (int64_t c = 0; c < w; ++c) gr[c] = pr[c] * (gr[c] - dot);
    }
    if (!dqh) return;
    for (int64_t r = 0, col = 0; r < nr; col += hi[r] - lo[r], ++r)
      gemm<T>(false, false, n, d.D, hi[r] - lo[r], scale, gs + col, w,
              k + (b * d.S + lo[r]) * ldk + h * d.D, ldk, r == 0 ? T(0) : T(1), dqh, ldq);
  });

  // Phase 2, per key block: dK = scale · dSᵀ Q and dV = Wᵀ dO, summed over the block-rows that
  // see the block, in row order.
  const int64_t kb = kr.block;
  const std::vector<std::vector<Piece>> pieces = pieces_by_key_block(kr, kb);
  const int64_t nkb = static_cast<int64_t>(pieces.size());
  const T* wsrc = dropout.active() ? dropped : weights;
  if (!dk && !dv) return;
  for_each_task(d.B * d.H * nkb, flops, [&](int64_t task) {
    const int64_t b = task / (d.H * nkb), h = task / nkb % d.H, j = task % nkb;
    const int64_t s0 = j * kb, ns = std::min(kb, d.S - s0);
    T* dkh = dk ? dk + (b * d.S + s0) * ldk + h * d.D : nullptr;  // null: not wanted
    T* dvh = dv ? dv + (b * d.S + s0) * ldv + h * d.Dv : nullptr;
    if (dkh) zero_rows(dkh, ns, d.D, ldk);
    if (dvh) zero_rows(dvh, ns, d.Dv, ldv);
    for (const Piece& pc : pieces[size_t(j)]) {
      const int64_t t0 = pc.row * kr.block, n = kr.row_size(pc.row), w = kr.width[size_t(pc.row)];
      const int64_t at = (b * d.H + h) * per_head + kr.offset[size_t(pc.row)] + pc.col;
      const int64_t ko = pc.s - s0;  // the piece's first key, in rows of the block
      if (dkh)
        gemm<T>(true, false, pc.n, d.D, n, scale, ds + at, w, q + (b * d.T + t0) * ldq + h * d.D,
                ldq, T(1), dkh + ko * ldk, ldk);
      if (dvh)
        gemm<T>(true, false, pc.n, d.Dv, n, T(1), wsrc + at, w,
                dout + ((b * d.T + t0) * d.H + h) * d.Dv, ldo, T(1), dvh + ko * ldv, ldv);
    }
  });
}

#define TG_INSTANTIATE(T)                                                                          \
  template void block_sparse_attention_forward<T>(                                                 \
      const AttnDims&, T, const AttnMask<T>&, const AttnBand&, const KeyRanges&,                   \
      const AttnDropout&, const T*, const T*, const T*, T*, T*);                                   \
  template void block_sparse_attention_backward<T>(const AttnDims&, T, const AttnDropout&,         \
                                                   const KeyRanges&, const T*, const T*, const T*, \
                                                   const T*, const T*, T*, T*, T*, T*, T*);
TG_INSTANTIATE(float)
TG_INSTANTIATE(double)
#undef TG_INSTANTIATE

}  // namespace tg::kernels
