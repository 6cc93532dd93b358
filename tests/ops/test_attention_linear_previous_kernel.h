#pragma once
// The linear attention kernel as it was before the chunked rewrite (commit 287654f's
// ops/kernels/attention_linear.cpp, BLAS calls on the augmented values [v, 1]), kept unchanged
// as a reference: the chunked kernel must compute the same function
// (tests/ops/test_attention_linear_previous.cpp). Header-only, for that test alone.
#include <algorithm>
#include <cmath>
#include <limits>
#include <type_traits>
#include <vector>

#include "ops/kernels/attention_linear.h"
#include "ops/kernels/gemm.h"

namespace tg::testing::linear_previous {

using kernels::AttnDims;
using kernels::for_each_head;
using kernels::gemm;
using kernels::LinearFeatures;

inline constexpr int64_t kPreviousChunk = 64;



// One head of one batch element, read in place with the row strides of AttnDims.
template <class T>
struct Head {
  const T *q, *k, *v;
  const bool* pad;                  // [S] or null
  int64_t T_, S, D, Dv;
  int64_t ldq, ldk, ldv;  // row strides of q, k, v and of their gradients (AttnDims)
  int64_t ldo;            // of out and dout (contiguous): H*Dv
  // Causal: query t sits at key position offset + t. Keys [0, offset) are the prefix every
  // query sees (one state before the first chunk); the chunks pair query c0 + i with key
  // offset + c0 + i.
  int64_t offset;
};

// The chunk-sized buffers of one head (C = kPreviousChunk rows, M features, E = Dv + 1).
template <class T>
struct Work {
  Work(int64_t M, int64_t E)
      : fq(size_t(kPreviousChunk * M)),
        fk(fq.size()),
        dfq(fq.size()),
        dfk(fq.size()),
        vp(size_t(kPreviousChunk * E)),
        num(vp.size()),
        dvp(vp.size()),
        A(size_t(kPreviousChunk * kPreviousChunk)),
        P(A.size()),
        state(size_t(M * E)),
        G(state.size()) {}
  std::vector<T> fq, fk, dfq, dfk;  // [C, M]: features of a query/key chunk and their gradients
  std::vector<T> vp, num, dvp;      // [C, E]: augmented values [v, 1], numerators, their gradient
  std::vector<T> A, P;              // [C, C]: masked φ(q)φ(k)ᵀ and dnum v'ᵀ of a causal chunk
  std::vector<T> state, G;          // [M, E]: Σ φ(k) v'ᵀ (forward), Σ φ(q) dnumᵀ (backward)
};

// FAVOR+ pre-activations of n rows: U[n, M] = a · x Wᵀ - a²|x|²/2.
template <class T>
void favor_logits(const LinearFeatures<T>& f, int64_t D, const T* x, int64_t ld, int64_t n, T* U) {
  const int64_t M = f.M;
  const T a = f.favor_scale;
  gemm<T>(false, true, n, M, D, a, x, ld, f.W, D, T(0), U, M);
  for (int64_t r = 0; r < n; ++r) {
    T sq = 0;
    for (int64_t j = 0; j < D; ++j) sq += x[r * ld + j] * x[r * ld + j];
    T h = a * a * sq / 2;
    for (int64_t i = 0; i < M; ++i) U[r * M + i] -= h;
  }
}

// F[n, M] = φ(x) for n rows of x (row stride ld); rows flagged in `pad` become zeros. FAVOR+
// subtracts `key_stab` when given, else each row's own maximum (queries): constants that
// cancel in the ratio, so they get no gradient.
template <class T>
void feature_rows(const LinearFeatures<T>& f, int64_t D, const T* x, int64_t ld, int64_t n,
                  const bool* pad, std::type_identity_t<const T*> key_stab, T* F) {
  const int64_t M = f.M;
  if (!f.W) {
    for (int64_t r = 0; r < n; ++r)
      for (int64_t i = 0; i < M; ++i) {
        T xi = x[r * ld + i];
        F[r * M + i] = xi > T(0) ? xi + T(1) : std::exp(xi);
      }
  } else {
    favor_logits(f, D, x, ld, n, F);
    const T inv_sqrt_m = T(1) / std::sqrt(static_cast<T>(M));
    for (int64_t r = 0; r < n; ++r) {
      T* row = F + r * M;
      T c = key_stab ? *key_stab : *std::max_element(row, row + M);
      for (int64_t i = 0; i < M; ++i) row[i] = std::exp(row[i] - c) * inv_sqrt_m;
    }
  }
  if (pad)
    for (int64_t r = 0; r < n; ++r)
      if (pad[r]) std::fill(F + r * M, F + (r + 1) * M, T(0));
}

// dx rows (stride ld, as x) = dF · ∂φ/∂x given F = φ(x) of the same rows; padded rows get zeros.
// dF is used as scratch.
template <class T>
void feature_rows_backward(const LinearFeatures<T>& f, int64_t D, const T* x, int64_t ld, int64_t n,
                           const bool* pad, const T* F, T* dF, T* dx) {
  const int64_t M = f.M;
  if (!f.W) {
    // φ'(x) = 1 for x > 0, else exp(x) = φ(x).
    for (int64_t r = 0; r < n; ++r)
      for (int64_t i = 0; i < M; ++i)
        dx[r * ld + i] = x[r * ld + i] > T(0) ? dF[r * M + i] : dF[r * M + i] * F[r * M + i];
  } else {
    // ∂φ_i/∂x = a φ_i (w_i - a x): dx = a (dF∘F) W - a² x Σ_i (dF∘F)_i.
    const T a = f.favor_scale;
    for (int64_t i = 0; i < n * M; ++i) dF[i] *= F[i];
    gemm<T>(false, false, n, D, M, a, dF, M, f.W, D, T(0), dx, ld);
    for (int64_t r = 0; r < n; ++r) {
      T g = 0;
      for (int64_t i = 0; i < M; ++i) g += dF[r * M + i];
      for (int64_t j = 0; j < D; ++j) dx[r * ld + j] -= a * a * g * x[r * ld + j];
    }
  }
  if (pad)
    for (int64_t r = 0; r < n; ++r)
      if (pad[r]) std::fill(dx + r * ld, dx + r * ld + D, T(0));
}

// FAVOR+'s key stabiliser: the largest pre-activation over the head's non-padding keys.
template <class T>
T key_stabiliser(const LinearFeatures<T>& f, const Head<T>& h, T* scratch) {
  T c = -std::numeric_limits<T>::infinity();
  for (int64_t s0 = 0; s0 < h.S; s0 += kPreviousChunk) {
    int64_t n = std::min(kPreviousChunk, h.S - s0);
    favor_logits(f, h.D, h.k + s0 * h.ldk, h.ldk, n, scratch);
    for (int64_t r = 0; r < n; ++r)
      if (!h.pad || !h.pad[s0 + r])
        c = std::max(c, *std::max_element(scratch + r * f.M, scratch + (r + 1) * f.M));
  }
  return std::isfinite(c) ? c : T(0);
}

// Features and augmented values [v, 1] of the n keys from s0 into w.fk, w.vp.
template <class T>
void load_keys(const LinearFeatures<T>& f, const Head<T>& h, const T* key_stab, int64_t s0,
               int64_t n, Work<T>& w) {
  feature_rows(f, h.D, h.k + s0 * h.ldk, h.ldk, n, h.pad ? h.pad + s0 : nullptr, key_stab,
               w.fk.data());
  const int64_t E = h.Dv + 1;
  for (int64_t r = 0; r < n; ++r) {
    std::copy(h.v + (s0 + r) * h.ldv, h.v + (s0 + r) * h.ldv + h.Dv, w.vp.data() + r * E);
    w.vp[size_t(r * E + h.Dv)] = T(1);
  }
}

// The causal mask inside a chunk: query i sees key j <= i.
template <class T>
void mask_upper(T* A, int64_t nq, int64_t nk) {
  for (int64_t i = 0; i < nq; ++i)
    for (int64_t j = i + 1; j < nk; ++j) A[i * nk + j] = T(0);
}

// w.num [nq, E] = numerators and denominators of the nq queries from t0 (w.fq holds their
// features; for a causal chunk w.fk, w.vp hold the chunk's nk keys and w.state the keys before).
template <class T>
void chunk_numerators(const Head<T>& h, bool causal, int64_t M, int64_t nq, int64_t nk,
                      Work<T>& w) {
  const int64_t E = h.Dv + 1;
  gemm<T>(false, false, nq, E, M, T(1), w.fq.data(), M, w.state.data(), E, T(0), w.num.data(), E);
  if (causal && nk > 0) {
    gemm<T>(false, true, nq, nk, M, T(1), w.fq.data(), M, w.fk.data(), M, T(0), w.A.data(), nk);
    mask_upper(w.A.data(), nq, nk);
    gemm<T>(false, false, nq, E, nk, T(1), w.A.data(), nk, w.vp.data(), E, T(1), w.num.data(), E);
  }
}

// Chunks of the causal form: queries [c0, c0 + nq), keys [c0, c0 + nk) (nk may be 0 when S < T).
inline int64_t chunk_queries(int64_t T_, int64_t c0) { return std::min(kPreviousChunk, T_ - c0); }
inline int64_t chunk_keys(int64_t S, int64_t c0) {
  return std::clamp<int64_t>(S - c0, 0, kPreviousChunk);
}

template <class T>
void head_forward(const Head<T>& h, bool causal, const LinearFeatures<T>& f, T* out) {
  const int64_t M = f.M, Dv = h.Dv, E = Dv + 1;
  Work<T> w(M, E);
  T stab = f.W ? key_stabiliser(f, h, w.fk.data()) : T(0);
  auto emit = [&](int64_t t0, int64_t nq) {
    for (int64_t r = 0; r < nq; ++r) {
      T den = w.num[size_t(r * E + Dv)];
      T inv = den > T(0) ? T(1) / den : T(0);
      for (int64_t j = 0; j < Dv; ++j) out[(t0 + r) * h.ldo + j] = w.num[size_t(r * E + j)] * inv;
    }
  };
  // The state of the keys every query sees: all of them, or (causal) the prefix.
  for (int64_t s0 = 0, seen = causal ? h.offset : h.S; s0 < seen; s0 += kPreviousChunk) {
    int64_t nk = std::min(kPreviousChunk, seen - s0);
    load_keys(f, h, &stab, s0, nk, w);
    gemm<T>(true, false, M, E, nk, T(1), w.fk.data(), M, w.vp.data(), E, T(1), w.state.data(), E);
  }
  for (int64_t c0 = 0; c0 < h.T_; c0 += kPreviousChunk) {
    int64_t nq = chunk_queries(h.T_, c0), nk = causal ? chunk_keys(h.S - h.offset, c0) : 0;
    feature_rows(f, h.D, h.q + c0 * h.ldq, h.ldq, nq, nullptr, nullptr, w.fq.data());
    if (nk > 0) load_keys(f, h, &stab, h.offset + c0, nk, w);
    chunk_numerators(h, causal, M, nq, nk, w);
    emit(c0, nq);
    if (nk > 0)
      gemm<T>(true, false, M, E, nk, T(1), w.fk.data(), M, w.vp.data(), E, T(1), w.state.data(), E);
  }
}

template <class T>
void head_backward(const Head<T>& h, bool causal, const LinearFeatures<T>& f, const T* dout, T* dq,
                   T* dk, T* dv) {
  const int64_t M = f.M, D = h.D, Dv = h.Dv, E = Dv + 1;
  Work<T> w(M, E);
  T stab = f.W ? key_stabiliser(f, h, w.fk.data()) : T(0);
  // dnum [T, E]: the gradient of each query's numerator and (last column) denominator.
  std::vector<T> dnum(size_t(h.T_ * E));

  // Pass 1, forward in time: recompute the numerators, get dnum, and dφ(q) from the same state.
  for (int64_t s0 = 0, seen = causal ? h.offset : h.S; s0 < seen; s0 += kPreviousChunk) {
    int64_t nk = std::min(kPreviousChunk, seen - s0);
    load_keys(f, h, &stab, s0, nk, w);
    gemm<T>(true, false, M, E, nk, T(1), w.fk.data(), M, w.vp.data(), E, T(1), w.state.data(), E);
  }
  for (int64_t c0 = 0; c0 < h.T_; c0 += kPreviousChunk) {
    int64_t nq = chunk_queries(h.T_, c0), nk = causal ? chunk_keys(h.S - h.offset, c0) : 0;
    const T* qc = h.q + c0 * h.ldq;
    feature_rows(f, D, qc, h.ldq, nq, nullptr, nullptr, w.fq.data());
    if (nk > 0) load_keys(f, h, &stab, h.offset + c0, nk, w);
    chunk_numerators(h, causal, M, nq, nk, w);
    // out = num / den: dnum = dout / den, dden = -(dout · out) / den (zero when den is 0).
    T* dn = dnum.data() + c0 * E;
    for (int64_t r = 0; r < nq; ++r) {
      const T* g = dout + (c0 + r) * h.ldo;
      const T* nr = w.num.data() + r * E;
      T inv = nr[Dv] > T(0) ? T(1) / nr[Dv] : T(0);
      T dot = 0;
      for (int64_t j = 0; j < Dv; ++j) {
        dn[r * E + j] = g[j] * inv;
        dot += g[j] * nr[j];
      }
      dn[r * E + Dv] = -dot * inv * inv;
    }
    // dφ(q) = dnum stateᵀ (+ the chunk's masked dnum v'ᵀ φ(k)).
    gemm<T>(false, true, nq, M, E, T(1), dn, E, w.state.data(), E, T(0), w.dfq.data(), M);
    if (nk > 0) {
      gemm<T>(false, true, nq, nk, E, T(1), dn, E, w.vp.data(), E, T(0), w.P.data(), nk);
      mask_upper(w.P.data(), nq, nk);
      gemm<T>(false, false, nq, M, nk, T(1), w.P.data(), nk, w.fk.data(), M, T(1), w.dfq.data(), M);
      gemm<T>(true, false, M, E, nk, T(1), w.fk.data(), M, w.vp.data(), E, T(1), w.state.data(), E);
    }
    feature_rows_backward(f, D, qc, h.ldq, nq, nullptr, w.fq.data(), w.dfq.data(),
                          dq + c0 * h.ldq);
  }

  // Pass 2, backward in time: G = Σ φ(q_t) dnum_tᵀ over the queries after a chunk gives its
  // keys' gradients dφ(k) = v' Gᵀ and dv' = φ(k) G (plus the chunk's own masked terms).
  auto emit_keys = [&](int64_t s0, int64_t nk) {
    for (int64_t r = 0; r < nk; ++r)
      std::copy(w.dvp.data() + r * E, w.dvp.data() + r * E + Dv, dv + (s0 + r) * h.ldv);
    feature_rows_backward(f, D, h.k + s0 * h.ldk, h.ldk, nk, h.pad ? h.pad + s0 : nullptr,
                          w.fk.data(), w.dfk.data(), dk + s0 * h.ldk);
  };
  if (!causal) {
    for (int64_t t0 = 0; t0 < h.T_; t0 += kPreviousChunk) {
      int64_t nq = chunk_queries(h.T_, t0);
      feature_rows(f, D, h.q + t0 * h.ldq, h.ldq, nq, nullptr, nullptr, w.fq.data());
      gemm<T>(true, false, M, E, nq, T(1), w.fq.data(), M, dnum.data() + t0 * E, E, T(1),
              w.G.data(), E);
    }
    for (int64_t s0 = 0; s0 < h.S; s0 += kPreviousChunk) {
      int64_t nk = std::min(kPreviousChunk, h.S - s0);
      load_keys(f, h, &stab, s0, nk, w);
      gemm<T>(false, true, nk, M, E, T(1), w.vp.data(), E, w.G.data(), E, T(0), w.dfk.data(), M);
      gemm<T>(false, false, nk, E, M, T(1), w.fk.data(), M, w.G.data(), E, T(0), w.dvp.data(), E);
      emit_keys(s0, nk);
    }
    return;
  }
  // Keys no query reaches (s >= offset + T) get zero gradients.
  for (int64_t s = h.offset + h.T_; s < h.S; ++s) {
    std::fill(dk + s * h.ldk, dk + s * h.ldk + D, T(0));
    std::fill(dv + s * h.ldv, dv + s * h.ldv + Dv, T(0));
  }
  if (h.T_ == 0) {
    for (int64_t s = 0; s < std::min(h.offset, h.S); ++s) {  // no query sees the prefix either
      std::fill(dk + s * h.ldk, dk + s * h.ldk + D, T(0));
      std::fill(dv + s * h.ldv, dv + s * h.ldv + Dv, T(0));
    }
    return;
  }
  for (int64_t c0 = (h.T_ - 1) / kPreviousChunk * kPreviousChunk; c0 >= 0; c0 -= kPreviousChunk) {
    int64_t nq = chunk_queries(h.T_, c0), nk = chunk_keys(h.S - h.offset, c0);
    const T* dn = dnum.data() + c0 * E;
    feature_rows(f, D, h.q + c0 * h.ldq, h.ldq, nq, nullptr, nullptr, w.fq.data());
    if (nk > 0) {
      load_keys(f, h, &stab, h.offset + c0, nk, w);
      // dφ(k) = v' Gᵀ + Pᵀ φ(q), P = mask(dnum v'ᵀ); dv' = φ(k) G + Aᵀ dnum, A = mask(φ(q) φ(k)ᵀ).
      gemm<T>(false, true, nk, M, E, T(1), w.vp.data(), E, w.G.data(), E, T(0), w.dfk.data(), M);
      gemm<T>(false, true, nq, nk, E, T(1), dn, E, w.vp.data(), E, T(0), w.P.data(), nk);
      mask_upper(w.P.data(), nq, nk);
      gemm<T>(true, false, nk, M, nq, T(1), w.P.data(), nk, w.fq.data(), M, T(1), w.dfk.data(), M);
      gemm<T>(false, false, nk, E, M, T(1), w.fk.data(), M, w.G.data(), E, T(0), w.dvp.data(), E);
      gemm<T>(false, true, nq, nk, M, T(1), w.fq.data(), M, w.fk.data(), M, T(0), w.A.data(), nk);
      mask_upper(w.A.data(), nq, nk);
      gemm<T>(true, false, nk, E, nq, T(1), w.A.data(), nk, dn, E, T(1), w.dvp.data(), E);
      emit_keys(h.offset + c0, nk);
    }
    gemm<T>(true, false, M, E, nq, T(1), w.fq.data(), M, dn, E, T(1), w.G.data(), E);
  }
  // The prefix keys, seen by every query: G now sums over all of them.
  for (int64_t s0 = 0; s0 < h.offset; s0 += kPreviousChunk) {
    int64_t nk = std::min(kPreviousChunk, h.offset - s0);
    load_keys(f, h, &stab, s0, nk, w);
    gemm<T>(false, true, nk, M, E, T(1), w.vp.data(), E, w.G.data(), E, T(0), w.dfk.data(), M);
    gemm<T>(false, false, nk, E, M, T(1), w.fk.data(), M, w.G.data(), E, T(0), w.dvp.data(), E);
    emit_keys(s0, nk);
  }
}

template <class T>
Head<T> head_of(const AttnDims& d, const bool* key_padding, const T* q, const T* k, const T* v,
                int64_t b, int64_t h) {
  return {q + b * d.T * d.ldq() + h * d.D,
          k + b * d.S * d.ldk() + h * d.D,
          v + b * d.S * d.ldv() + h * d.Dv,
          key_padding ? key_padding + b * d.S : nullptr,
          d.T,
          d.S,
          d.D,
          d.Dv,
          d.ldq(),
          d.ldk(),
          d.ldv(),
          d.H * d.Dv,
          d.query_offset};
}

template <class T>
void linear_attention_forward(const AttnDims& d, bool causal, const bool* key_padding,
                              const LinearFeatures<T>& features, const T* q, const T* k, const T* v,
                              T* out) {
  for_each_head(d, [&](int64_t b, int64_t h) {
    head_forward(head_of(d, key_padding, q, k, v, b, h), causal, features,
                 out + (b * d.T * d.H + h) * d.Dv);
  });
}

template <class T>
void linear_attention_backward(const AttnDims& d, bool causal, const bool* key_padding,
                               const LinearFeatures<T>& features, const T* q, const T* k,
                               const T* v, const T* dout, T* dq, T* dk, T* dv) {
  for_each_head(d, [&](int64_t b, int64_t h) {
    // dq, dk, dv have the row strides of q, k, v; dout is contiguous.
    head_backward(head_of(d, key_padding, q, k, v, b, h), causal, features, dout + (b * d.T * d.H + h) * d.Dv,
                  dq + b * d.T * d.ldq() + h * d.D, dk + b * d.S * d.ldk() + h * d.D,
                  dv + b * d.S * d.ldv() + h * d.Dv);
  });
}

}  // namespace tg::testing::linear_previous
