#include "ops/kernels/attention_dense.h"

#include <algorithm>
#include <vector>

#include "ops/kernels/gemm.h"
#include "ops/kernels/parallel.h"

namespace tg::kernels {
namespace {


// Softmax of one row in place after adding the mask; a row with every key masked becomes zeros.
template <class T>
void masked_softmax_row(const AttnMask<T>& mask, bool any_mask, int64_t b, int64_t h, int64_t t,
                        int64_t S, T* row) {
  if (any_mask)
    for (int64_t s = 0; s < S; ++s) row[s] += mask.bias(b, h, t, s);
  T mx = -std::numeric_limits<T>::infinity();
  for (int64_t s = 0; s < S; ++s) mx = std::max(mx, row[s]);
  if (mx == -std::numeric_limits<T>::infinity()) {
    std::fill(row, row + S, T(0));
    return;
  }
  T sum = 0;
  for (int64_t s = 0; s < S; ++s) {
    row[s] = std::exp(row[s] - mx);
    sum += row[s];
  }
  T inv = T(1) / sum;
  for (int64_t s = 0; s < S; ++s) row[s] *= inv;
}

// w[t, s] = p[t, s] * keep(b, h, t, s) / (1 - p): the weights after dropout.
template <class T>
void apply_dropout(const AttnDims& d, const AttnDropout& dropout, int64_t b, int64_t h, const T* p,
                   T* w) {
  T sc = static_cast<T>(dropout.scale());
  for (int64_t t = 0; t < d.T; ++t)
    for (int64_t s = 0; s < d.S; ++s)
      w[t * d.S + s] = dropout.keep(d, b, h, t, s) ? p[t * d.S + s] * sc : T(0);
}

}  // namespace

template <class T>
void dense_attention_forward(const AttnDims& d, T scale, const AttnMask<T>& mask,
                             const AttnDropout& dropout, const T* q, const T* k, const T* v,
                             T* out, T* weights) {
  bool any_mask = mask.causal || mask.key_padding || mask.has_general();
  for_each_head(d, [&](int64_t b, int64_t h) {
    const T* qh = q + (b * d.T * d.H + h) * d.D;   // rows of stride H*D
    const T* kh = k + (b * d.S * d.H + h) * d.D;
    const T* vh = v + (b * d.S * d.H + h) * d.Dv;
    T* oh = out + (b * d.T * d.H + h) * d.Dv;
    T* p = weights + (b * d.H + h) * d.T * d.S;    // [T, S]
    gemm<T>(false, true, d.T, d.S, d.D, scale, qh, d.H * d.D, kh, d.H * d.D, T(0), p, d.S);
    for (int64_t t = 0; t < d.T; ++t) masked_softmax_row(mask, any_mask, b, h, t, d.S, p + t * d.S);
    const T* w = p;
    std::vector<T> dropped;
    if (dropout.active()) {
      dropped.resize(static_cast<size_t>(d.T * d.S));
      apply_dropout(d, dropout, b, h, p, dropped.data());
      w = dropped.data();
    }
    gemm<T>(false, false, d.T, d.Dv, d.S, T(1), w, d.S, vh, d.H * d.Dv, T(0), oh, d.H * d.Dv);
  });
}

template <class T>
void dense_attention_backward(const AttnDims& d, T scale, const AttnDropout& dropout, const T* q,
                              const T* k, const T* v, const T* weights, const T* dout, T* dq,
                              T* dk, T* dv) {
  for_each_head(d, [&](int64_t b, int64_t h) {
    const T* qh = q + (b * d.T * d.H + h) * d.D;
    const T* kh = k + (b * d.S * d.H + h) * d.D;
    const T* vh = v + (b * d.S * d.H + h) * d.Dv;
    const T* doh = dout + (b * d.T * d.H + h) * d.Dv;
    T* dqh = dq + (b * d.T * d.H + h) * d.D;
    T* dkh = dk + (b * d.S * d.H + h) * d.D;
    T* dvh = dv + (b * d.S * d.H + h) * d.Dv;
    const T* p = weights + (b * d.H + h) * d.T * d.S;
    std::vector<T> dp(static_cast<size_t>(d.T * d.S));
    // dW = dO Vᵀ [T, S]; dV = Wᵀ dO with W the weights after dropout.
    gemm<T>(false, true, d.T, d.S, d.Dv, T(1), doh, d.H * d.Dv, vh, d.H * d.Dv, T(0), dp.data(), d.S);
    if (dropout.active()) {
      std::vector<T> w(static_cast<size_t>(d.T * d.S));
      apply_dropout(d, dropout, b, h, p, w.data());
      gemm<T>(true, false, d.S, d.Dv, d.T, T(1), w.data(), d.S, doh, d.H * d.Dv, T(0), dvh, d.H * d.Dv);
      // Through dropout: dP = dW * keep / (1 - p).
      T sc = static_cast<T>(dropout.scale());
      for (int64_t t = 0; t < d.T; ++t)
        for (int64_t s = 0; s < d.S; ++s)
          dp[size_t(t * d.S + s)] = dropout.keep(d, b, h, t, s) ? dp[size_t(t * d.S + s)] * sc : T(0);
    } else {
      gemm<T>(true, false, d.S, d.Dv, d.T, T(1), p, d.S, doh, d.H * d.Dv, T(0), dvh, d.H * d.Dv);
    }
    // Through softmax, row by row: dS = P ∘ (dP - sum(dP ∘ P)).
    for (int64_t t = 0; t < d.T; ++t) {
      const T* pr = p + t * d.S;
      T* g = dp.data() + t * d.S;
      T dot = 0;
      for (int64_t s = 0; s < d.S; ++s) dot += g[s] * pr[s];
      for (int64_t s = 0; s < d.S; ++s) g[s] = pr[s] * (g[s] - dot);
    }
    // dQ = scale · dS K, dK = scale · dSᵀ Q.
    gemm<T>(false, false, d.T, d.D, d.S, scale, dp.data(), d.S, kh, d.H * d.D, T(0), dqh, d.H * d.D);
    gemm<T>(true, false, d.S, d.D, d.T, scale, dp.data(), d.S, qh, d.H * d.D, T(0), dkh, d.H * d.D);
  });
}

#define TG_INSTANTIATE(T)                                                                        \
  template void dense_attention_forward<T>(const AttnDims&, T, const AttnMask<T>&,               \
                                           const AttnDropout&, const T*, const T*, const T*, T*, \
                                           T*);                                                  \
  template void dense_attention_backward<T>(const AttnDims&, T, const AttnDropout&, const T*,    \
                                            const T*, const T*, const T*, const T*, T*, T*, T*);
TG_INSTANTIATE(float)
TG_INSTANTIATE(double)
#undef TG_INSTANTIATE

}  // namespace tg::kernels
