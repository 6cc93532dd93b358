// The linear attention kernels' forward (see attention_linear.h), their FLOP count, and FAVOR+'s
// projection.
#include "ops/kernels/attention_linear.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include "ops/kernels/attention_linear_chunks.h"
#include "ops/kernels/philox.h"

namespace tg::kernels {
namespace linear_chunked {
namespace {

// One chunk of the forward: the nq queries from c0 against the state of the keys before them
// (w.state, w.z) and, causal, their own chunk of keys, which then join the state.
template <class T>
void forward_chunk(const Head<T>& h, bool causal, const LinearFeatures<T>& f, T stab, int64_t c0, T* out,
                   T* den, Work<T>& w) {
  const int64_t M = f.M, Dv = h.Dv;
  const int64_t nq = std::min(kC, h.T_ - c0), nk = causal ? h.chunk_keys(c0) : 0;
  w.plan_prefetch([&](RowPrefetch& a) {
    h.prefetch_queries(a, c0 + kC, kC);
    if (causal) h.prefetch_keys(a, h.offset + c0 + kC, h.chunk_keys(c0 + kC));
  });
  load_queries(f, h, c0, nq, w);
  T* o = out + c0 * h.ldo;
  // Numerators φ(Q)·S straight into out, denominators φ(Q)·z.
  gemm_tiles<T>(Shape::full, nq, Dv, M, {w.fq.data(), M, 1}, w.state.data(), Dv, o, h.ldo, false, &w.ahead);
  T dens[kC];
  for (int64_t r = 0; r < nq; ++r) dens[r] = dot(w.fq.data() + r * M, w.z.data(), M);
  if (nk > 0) {
    const int64_t s0 = h.offset + c0;
    load_keys(f, h, &stab, s0, nk, w, true);
    chunk_scores(M, nq, nk, w);
    gemm_tiles<T>(Shape::a_lower, nq, Dv, nk, {w.A.data(), kC, 1}, w.xv.data(), Dv, o, h.ldo, true, &w.ahead);
    for (int64_t r = 0; r < nq; ++r) dens[r] += linear_tiles::sum(w.A.data() + r * kC, std::min(r + 1, nk));
    if (c0 + kC < h.T_) fold_keys(h, M, nk, w);  // the last chunk's keys serve no later query
  }
  for (int64_t r = 0; r < nq; ++r) {
    T inv = dens[r] > T(0) ? T(1) / dens[r] : T(0);
    for (int64_t j = 0; j < Dv; ++j) o[r * h.ldo + j] *= inv;
    if (den) den[c0 + r] = dens[r];
  }
}

// The forward of a run of heads (their outputs; denominators, and the states the backward starts
// from, or null: linear_attention_forward).
template <class T>
void heads_forward(const std::vector<Head<T>>& heads, bool causal, const LinearFeatures<T>& f,
                   const std::vector<T*>& outs, const std::vector<T*>& dens, const std::vector<T*>& states) {
  if (heads.empty()) return;
  Work<T> w(heads[0].D, f.M, heads[0].Dv);
  HeadRun<T> run(heads, w);
  const std::vector<T> stabs = key_stabilisers(f, heads, w);
  // The state of the keys every query sees: all of them, or (causal) the prefix.
  fold_all_keys(f, run, stabs, causal ? heads[0].prefix() : heads[0].S);
  const int64_t state_size = f.M * (heads[0].Dv + 1);
  if (!causal)
    run.each([&](int64_t x, const Head<T>&) {
      if (states[size_t(x)]) save_state(w, states[size_t(x)]);
    });
  for (int64_t c0 = 0; c0 < heads[0].T_; c0 += kC)
    run.each([&](int64_t x, const Head<T>& h) {
      if (causal && states[size_t(x)]) stream_state(w, states[size_t(x)] + c0 / kC * state_size);
      forward_chunk(h, causal, f, stabs[size_t(x)], c0, outs[size_t(x)], dens[size_t(x)], w);
    });
}

}  // namespace
}  // namespace linear_chunked

template <class T>
void linear_attention_forward(const AttnDims& d, bool causal, const bool* key_padding,
                              const LinearFeatures<T>& features, const T* q, const T* k, const T* v,
                              T* out, T* den, T* states) {
  namespace lc = linear_chunked;
  const int64_t state_size = linear_attention_states_size(d, causal, features.M) / std::max<int64_t>(1, d.B * d.H);
  lc::for_each_head_run(d, [&](int64_t first, int64_t last) {
    std::vector<lc::Head<T>> hs;
    std::vector<T*> outs, dens, sts;
    for (int64_t x = first; x < last; ++x) {
      const int64_t b = x / d.H, h = x % d.H;
      hs.push_back(lc::head_of(d, key_padding, q, k, v, b, h));
      outs.push_back(out + (b * d.T * d.H + h) * d.Dv);
      dens.push_back(den ? den + (b * d.H + h) * d.T : nullptr);
      sts.push_back(states ? states + x * state_size : nullptr);
    }
    lc::heads_forward(hs, causal, features, outs, dens, sts);
  });
}

int64_t linear_attention_states_size(const AttnDims& d, bool causal, int64_t M) {
  const int64_t chunks = causal ? (d.T + kLinearChunk - 1) / kLinearChunk : 1;
  return d.B * d.H * chunks * M * (d.Dv + 1);
}

double linear_attention_flops(const AttnDims& d, bool causal, int64_t M) {
  const double E = static_cast<double>(d.Dv + 1), heads = static_cast<double>(d.B * d.H);
  if (!causal) return heads * 2.0 * static_cast<double>(d.S + d.T) * M * E;
  // The kernel's own chunking (Head::chunk_keys), without its pointers.
  const int64_t prefix = std::min(d.query_offset, d.S);
  const int64_t keys_end = std::clamp(d.query_offset + d.T, prefix, d.S);
  double flops = 2.0 * prefix * M * E;
  for (int64_t c0 = 0; c0 < d.T; c0 += kLinearChunk) {
    const int64_t nq = std::min(kLinearChunk, d.T - c0);
    const int64_t nk = std::clamp<int64_t>(keys_end - d.query_offset - c0, 0, kLinearChunk);
    double pairs = 0;
    for (int64_t i = 0; i < nq; ++i) pairs += static_cast<double>(std::min(i + 1, nk));
    flops += 2.0 * pairs * (M + E) + 2.0 * nq * M * E;
    if (c0 + kLinearChunk < d.T) flops += 2.0 * nk * M * E;
  }
  return heads * flops;
}

template <class T>
void favor_projection(int64_t M, int64_t D, uint64_t seed, T* W) {
  // Each block of D rows draws D·D Gaussians for its directions and D·D more for its row norms,
  // from its own counter range, so a block's rows do not depend on M.
  std::vector<double> block(size_t(D * D));
  for (int64_t b0 = 0; b0 < M; b0 += D) {
    uint64_t offset = static_cast<uint64_t>(b0 / D) * 2 * static_cast<uint64_t>(D * D);
    for (int64_t i = 0; i < D * D; ++i)
      block[size_t(i)] = philox_normal<double>(seed, offset, uint64_t(i));
    // Gram-Schmidt on the rows (twice, for orthogonality to rounding).
    for (int64_t r = 0; r < D; ++r) {
      double* row = block.data() + r * D;
      for (int pass = 0; pass < 2; ++pass)
        for (int64_t p = 0; p < r; ++p) {
          const double* prev = block.data() + p * D;
          double dot = 0;
          for (int64_t j = 0; j < D; ++j) dot += row[j] * prev[j];
          for (int64_t j = 0; j < D; ++j) row[j] -= dot * prev[j];
        }
      double norm = 0;
      for (int64_t j = 0; j < D; ++j) norm += row[j] * row[j];
      norm = std::sqrt(norm);
      for (int64_t j = 0; j < D; ++j) row[j] /= norm;
    }
    for (int64_t r = 0; r < D && b0 + r < M; ++r) {
      double len = 0;
      for (int64_t j = 0; j < D; ++j) {
        double g = philox_normal<double>(seed, offset + uint64_t(D * D), uint64_t(r * D + j));
        len += g * g;
      }
      len = std::sqrt(len);
      for (int64_t j = 0; j < D; ++j)
        W[(b0 + r) * D + j] = static_cast<T>(block[size_t(r * D + j)] * len);
    }
  }
}

#define TG_INSTANTIATE(T)                                                                  \
  template void linear_attention_forward<T>(const AttnDims&, bool, const bool*,            \
                                            const LinearFeatures<T>&, const T*, const T*,  \
                                            const T*, T*, T*, T*);                         \
  template void favor_projection<T>(int64_t, int64_t, uint64_t, T*);
TG_INSTANTIATE(float)
TG_INSTANTIATE(double)
#undef TG_INSTANTIATE

}  // namespace tg::kernels
