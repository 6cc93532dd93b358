#include "ops/kernels/attention_dense.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <memory>
#include <vector>

#include "ops/kernels/attention_dropout_keep.h"
#include "ops/kernels/gemm.h"
#include "ops/kernels/parallel.h"
#include "ops/kernels/reduce_row.h"

namespace tg::kernels {
namespace {

// Causal attention never looks past the diagonal (key s > query t is masked), so rows
// [t0, t0 + block) need only keys [0, t0 + block): the GEMMs of a causal head skip the blocks
// above the diagonal, about (1 - 1/n)/2 of the work for n row blocks. Short heads use blocks of
// 32 rows: at T = 64 (the baby GPT) one block of 64 skipped nothing; two of 32 skip a quarter,
// and fwd + bwd of [12, 64, 4, 32] took 1.70 instead of 2.08 ms (one thread, CPU time). Longer
// heads keep 64-row blocks, whose GEMMs run closer to sgemm's peak.
constexpr int64_t kCausalRowBlock = 64;
constexpr int64_t kShortCausalRowBlock = 32;
constexpr int64_t kShortHead = 128;  // T at most this: kShortCausalRowBlock

// The row blocks of a head: one block of all T rows, or causal row blocks (above).
struct RowBlocks {
  bool causal;
  int64_t S, offset, step;
  RowBlocks(const AttnDims& d, bool c)
      : causal(c),
        S(d.S),
        offset(d.query_offset),
        step(!c ? std::max<int64_t>(d.T, 1) : d.T <= kShortHead ? kShortCausalRowBlock : kCausalRowBlock) {}
  /// Rows [t0, t1) see keys [0, cols(t1)) (query t sits at key position offset + t).
  int64_t cols(int64_t t1) const { return causal ? std::min(S, t1 + offset) : S; }
};

// Softmax of row[0, n) in place after adding the mask; zero from n to S (keys the causal blocks
// skip). A row with every key masked becomes zeros.
template <class T>
void masked_softmax_row(const AttnMask<T>& mask, bool general, int64_t b, int64_t h, int64_t t,
                        int64_t n, int64_t S, T* row) {
  if (mask.causal) n = std::min(n, t + 1 + mask.offset);  // the rest is masked: exp(-inf) = 0
  std::fill(row + n, row + S, T(0));
  if (general)
    for (int64_t s = 0; s < n; ++s) row[s] += mask.bias(b, h, t, s);
  const T mx = row_max(row, n);
  if (mx == -std::numeric_limits<T>::infinity()) {
    std::fill(row, row + n, T(0));
    return;
  }
  const T sum = lane_sum<T>(n, [&](int64_t s) { return row[s] = fast_exp(row[s] - mx); });
  const T inv = T(1) / sum;
  for (int64_t s = 0; s < n; ++s) row[s] *= inv;
}

// w[t, s] = p[t, s] * keep(b, h, t, s) / (1 - p) for rows [t0, t1), keys [0, n): the weights
// after dropout (leading dimension S).
template <class T>
void apply_dropout(const AttnDims& d, const AttnDropout& dropout, int64_t b, int64_t h, int64_t t0,
                   int64_t t1, int64_t n, const T* p, T* w) {
  const T sc = static_cast<T>(dropout.scale());
  std::vector<uint8_t> keep(static_cast<size_t>(n));
  for (int64_t t = t0; t < t1; ++t) {
    dropout_keep_run(d, dropout, b, h, t, 0, n, keep.data());
    for (int64_t s = 0; s < n; ++s) w[t * d.S + s] = keep[size_t(s)] ? p[t * d.S + s] * sc : T(0);
  }
}

}  // namespace

template <class T>
void dense_attention_forward(const AttnDims& d, T scale, const AttnMask<T>& mask,
                             const AttnDropout& dropout, const T* q, const T* k, const T* v,
                             T* out, T* weights) {
  // Only key padding and general masks need the per-score bias; causal is handled by the row
  // length (and by skipping the blocks above the diagonal).
  const bool general = mask.key_padding || mask.has_general();
  const RowBlocks blocks(d, mask.causal);
  const int64_t ldq = d.ldq(), ldk = d.ldk(), ldv = d.ldv(), ldo = d.H * d.Dv;
  for_each_head(d, [&](int64_t b, int64_t h) {
    const T* qh = q + b * d.T * ldq + h * d.D;  // rows of stride ldq (H*D when contiguous)
    const T* kh = k + b * d.S * ldk + d.kv_head(h) * d.D;
    const T* vh = v + b * d.S * ldv + d.kv_head(h) * d.Dv;
    T* oh = out + (b * d.T * d.H + h) * d.Dv;    // out is contiguous: rows of stride H*Dv
    T* p = weights + (b * d.H + h) * d.T * d.S;    // [T, S]
    std::vector<T> dropped;
    if (dropout.active()) dropped.resize(static_cast<size_t>(d.T * d.S));
    for (int64_t t0 = 0; t0 < d.T; t0 += blocks.step) {
      const int64_t t1 = std::min(d.T, t0 + blocks.step), n = blocks.cols(t1);
      gemm<T>(false, true, t1 - t0, n, d.D, scale, qh + t0 * ldq, ldq, kh, ldk, T(0), p + t0 * d.S, d.S);
      for (int64_t t = t0; t < t1; ++t) masked_softmax_row(mask, general, b, h, t, n, d.S, p + t * d.S);
      const T* w = p;
      if (dropout.active()) {
        apply_dropout(d, dropout, b, h, t0, t1, n, p, dropped.data());
        w = dropped.data();
      }
      gemm<T>(false, false, t1 - t0, d.Dv, n, T(1), w + t0 * d.S, d.S, vh, ldv, T(0), oh + t0 * ldo, ldo);
    }
  });
}

template <class T>
void dense_attention_backward(const AttnDims& d, T scale, bool causal, const AttnDropout& dropout,
                              const T* q, const T* k, const T* v, const T* weights, const T* dout,
                              T* dq, T* dk, T* dv) {
  const RowBlocks blocks(d, causal);
  // dq, dk, dv have the row strides of q, k, v; dout is contiguous like out.
  const int64_t ldq = d.ldq(), ldk = d.ldk(), ldv = d.ldv(), ldo = d.H * d.Dv;
  // Head h of batch row b; `add_to_kv`: its kv head's gradients hold another query head's
  // already (grouped-query attention), so this head adds to them instead of writing them.
  auto head = [&](int64_t b, int64_t h, bool add_to_kv) {
    const T* qh = q + b * d.T * ldq + h * d.D;
    const T* kh = k + b * d.S * ldk + d.kv_head(h) * d.D;
    const T* vh = v + b * d.S * ldv + d.kv_head(h) * d.Dv;
    const T* doh = dout + (b * d.T * d.H + h) * d.Dv;
    // A null gradient is not wanted: its products are skipped.
    T* dqh = dq ? dq + b * d.T * ldq + h * d.D : nullptr;
    T* dkh = dk ? dk + b * d.S * ldk + d.kv_head(h) * d.D : nullptr;
    T* dvh = dv ? dv + b * d.S * ldv + d.kv_head(h) * d.Dv : nullptr;
    const bool need_ds = dqh || dkh;  // the score gradients serve dQ and dK
    const T* p = weights + (b * d.H + h) * d.T * d.S;
    // dW, then dS: only the keys [0, n) of each row block are written and read, so the buffer is
    // left uninitialised (zeroing [T, S] for every head cost more than the softmax's backward).
    std::unique_ptr<T[]> dp = std::make_unique_for_overwrite<T[]>(static_cast<size_t>(d.T * d.S));
    std::vector<T> w(dropout.active() ? static_cast<size_t>(d.T * d.S) : 0);
    std::vector<uint8_t> keep(dropout.active() ? static_cast<size_t>(d.S) : 0);
    // The last row block sees every key it reaches: it writes dK and dV (beta 0), the others add
    // into them. Keys no query reaches (no queries, or S > T causal) get zero gradients.
    const int64_t reached = d.T == 0 ? 0 : blocks.cols(d.T);
    for (int64_t s = reached; s < d.S && !add_to_kv; ++s) {
      if (dkh) std::fill(dkh + s * ldk, dkh + s * ldk + d.D, T(0));
      if (dvh) std::fill(dvh + s * ldv, dvh + s * ldv + d.Dv, T(0));
    }
    if (d.T == 0) return;
    const int64_t last = (d.T - 1) / blocks.step * blocks.step;
    for (int64_t t0 = last; t0 >= 0; t0 -= blocks.step) {
      const int64_t t1 = std::min(d.T, t0 + blocks.step), n = blocks.cols(t1), rows = t1 - t0;
      const T beta = t0 == last && !add_to_kv ? T(0) : T(1);
      T* g = dp.get() + t0 * d.S;  // dW, then dS, of rows [t0, t1)
      // dW = dO Vᵀ [rows, n]; dV += Wᵀ dO with W the weights after dropout.
      if (need_ds) gemm<T>(false, true, rows, n, d.Dv, T(1), doh + t0 * ldo, ldo, vh, ldv, T(0), g, d.S);
      const T* pw = p;
      if (dropout.active()) {
        // W = P · keep / (1 - p) for dV, and through dropout dP = dW · keep / (1 - p): one keep
        // row serves both.
        const T sc = static_cast<T>(dropout.scale());
        for (int64_t t = t0; t < t1; ++t) {
          dropout_keep_run(d, dropout, b, h, t, 0, n, keep.data());
          T* wr = w.data() + t * d.S;
          T* gr = dp.get() + t * d.S;
          const T* pr = p + t * d.S;
          for (int64_t s = 0; s < n; ++s) {
            wr[s] = keep[size_t(s)] ? pr[s] * sc : T(0);
            if (need_ds) gr[s] = keep[size_t(s)] ? gr[s] * sc : T(0);
          }
        }
        pw = w.data();
      }
      if (dvh) gemm<T>(true, false, n, d.Dv, rows, T(1), pw + t0 * d.S, d.S, doh + t0 * ldo, ldo, beta, dvh, ldv);
      if (!need_ds) continue;
      // Through softmax, row by row: dS = P ∘ (dP - sum(dP ∘ P)).
      for (int64_t t = t0; t < t1; ++t) {
        const T* pr = p + t * d.S;
        T* gr = dp.get() + t * d.S;
        const T dot = lane_sum<T>(n, [&](int64_t s) { return gr[s] * pr[s]; });
        for (int64_t s = 0; s < n; ++s) gr[s] = pr[s] * (gr[s] - dot);
      }
      // dQ = scale · dS K, dK += scale · dSᵀ Q.
      if (dqh) gemm<T>(false, false, rows, d.D, n, scale, g, d.S, kh, ldk, T(0), dqh + t0 * ldq, ldq);
      if (dkh) gemm<T>(true, false, n, d.D, rows, scale, g, d.S, qh + t0 * ldq, ldq, beta, dkh, ldk);
    }
  };
  if (d.kv_heads() == d.H) {
    for_each_head(d, [&](int64_t b, int64_t h) { head(b, h, false); });
    return;
  }
  // Grouped-query attention: the query heads of one kv head run one after another on one thread,
  // the first writing its kv head's gradients and the others adding to them.
  const int64_t group = d.H / d.kv_heads();
  for_each_kv_head(d, [&](int64_t b, int64_t g) {
    for (int64_t i = 0; i < group; ++i) head(b, g * group + i, i > 0);
  });
}

#define TG_INSTANTIATE(T)                                                                        \
  template void dense_attention_forward<T>(const AttnDims&, T, const AttnMask<T>&,               \
                                           const AttnDropout&, const T*, const T*, const T*, T*, \
                                           T*);                                                  \
  template void dense_attention_backward<T>(const AttnDims&, T, bool, const AttnDropout&,        \
                                            const T*, const T*, const T*, const T*, const T*, T*, \
                                            T*, T*);
TG_INSTANTIATE(float)
TG_INSTANTIATE(double)
#undef TG_INSTANTIATE

}  // namespace tg::kernels
