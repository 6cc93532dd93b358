// The linear attention kernels' backward (see attention_linear.h): non-causal a pass over the
// query chunks and one over the key chunks, both against the states of all keys; causal one pass
// backward in time, carrying the state's gradient, against the state before each chunk.
#include <algorithm>
#include <stdexcept>
#include <vector>

#include "ops/kernels/attention_linear.h"
#include "ops/kernels/attention_linear_chunks.h"

namespace tg::kernels {
namespace linear_chunked {
namespace {

// w.dnum of the nq queries from c0: out = num / den gives dnum = dout / den (zero when den is 0);
// w.dden holds 1 / den (or 0) until den_grads.
template <class T>
void num_grads(const Head<T>& h, const T* den, const T* dout, int64_t c0, int64_t nq, Work<T>& w) {
  copy_rows(dout + c0 * h.ldo, h.ldo, nq, h.Dv, w.dnum.data());
  for (int64_t r = 0; r < nq; ++r) {
    T* g = w.dnum.data() + r * h.Dv;
    const T inv = den[c0 + r] > T(0) ? T(1) / den[c0 + r] : T(0);
    w.dden[size_t(r)] = inv;
    for (int64_t j = 0; j < h.Dv; ++j) g[j] *= inv;
  }
}

// G [n, M] = dnum Sᵀ for n rows (w.stateT holds Sᵀ), the queries' gradient through the state's
// values; dots[r] = φ(q_r) · G_r, the part of dnum_r · num_r that goes through the state.
template <class T>
void grads_through_state(int64_t M, int64_t Dv, int64_t n, Work<T>& w, T* G, T* dots) {
  gemm_tiles<T>(Shape::full, n, M, Dv, {w.dnum.data(), Dv, 1}, w.stateT.data(), M, G, M, false, &w.ahead);
  for (int64_t r = 0; r < n; ++r) dots[r] = dot(w.fq.data() + r * M, G + r * M, M);
}

// w.dden = -(dnum · num) / den = -(dout · out) / den, the denominators' gradient, from
// dots[r] = dnum_r · num_r (w.dden held 1 / den); then dF [n, M] += dden zᵀ. The numerator's dot
// is summed from the products the backward makes anyway (grads_through_state, and causal the
// chunk's A ∘ dnum Vᵀ), not read from out: out's rows, H·Dv floats apart, came from memory.
// B = 1, H = 8, D = 64, 2 threads, fwd+bwd 1.03-1.05x non-causal, 1.06-1.08x causal at
// T = 2K-16K (median of 5 alternating runs).
template <class T>
void den_grads(int64_t M, int64_t n, const T* dots, Work<T>& w, T* dF) {
  for (int64_t r = 0; r < n; ++r) {
    const T dden = -dots[r] * w.dden[size_t(r)];
    w.dden[size_t(r)] = dden;
    for (int64_t i = 0; i < M; ++i) dF[r * M + i] += dden * w.z[size_t(i)];
  }
}

// The gradient state: dS [M, Dv] += fqᵀ dnum, dz [M] += fqᵀ dden over n query rows in w.fq, and
// dST = dSᵀ after.
template <class T>
void fold_query_grads(int64_t M, int64_t Dv, int64_t n, Work<T>& w) {
  gemm_tiles<T>(Shape::full, M, Dv, n, {w.fq.data(), 1, M}, w.dnum.data(), Dv, w.dS.data(), Dv,
                true, &w.ahead);
  for (int64_t r = 0; r < n; ++r)
    for (int64_t i = 0; i < M; ++i) w.dz[size_t(i)] += w.fq[size_t(r * M + i)] * w.dden[size_t(r)];
  transpose_matrix(w.dS.data(), M, Dv, Dv, w.dST.data(), M);
}

// Gradients of the n keys from s0 (features in w.fk) through the gradient state alone:
// dφ(k) = V dSᵀ + dz, dv = φ(k) dS (added to w.dvx, the chunk's own part, when
// dfk_has_chunk_part); writes dk and dv rows.
template <class T>
void key_grads_from_state(const LinearFeatures<T>& f, const Head<T>& h, int64_t s0, int64_t n,
                          Work<T>& w, T* dk, T* dv, bool dfk_has_chunk_part) {
  const int64_t M = f.M, Dv = h.Dv;
  gemm_tiles<T>(Shape::full, n, M, Dv, {w.xv.data(), Dv, 1}, w.dST.data(), M, w.dfk.data(), M,
                dfk_has_chunk_part, &w.ahead);
  for (int64_t r = 0; r < n; ++r)
    for (int64_t i = 0; i < M; ++i) w.dfk[size_t(r * M + i)] += w.dz[size_t(i)];
  gemm_tiles<T>(Shape::full, n, Dv, M, {w.fk.data(), M, 1}, w.dS.data(), Dv, w.dvx.data(), Dv, dfk_has_chunk_part,
                &w.ahead);
  // Streamed: written once, not read again (B = 1, H = 8, D = 64, 2 threads, fwd+bwd 1.08-1.10x
  // non-causal, causal 0.99-1.02x, median of 5 alternating runs; the forward's out rows the same
  // way: non-causal 0.94-0.98x, not taken).
  stream_rows_to(w.dvx.data(), n, Dv, dv + s0 * h.ldv, h.ldv);
  feature_rows_backward(f, h.D, w.xk.data(), h.D, n, h.pad ? h.pad + s0 : nullptr, w.fk.data(),
                        w.dfk.data(), dk + s0 * h.ldk, h.ldk);
}

template <class T>
void zero_key_grads(const Head<T>& h, int64_t s0, int64_t s1, T* dk, T* dv) {
  for (int64_t s = s0; s < s1; ++s) {
    std::fill(dk + s * h.ldk, dk + s * h.ldk + h.D, T(0));
    std::fill(dv + s * h.ldv, dv + s * h.ldv + h.Dv, T(0));
  }
}

// One head's tensors in the backward: den, dout read; dq, dk, dv written (rows of the strides of
// q, k, v).
template <class T>
struct HeadGrads {
  const T *den, *dout;
  T *dq, *dk, *dv;
};

// `states`: the forward's states of all keys, one per head of the run, or null (folded again).
template <class T>
void heads_backward_non_causal(HeadRun<T>& run, const LinearFeatures<T>& f, std::vector<HeadGrads<T>>& g,
                               const std::vector<T>& stabs, const std::vector<const T*>& states) {
  Work<T>& w = run.w;
  const Head<T>& h0 = run.heads[0];
  const int64_t M = f.M, D = h0.D, Dv = h0.Dv;
  if (states[0])
    run.each([&](int64_t x, const Head<T>&) { load_state(states[size_t(x)], w); });
  else
    fold_all_keys(f, run, stabs, h0.S);
  run.each([&](int64_t, const Head<T>&) { transpose_matrix(w.state.data(), M, Dv, Dv, w.stateT.data(), M); });
  for (int64_t t0 = 0; t0 < h0.T_; t0 += kC)
    run.each([&](int64_t x, const Head<T>& h) {
      const HeadGrads<T>& gx = g[size_t(x)];
      const int64_t nq = std::min(kC, h.T_ - t0);
      w.plan_prefetch([&](RowPrefetch& a) {
        h.prefetch_queries(a, t0 + kC, kC);
        h.prefetch_output_grads(a, gx.dout, t0 + kC, kC);
      });
      load_queries(f, h, t0, nq, w);
      num_grads(h, gx.den, gx.dout, t0, nq, w);
      T dots[kC];
      grads_through_state(M, Dv, nq, w, w.dfq.data(), dots);
      den_grads(M, nq, dots, w, w.dfq.data());
      feature_rows_backward(f, D, w.xq.data(), D, nq, nullptr, w.fq.data(), w.dfq.data(), gx.dq + t0 * h.ldq,
                            h.ldq);
      fold_query_grads(M, Dv, nq, w);
    });
  for (int64_t s0 = 0; s0 < h0.S; s0 += kC)
    run.each([&](int64_t x, const Head<T>& h) {
      const int64_t nk = std::min(kC, h.S - s0);
      w.plan_prefetch([&](RowPrefetch& a) { h.prefetch_keys(a, s0 + kC, kC); });
      load_keys(f, h, &stabs[size_t(x)], s0, nk, w, false);
      key_grads_from_state(f, h, s0, nk, w, g[size_t(x)].dk, g[size_t(x)].dv, false);
    });
}

// The state before each chunk of queries, [ceil(T / C), M · (Dv + 1)] per head into states[x]: the
// causal forward's `states`, folded again from k and v when the caller has none.
template <class T>
void fold_causal_states(HeadRun<T>& run, const LinearFeatures<T>& f, const std::vector<T>& stabs,
                        const std::vector<T*>& states) {
  const Head<T>& h0 = run.heads[0];
  const int64_t state_size = f.M * (h0.Dv + 1);
  fold_all_keys(f, run, stabs, h0.prefix());
  for (int64_t c0 = 0; c0 < h0.T_; c0 += kC)
    run.each([&](int64_t x, const Head<T>& h) {
      save_state(run.w, states[size_t(x)] + c0 / kC * state_size);
      const int64_t nk = h.chunk_keys(c0);
      if (nk > 0 && c0 + kC < h.T_) {
        run.w.plan_prefetch([&](RowPrefetch& a) { h.prefetch_keys(a, h.offset + c0 + kC, h.chunk_keys(c0 + kC)); });
        load_keys(f, h, &stabs[size_t(x)], h.offset + c0, nk, run.w, false);
        fold_keys(h, f.M, nk, run.w);
      }
    });
}

// One pass backward in time over the chunks: a chunk's queries get their gradient through the
// state before them (the forward's, `states`: one array per head of the run) and through their
// own chunk's keys; the gradient state [dS, dz] = Σ φ(q_t) [dnum_t, dden_t]ᵀ over the queries
// after a chunk gives its keys' gradients, plus the chunk's own masked terms. It replaced two
// passes (the queries' gradients through the state forward in time first, kept in a workspace of
// [T, M + Dv + 1] per head between them: 68 MB at B = 1, H = 8, T = 16384, D = 64) with the same
// bits; one thread per 4 heads there, backward 39.8 -> 35.0 ms, fwd+bwd 1.07x at T = 2K-16K.
template <class T>
void heads_backward_causal(HeadRun<T>& run, const LinearFeatures<T>& f, std::vector<HeadGrads<T>>& g,
                           const std::vector<T>& stabs, const std::vector<const T*>& states) {
  Work<T>& w = run.w;
  const Head<T>& h0 = run.heads[0];
  const int64_t M = f.M, D = h0.D, Dv = h0.Dv, state_size = M * (Dv + 1);
  run.each([&](int64_t x, const Head<T>& h) {
    zero_key_grads(h, h.causal_keys_end(), h.S, g[size_t(x)].dk, g[size_t(x)].dv);  // keys no query reaches
  });
  for (int64_t c0 = h0.T_ == 0 ? -kC : (h0.T_ - 1) / kC * kC; c0 >= 0; c0 -= kC)
    run.each([&](int64_t x, const Head<T>& h) {
      HeadGrads<T>& gx = g[size_t(x)];
      const int64_t nq = std::min(kC, h.T_ - c0), nk = h.chunk_keys(c0), s0 = h.offset + c0;
      if (c0 >= kC)
        w.plan_prefetch([&](RowPrefetch& a) {
          h.prefetch_queries(a, c0 - kC, kC);
          h.prefetch_output_grads(a, gx.dout, c0 - kC, kC);
          h.prefetch_keys(a, s0 - kC, h.chunk_keys(c0 - kC));
        });
      load_queries(f, h, c0, nq, w);
      num_grads(h, gx.den, gx.dout, c0, nq, w);
      // dφ(q) = dnum Sᵀ + dden zᵀ with the state [S, z] before the chunk.
      const T* state = states[size_t(x)] + c0 / kC * state_size;
      transpose_matrix(state, M, Dv, Dv, w.stateT.data(), M);
      std::copy(state + M * Dv, state + state_size, w.z.begin());
      T dots[kC];
      grads_through_state(M, Dv, nq, w, w.dfq.data(), dots);
      if (nk > 0) {
        load_keys(f, h, &stabs[size_t(x)], s0, nk, w, true);
        transpose_matrix(w.xv.data(), nk, Dv, Dv, w.vT.data(), kC);
        chunk_scores(M, nq, nk, w);
        // P = tril(dnum Vᵀ), the chunk's part of dnum · num, then + dden: the gradient of A.
        gemm_tiles<T>(Shape::c_lower, nq, nk, Dv, {w.dnum.data(), Dv, 1}, w.vT.data(), kC, w.P.data(), kC, false, &w.ahead);
        mask_upper(w.P.data(), nq, nk);
        for (int64_t i = 0; i < nq; ++i) dots[i] += dot(w.A.data() + i * kC, w.P.data() + i * kC, std::min(i + 1, nk));
      }
      den_grads(M, nq, dots, w, w.dfq.data());
      if (nk > 0) {
        for (int64_t i = 0; i < nq; ++i)
          for (int64_t j = 0; j <= std::min(i, nk - 1); ++j) w.P[size_t(i * kC + j)] += w.dden[size_t(i)];
        // dφ(q) += P φ(K); dφ(k) = Pᵀ φ(Q) + V dSᵀ + dz; dv = Aᵀ dnum + φ(K) dS.
        gemm_tiles<T>(Shape::a_lower, nq, M, nk, {w.P.data(), kC, 1}, w.fk.data(), M, w.dfq.data(), M, true, &w.ahead);
        gemm_tiles<T>(Shape::a_upper, nk, M, nq, {w.P.data(), 1, kC}, w.fq.data(), M, w.dfk.data(), M, false, &w.ahead);
        gemm_tiles<T>(Shape::a_upper, nk, Dv, nq, {w.A.data(), 1, kC}, w.dnum.data(), Dv, w.dvx.data(), Dv,
                      false, &w.ahead);
        key_grads_from_state(f, h, s0, nk, w, gx.dk, gx.dv, true);
      }
      fold_query_grads(M, Dv, nq, w);
      feature_rows_backward(f, D, w.xq.data(), D, nq, nullptr, w.fq.data(), w.dfq.data(), gx.dq + c0 * h.ldq,
                            h.ldq);
    });
  // The prefix keys, seen by every query: the gradient state now sums over all of them.
  for (int64_t s0 = 0; s0 < h0.prefix(); s0 += kC)
    run.each([&](int64_t x, const Head<T>& h) {
      const int64_t nk = std::min(kC, h.prefix() - s0);
      load_keys(f, h, &stabs[size_t(x)], s0, nk, w, false);
      key_grads_from_state(f, h, s0, nk, w, g[size_t(x)].dk, g[size_t(x)].dv, false);
    });
}

}  // namespace
}  // namespace linear_chunked

template <class T>
void linear_attention_backward(const AttnDims& d, bool causal, const bool* key_padding,
                               const LinearFeatures<T>& features, const T* q, const T* k,
                               const T* v, const T* den, const T* dout, T* dq, T* dk,
                               T* dv, T* work, const T* states) {
  namespace lc = linear_chunked;
  if (causal && !states && !work && d.B * d.H * d.T > 0)
    throw std::invalid_argument("linear_attention_backward: causal without the forward's states needs `work`");
  const int64_t state_size = linear_attention_states_size(d, causal, features.M) / std::max<int64_t>(1, d.B * d.H);
  lc::for_each_head_run(d, [&](int64_t first, int64_t last) {
    // dq, dk, dv have the row strides of q, k, v; out and dout are contiguous.
    std::vector<lc::Head<T>> hs;
    std::vector<lc::HeadGrads<T>> gs;
    std::vector<const T*> sts;
    std::vector<T*> folded;  // causal without the forward's states: folded again into `work`
    for (int64_t x = first; x < last; ++x) {
      if (causal && !states) folded.push_back(work + x * state_size);
      sts.push_back(states ? states + x * state_size : causal ? folded.back() : nullptr);
      const int64_t b = x / d.H, h = x % d.H, o = (b * d.T * d.H + h) * d.Dv;
      hs.push_back(lc::head_of(d, key_padding, q, k, v, b, h));
      gs.push_back({den + (b * d.H + h) * d.T, dout + o, dq + b * d.T * d.ldq() + h * d.D,
                    dk + b * d.S * d.ldk() + h * d.D, dv + b * d.S * d.ldv() + h * d.Dv});
    }
    lc::Work<T> w(d.D, features.M, d.Dv);
    lc::HeadRun<T> run(hs, w);
    const std::vector<T> stabs = lc::key_stabilisers(features, hs, w);
    if (!folded.empty()) lc::fold_causal_states(run, features, stabs, folded);
    if (causal)
      lc::heads_backward_causal(run, features, gs, stabs, sts);
    else
      lc::heads_backward_non_causal(run, features, gs, stabs, sts);
  });
}

int64_t linear_attention_backward_work(const AttnDims& d, bool causal, int64_t M) {
  return causal ? linear_attention_states_size(d, true, M) : 0;
}

#define TG_INSTANTIATE(T)                                                                  \
  template void linear_attention_backward<T>(const AttnDims&, bool, const bool*,           \
                                             const LinearFeatures<T>&, const T*, const T*, \
                                             const T*, const T*, const T*, T*, T*, T*, T*, \
                                             const T*);
TG_INSTANTIATE(float)
TG_INSTANTIATE(double)
#undef TG_INSTANTIATE

}  // namespace tg::kernels
