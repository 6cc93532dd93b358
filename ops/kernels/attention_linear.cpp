#include "ops/kernels/attention_linear.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <type_traits>
#include <vector>

#include "ops/kernels/attention_linear_tiles.h"
#include "ops/kernels/attention_tile.h"
#include "ops/kernels/copy_rows.h"
#include "ops/kernels/fast_math.h"
#include "ops/kernels/gemm.h"
#include "ops/kernels/parallel.h"
#include "ops/kernels/philox.h"
#include "ops/kernels/transpose_matrix.h"

namespace tg::kernels {
namespace {
// A namespace of its own inside the file's: the sanitizer build compiles the kernels in batches,
// and names such as dot, transpose or Shape are other kernels' too.
namespace linear_chunked {

using linear_tiles::gemm_tiles;
using linear_tiles::Shape;
using linear_tiles::Strided;
constexpr int64_t kC = kLinearChunk;

// Asks the caches for rows [r0, r0 + n) of x (row stride ld, w elements each; rows outside
// [0, rows) skipped) ahead of their use: one head's rows lie H·D apart, too sparse for the
// hardware prefetcher, and waiting for them cost a third of the kernel's time.
template <class T>
void prefetch_rows(const T* x, int64_t r0, int64_t n, int64_t rows, int64_t ld, int64_t w) {
  constexpr int64_t kLine = 64 / sizeof(T);
  for (int64_t r = std::max<int64_t>(r0, 0); r < std::min(r0 + n, rows); ++r)
    for (int64_t j = 0; j < w; j += kLine) __builtin_prefetch(x + r * ld + j, 0, 2);
}

// One head of one batch element, read in place with the row strides of AttnDims.
template <class T>
struct Head {
  const T *q, *k, *v;
  const bool* pad;  // [S] or null
  int64_t T_, S, D, Dv;
  int64_t ldq, ldk, ldv;  // row strides of q, k, v and of their gradients (AttnDims)
  int64_t ldo;            // of out and dout (contiguous): H*Dv
  // Causal: query t sits at key position offset + t. Keys [0, offset) are the prefix every
  // query sees (one state before the first chunk); the chunks pair query c0 + i with key
  // offset + c0 + i, and keys from offset + T on are seen by no query.
  int64_t offset;

  int64_t prefix() const { return std::min(offset, S); }
  int64_t causal_keys_end() const { return std::clamp(offset + T_, prefix(), S); }
  // Keys in the causal chunk of the queries from c0 (fewer than its queries when S runs out).
  int64_t chunk_keys(int64_t c0) const {
    return std::clamp<int64_t>(causal_keys_end() - offset - c0, 0, kC);
  }
  const T* v_rows(int64_t s0) const { return v + s0 * ldv; }
  // prefetch_rows of n keys (and values) from s0, of n queries from t0.
  void prefetch_keys(int64_t s0, int64_t n) const {
    prefetch_rows(k, s0, n, S, ldk, D);
    prefetch_rows(v, s0, n, S, ldv, Dv);
  }
  void prefetch_queries(int64_t t0, int64_t n) const { prefetch_rows(q, t0, n, T_, ldq, D); }
  // ... and of the rows of out and dout (backward).
  void prefetch_outputs(const T* out, const T* dout, int64_t t0, int64_t n) const {
    prefetch_rows(out, t0, n, T_, ldo, Dv);
    prefetch_rows(dout, t0, n, T_, ldo, Dv);
  }
};

// The buffers of one head (C = kLinearChunk rows, M features).
template <class T>
struct Work {
  Work(int64_t D, int64_t M, int64_t Dv)
      : xq(size_t(kC * D)),
        xk(xq.size()),
        xv(size_t(kC * Dv)),
        xo(xv.size()),
        fq(size_t(kC * M)),
        fk(fq.size()),
        fkT(fq.size()),
        dfk(fq.size()),
        A(size_t(kC * kC)),
        P(A.size()),
        vT(size_t(Dv * kC)),
        dnum(size_t(kC * Dv)),
        dden(size_t(kC)),
        state(size_t(M * Dv)),
        stateT(state.size()),
        z(size_t(M)),
        dS(state.size()),
        dST(state.size()),
        dz(z.size()) {}
  std::vector<T> xq, xk;   // [C, D]: a chunk of q rows, of k rows, gathered from their layout
  std::vector<T> xv;       // [C, Dv]: a chunk of v rows
  std::vector<T> xo;       // [C, Dv]: a chunk of out rows (backward)
  std::vector<T> fq, fk;   // [C, M]: features of a query chunk, of a key chunk
  std::vector<T> fkT;      // [M, C]: fk transposed (the right operand of φ(Q)φ(K)ᵀ)
  std::vector<T> dfk;      // [C, M]: gradient of fk
  std::vector<T> A, P;     // [C, C]: tril(φ(Q)φ(K)ᵀ) and tril(dnum Vᵀ + dden) of a chunk
  std::vector<T> vT;       // [Dv, C]: a value chunk transposed
  std::vector<T> dnum;     // [C, Dv]: gradient of the chunk's numerators
  std::vector<T> dden;     // [C]: ... and of its denominators
  std::vector<T> state;    // [M, Dv]: S = Σ φ(k) vᵀ over the keys before the chunk
  std::vector<T> stateT;   // [Dv, M]: Sᵀ (backward)
  std::vector<T> z;        // [M]: z = Σ φ(k)
  std::vector<T> dS, dST;  // [M, Dv], [Dv, M]: the gradient of S (backward) and its transpose
  std::vector<T> dz;       // [M]: the gradient of z
};

using linear_tiles::dot;

// F[0, M) = elu(x) + 1; for float a whole vector register at a time through softmax_exp (its
// argument clamped to x <= 0, where elu takes the exponential; NaN stays NaN, -inf gives 0).
template <class T>
void elu_plus_one(const T* x, int64_t M, T* F) {
  int64_t i = 0;
  if constexpr (std::is_same_v<T, float>) {
    for (; i + kTileLanes <= M; i += kTileLanes) {
      TileVec v = load_lanes(x + i);
      TileVec at_most_zero = v > 0.0f ? TileVec{} : v;
      store_lanes(F + i, v > 0.0f ? v + 1.0f : softmax_exp(at_most_zero));
    }
    for (; i < M; ++i) F[i] = x[i] > 0.0f ? x[i] + 1.0f : fast_exp(x[i]);
  }
  for (; i < M; ++i) F[i] = x[i] > T(0) ? x[i] + T(1) : std::exp(x[i]);
}

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
    for (int64_t r = 0; r < n; ++r) elu_plus_one(x + r * ld, M, F + r * M);
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

// dx rows (stride ldx) = dF · ∂φ/∂x given F = φ(x) of the same rows; padded rows get zeros.
// dF is used as scratch.
template <class T>
void feature_rows_backward(const LinearFeatures<T>& f, int64_t D, const T* x, int64_t ld, int64_t n,
                           const bool* pad, const T* F, T* dF, T* dx, int64_t ldx) {
  const int64_t M = f.M;
  if (!f.W) {
    // φ'(x) = 1 for x > 0, else exp(x) = φ(x).
    for (int64_t r = 0; r < n; ++r) {
      const T *xr = x + r * ld, *Fr = F + r * M, *dFr = dF + r * M;
      T* dxr = dx + r * ldx;
      for (int64_t i = 0; i < M; ++i) dxr[i] = xr[i] > T(0) ? dFr[i] : dFr[i] * Fr[i];
    }
  } else {
    // ∂φ_i/∂x = a φ_i (w_i - a x): dx = a (dF∘F) W - a² x Σ_i (dF∘F)_i.
    const T a = f.favor_scale;
    for (int64_t i = 0; i < n * M; ++i) dF[i] *= F[i];
    gemm<T>(false, false, n, D, M, a, dF, M, f.W, D, T(0), dx, ldx);
    for (int64_t r = 0; r < n; ++r) {
      T g = 0;
      for (int64_t i = 0; i < M; ++i) g += dF[r * M + i];
      for (int64_t j = 0; j < D; ++j) dx[r * ldx + j] -= a * a * g * x[r * ld + j];
    }
  }
  if (pad)
    for (int64_t r = 0; r < n; ++r)
      if (pad[r]) std::fill(dx + r * ldx, dx + r * ldx + D, T(0));
}

// FAVOR+'s key stabiliser: the largest pre-activation over the head's non-padding keys.
template <class T>
T key_stabiliser(const LinearFeatures<T>& f, const Head<T>& h, T* scratch) {
  T c = -std::numeric_limits<T>::infinity();
  for (int64_t s0 = 0; s0 < h.S; s0 += kC) {
    int64_t n = std::min(kC, h.S - s0);
    favor_logits(f, h.D, h.k + s0 * h.ldk, h.ldk, n, scratch);
    for (int64_t r = 0; r < n; ++r)
      if (!h.pad || !h.pad[s0 + r])
        c = std::max(c, *std::max_element(scratch + r * f.M, scratch + (r + 1) * f.M));
  }
  return std::isfinite(c) ? c : T(0);
}

// w.xq [n, D] = the n query rows from t0, w.fq their features. A chunk's rows are copied first
// (copy_rows): a loop of loads alone keeps many cache misses in flight, where computing on them
// in place waited for each.
template <class T>
void load_queries(const LinearFeatures<T>& f, const Head<T>& h, int64_t t0, int64_t n, Work<T>& w) {
  copy_rows(h.q + t0 * h.ldq, h.ldq, n, h.D, w.xq.data());
  feature_rows(f, h.D, w.xq.data(), h.D, n, nullptr, nullptr, w.fq.data());
}

// w.xk, w.xv = the n key and value rows from s0, w.fk [n, M] = φ(k) (padding rows zero), and
// w.fkT = fkᵀ when `transposed`.
template <class T>
void load_keys(const LinearFeatures<T>& f, const Head<T>& h, const T* key_stab, int64_t s0,
               int64_t n, Work<T>& w, bool transposed) {
  copy_rows(h.k + s0 * h.ldk, h.ldk, n, h.D, w.xk.data());
  copy_rows(h.v_rows(s0), h.ldv, n, h.Dv, w.xv.data());
  feature_rows(f, h.D, w.xk.data(), h.D, n, h.pad ? h.pad + s0 : nullptr, key_stab, w.fk.data());
  if (transposed) transpose_matrix(w.fk.data(), n, f.M, f.M, w.fkT.data(), kC);
}

// state [M, Dv] += fkᵀ V and z [M] += colsum fk, over the n keys in w.fk and w.xv.
template <class T>
void fold_keys(const Head<T>& h, int64_t M, int64_t n, Work<T>& w) {
  gemm_tiles<T>(Shape::full, M, h.Dv, n, {w.fk.data(), 1, M}, w.xv.data(), h.Dv, w.state.data(),
                h.Dv, true);
  for (int64_t r = 0; r < n; ++r)
    for (int64_t i = 0; i < M; ++i) w.z[size_t(i)] += w.fk[size_t(r * M + i)];
}

// Zeros A[i, j] for j > i (row stride kC): the causal mask inside a chunk.
template <class T>
void mask_upper(T* A, int64_t nq, int64_t nk) {
  for (int64_t i = 0; i < nq; ++i)
    for (int64_t j = i + 1; j < nk; ++j) A[i * kC + j] = T(0);
}

// w.A = tril(φ(Q_c) φ(K_c)ᵀ) [nq, nk] from w.fq and w.fkT.
template <class T>
void chunk_scores(int64_t M, int64_t nq, int64_t nk, Work<T>& w) {
  gemm_tiles<T>(Shape::c_lower, nq, nk, M, {w.fq.data(), M, 1}, w.fkT.data(), kC, w.A.data(), kC,
                false);
  mask_upper(w.A.data(), nq, nk);
}

// One chunk of the forward: the nq queries from c0 against the state of the keys before them
// (w.state, w.z) and, causal, their own chunk of keys, which then join the state.
template <class T>
void forward_chunk(const Head<T>& h, bool causal, const LinearFeatures<T>& f, T stab, int64_t c0, T* out,
                   T* den, Work<T>& w) {
  const int64_t M = f.M, Dv = h.Dv;
  const int64_t nq = std::min(kC, h.T_ - c0), nk = causal ? h.chunk_keys(c0) : 0;
  h.prefetch_queries(c0 + kC, kC);
  if (causal) h.prefetch_keys(h.offset + c0 + kC, h.chunk_keys(c0 + kC));
  load_queries(f, h, c0, nq, w);
  T* o = out + c0 * h.ldo;
  // Numerators φ(Q)·S straight into out, denominators φ(Q)·z.
  gemm_tiles<T>(Shape::full, nq, Dv, M, {w.fq.data(), M, 1}, w.state.data(), Dv, o, h.ldo, false);
  T dens[kC];
  for (int64_t r = 0; r < nq; ++r) dens[r] = dot(w.fq.data() + r * M, w.z.data(), M);
  if (nk > 0) {
    const int64_t s0 = h.offset + c0;
    load_keys(f, h, &stab, s0, nk, w, true);
    chunk_scores(M, nq, nk, w);
    gemm_tiles<T>(Shape::a_lower, nq, Dv, nk, {w.A.data(), kC, 1}, w.xv.data(), Dv, o, h.ldo, true);
    for (int64_t r = 0; r < nq; ++r) dens[r] += linear_tiles::sum(w.A.data() + r * kC, std::min(r + 1, nk));
    if (c0 + kC < h.T_) fold_keys(h, M, nk, w);  // the last chunk's keys serve no later query
  }
  for (int64_t r = 0; r < nq; ++r) {
    T inv = dens[r] > T(0) ? T(1) / dens[r] : T(0);
    for (int64_t j = 0; j < Dv; ++j) o[r * h.ldo + j] *= inv;
    if (den) den[c0 + r] = dens[r];
  }
}

// A run of heads stepped together chunk by chunk: each head keeps its own states and their
// gradients (Work's state, stateT, z, dS, dST, dz), swapped into the shared Work for its step. The
// heads' rows of q, k, v, out and their gradients, neighbours in each [B, T, H, D] row, are then
// read and written while in cache, where head by head each streamed from memory in pieces H·D
// floats apart. Each head's arithmetic is unchanged.
template <class T>
struct HeadRun {
  struct Saved {
    std::vector<T> state, stateT, z, dS, dST, dz;
  };
  const std::vector<Head<T>>& heads;
  Work<T>& w;
  std::vector<Saved> saved;

  HeadRun(const std::vector<Head<T>>& hs, Work<T>& work) : heads(hs), w(work) {
    saved.resize(hs.size());
    for (Saved& x : saved)
      x = {std::vector<T>(w.state.size()), std::vector<T>(w.stateT.size()), std::vector<T>(w.z.size()),
           std::vector<T>(w.dS.size()), std::vector<T>(w.dST.size()), std::vector<T>(w.dz.size())};
  }
  int64_t size() const { return int64_t(heads.size()); }

  // fn(x, head x) for every head of the run in turn, each with its own states in w.
  template <class F>
  void each(F&& fn) {
    for (int64_t x = 0; x < size(); ++x) {
      swap_states(saved[size_t(x)]);  // head x's into w
      fn(x, heads[size_t(x)]);
      swap_states(saved[size_t(x)]);  // and back
    }
  }

 private:
  void swap_states(Saved& x) {
    std::swap(w.state, x.state), std::swap(w.stateT, x.stateT), std::swap(w.z, x.z);
    std::swap(w.dS, x.dS), std::swap(w.dST, x.dST), std::swap(w.dz, x.dz);
  }
};

// FAVOR+'s key stabiliser of each head of a run (0 for elu).
template <class T>
std::vector<T> key_stabilisers(const LinearFeatures<T>& f, const std::vector<Head<T>>& heads, Work<T>& w) {
  std::vector<T> stabs;
  for (const Head<T>& h : heads) stabs.push_back(f.W ? key_stabiliser(f, h, w.fk.data()) : T(0));
  return stabs;
}

// The state of keys [0, end) of every head of a run, chunk by chunk.
template <class T>
void fold_all_keys(const LinearFeatures<T>& f, HeadRun<T>& run, const std::vector<T>& stabs, int64_t end) {
  for (int64_t s0 = 0; s0 < end; s0 += kC)
    run.each([&](int64_t x, const Head<T>& h) {
      const int64_t nk = std::min(kC, end - s0);
      h.prefetch_keys(s0 + kC, std::min(kC, end - s0 - kC));
      load_keys(f, h, &stabs[size_t(x)], s0, nk, run.w, false);
      fold_keys(h, f.M, nk, run.w);
    });
}

// A head's state of all its keys, [M · (Dv + 1)]: S [M, Dv] then z [M] (linear_attention_forward).
template <class T>
void save_state(const Work<T>& w, T* to) {
  std::copy(w.state.begin(), w.state.end(), to);
  std::copy(w.z.begin(), w.z.end(), to + w.state.size());
}
template <class T>
void load_state(const T* from, Work<T>& w) {
  std::copy(from, from + w.state.size(), w.state.begin());
  std::copy(from + w.state.size(), from + w.state.size() + w.z.size(), w.z.begin());
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
      if (causal && states[size_t(x)]) save_state(w, states[size_t(x)] + c0 / kC * state_size);
      forward_chunk(h, causal, f, stabs[size_t(x)], c0, outs[size_t(x)], dens[size_t(x)], w);
    });
}

// w.dnum, w.dden of the nq queries from c0: out = num / den gives dnum = dout / den and
// dden = -(dout · out) / den (both zero when den is 0).
template <class T>
void chunk_output_grads(const Head<T>& h, const T* out, const T* den, const T* dout, int64_t c0,
                        int64_t nq, Work<T>& w) {
  copy_rows(dout + c0 * h.ldo, h.ldo, nq, h.Dv, w.dnum.data());
  copy_rows(out + c0 * h.ldo, h.ldo, nq, h.Dv, w.xo.data());
  for (int64_t r = 0; r < nq; ++r) {
    T* g = w.dnum.data() + r * h.Dv;
    T inv = den[c0 + r] > T(0) ? T(1) / den[c0 + r] : T(0);
    w.dden[size_t(r)] = -dot(g, w.xo.data() + r * h.Dv, h.Dv) * inv;
    for (int64_t j = 0; j < h.Dv; ++j) g[j] *= inv;
  }
}

// dF [n, M] = dnum stateᵀ + dden zᵀ for n rows (w.stateT holds stateᵀ; dnum, dden rows from 0).
template <class T>
void grads_through_state(int64_t M, int64_t Dv, int64_t n, Work<T>& w, T* dF, bool accumulate) {
  gemm_tiles<T>(Shape::full, n, M, Dv, {w.dnum.data(), Dv, 1}, w.stateT.data(), M, dF, M,
                accumulate);
  for (int64_t r = 0; r < n; ++r)
    for (int64_t i = 0; i < M; ++i) dF[r * M + i] += w.dden[size_t(r)] * w.z[size_t(i)];
}

// The gradient state: dS [M, Dv] += fqᵀ dnum, dz [M] += fqᵀ dden over n query rows in w.fq, and
// dST = dSᵀ after.
template <class T>
void fold_query_grads(int64_t M, int64_t Dv, int64_t n, Work<T>& w) {
  gemm_tiles<T>(Shape::full, M, Dv, n, {w.fq.data(), 1, M}, w.dnum.data(), Dv, w.dS.data(), Dv,
                true);
  for (int64_t r = 0; r < n; ++r)
    for (int64_t i = 0; i < M; ++i) w.dz[size_t(i)] += w.fq[size_t(r * M + i)] * w.dden[size_t(r)];
  transpose_matrix(w.dS.data(), M, Dv, Dv, w.dST.data(), M);
}

// Gradients of the n keys from s0 (features in w.fk) through the gradient state alone:
// dφ(k) = V dSᵀ + dz, dv = φ(k) dS; writes dk and dv rows.
template <class T>
void key_grads_from_state(const LinearFeatures<T>& f, const Head<T>& h, int64_t s0, int64_t n,
                          Work<T>& w, T* dk, T* dv, bool dfk_has_chunk_part) {
  const int64_t M = f.M, Dv = h.Dv;
  gemm_tiles<T>(Shape::full, n, M, Dv, {w.xv.data(), Dv, 1}, w.dST.data(), M, w.dfk.data(), M,
                dfk_has_chunk_part);
  for (int64_t r = 0; r < n; ++r)
    for (int64_t i = 0; i < M; ++i) w.dfk[size_t(r * M + i)] += w.dz[size_t(i)];
  gemm_tiles<T>(Shape::full, n, Dv, M, {w.fk.data(), M, 1}, w.dS.data(), Dv, dv + s0 * h.ldv,
                h.ldv, dfk_has_chunk_part);
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

// One head's tensors in the backward: out, den, dout read; dq, dk, dv written (rows of the
// strides of q, k, v); and, causal, its part of the caller's workspace [T, M + Dv + 1]: its
// queries' feature gradients dF [T, M] and [dnum, dden] [T, Dv], [T] between the passes.
template <class T>
struct HeadGrads {
  const T *out, *den, *dout;
  T *dq, *dk, *dv;
  T* work;
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
      h.prefetch_queries(t0 + kC, kC);
      h.prefetch_outputs(gx.out, gx.dout, t0 + kC, kC);
      load_queries(f, h, t0, nq, w);
      chunk_output_grads(h, gx.out, gx.den, gx.dout, t0, nq, w);
      grads_through_state(M, Dv, nq, w, w.dfk.data(), false);  // dfk as scratch for dφ(q)
      feature_rows_backward(f, D, w.xq.data(), D, nq, nullptr, w.fq.data(), w.dfk.data(), gx.dq + t0 * h.ldq,
                            h.ldq);
      fold_query_grads(M, Dv, nq, w);
    });
  for (int64_t s0 = 0; s0 < h0.S; s0 += kC)
    run.each([&](int64_t x, const Head<T>& h) {
      const int64_t nk = std::min(kC, h.S - s0);
      h.prefetch_keys(s0 + kC, kC);
      load_keys(f, h, &stabs[size_t(x)], s0, nk, w, false);
      key_grads_from_state(f, h, s0, nk, w, g[size_t(x)].dk, g[size_t(x)].dv, false);
    });
}

// `states`: the forward's state before each chunk, one array per head of the run, or null
// (folded again).
template <class T>
void heads_backward_causal(HeadRun<T>& run, const LinearFeatures<T>& f, std::vector<HeadGrads<T>>& g,
                           const std::vector<T>& stabs, const std::vector<const T*>& states) {
  Work<T>& w = run.w;
  const Head<T>& h0 = run.heads[0];
  const int64_t M = f.M, D = h0.D, Dv = h0.Dv;
  run.each([&](int64_t x, const Head<T>& h) {
    zero_key_grads(h, h.causal_keys_end(), h.S, g[size_t(x)].dk, g[size_t(x)].dv);  // keys no query reaches
  });
  // Head x's dF [T, M], dnum_all [T, Dv] and dden_all [T] in its part of the workspace.
  auto dF = [&](int64_t x) { return g[size_t(x)].work; };
  auto dnum_all = [&](int64_t x) { return g[size_t(x)].work + h0.T_ * M; };
  auto dden_all = [&](int64_t x) { return g[size_t(x)].work + h0.T_ * (M + Dv); };

  // Pass 1, forward in time: dφ(q) = dnum Sᵀ + dden zᵀ with the state of the keys before (the
  // forward's, or folded again).
  const bool saved = states[0] != nullptr;
  const int64_t state_size = M * (Dv + 1);
  if (!saved) fold_all_keys(f, run, stabs, h0.prefix());
  for (int64_t c0 = 0; c0 < h0.T_; c0 += kC)
    run.each([&](int64_t x, const Head<T>& h) {
      HeadGrads<T>& gx = g[size_t(x)];
      const int64_t nq = std::min(kC, h.T_ - c0), nk = h.chunk_keys(c0);
      h.prefetch_outputs(gx.out, gx.dout, c0 + kC, kC);
      if (saved) load_state(states[size_t(x)] + c0 / kC * state_size, w);
      else h.prefetch_keys(h.offset + c0 + kC, h.chunk_keys(c0 + kC));
      transpose_matrix(w.state.data(), M, Dv, Dv, w.stateT.data(), M);
      chunk_output_grads(h, gx.out, gx.den, gx.dout, c0, nq, w);
      std::copy(w.dnum.begin(), w.dnum.begin() + nq * Dv, dnum_all(x) + c0 * Dv);
      std::copy(w.dden.begin(), w.dden.begin() + nq, dden_all(x) + c0);
      grads_through_state(M, Dv, nq, w, dF(x) + c0 * M, false);
      if (!saved && nk > 0 && c0 + kC < h.T_) {
        load_keys(f, h, &stabs[size_t(x)], h.offset + c0, nk, w, false);
        fold_keys(h, M, nk, w);
      }
    });

  // Pass 2, backward in time: the gradient state [dS, dz] = Σ φ(q_t) [dnum_t, dden_t]ᵀ over the
  // queries after a chunk gives its keys' gradients (plus the chunk's own masked terms).
  for (int64_t c0 = h0.T_ == 0 ? -kC : (h0.T_ - 1) / kC * kC; c0 >= 0; c0 -= kC)
    run.each([&](int64_t x, const Head<T>& h) {
      HeadGrads<T>& gx = g[size_t(x)];
      const int64_t nq = std::min(kC, h.T_ - c0), nk = h.chunk_keys(c0), s0 = h.offset + c0;
      if (c0 >= kC) {
        h.prefetch_queries(c0 - kC, kC);
        h.prefetch_keys(s0 - kC, h.chunk_keys(c0 - kC));
      }
      T* dFc = dF(x) + c0 * M;
      load_queries(f, h, c0, nq, w);
      std::copy(dnum_all(x) + c0 * Dv, dnum_all(x) + (c0 + nq) * Dv, w.dnum.begin());
      std::copy(dden_all(x) + c0, dden_all(x) + c0 + nq, w.dden.begin());
      if (nk > 0) {
        load_keys(f, h, &stabs[size_t(x)], s0, nk, w, true);
        transpose_matrix(w.xv.data(), nk, Dv, Dv, w.vT.data(), kC);
        chunk_scores(M, nq, nk, w);
        // P = tril(dnum Vᵀ + dden): the gradient of A.
        gemm_tiles<T>(Shape::c_lower, nq, nk, Dv, {w.dnum.data(), Dv, 1}, w.vT.data(), kC, w.P.data(), kC, false);
        for (int64_t i = 0; i < nq; ++i)
          for (int64_t j = 0; j <= std::min(i, nk - 1); ++j) w.P[size_t(i * kC + j)] += w.dden[size_t(i)];
        mask_upper(w.P.data(), nq, nk);
        // dφ(q) += P φ(K); dφ(k) = Pᵀ φ(Q) + V dSᵀ + dz; dv = Aᵀ dnum + φ(K) dS.
        gemm_tiles<T>(Shape::a_lower, nq, M, nk, {w.P.data(), kC, 1}, w.fk.data(), M, dFc, M, true);
        gemm_tiles<T>(Shape::a_upper, nk, M, nq, {w.P.data(), 1, kC}, w.fq.data(), M, w.dfk.data(), M, false);
        gemm_tiles<T>(Shape::a_upper, nk, Dv, nq, {w.A.data(), 1, kC}, w.dnum.data(), Dv, gx.dv + s0 * h.ldv, h.ldv,
                      false);
        key_grads_from_state(f, h, s0, nk, w, gx.dk, gx.dv, true);
      }
      fold_query_grads(M, Dv, nq, w);
      feature_rows_backward(f, D, w.xq.data(), D, nq, nullptr, w.fq.data(), dFc, gx.dq + c0 * h.ldq, h.ldq);
    });
  // The prefix keys, seen by every query: the gradient state now sums over all of them.
  for (int64_t s0 = 0; s0 < h0.prefix(); s0 += kC)
    run.each([&](int64_t x, const Head<T>& h) {
      const int64_t nk = std::min(kC, h.prefix() - s0);
      load_keys(f, h, &stabs[size_t(x)], s0, nk, w, false);
      key_grads_from_state(f, h, s0, nk, w, g[size_t(x)].dk, g[size_t(x)].dv, false);
    });
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

// fn(first, last) for runs of heads [first, last) of the B·H: one run to a thread, stepped
// together (HeadRun), when there are enough heads and their rows are long (T >= 4096); else one
// head at a time (shorter rows stay in cache anyway; at T = 2048 a run took up to 1.4x the time).
template <class F>
void for_each_head_run(const AttnDims& d, F&& fn) {
  const int64_t heads = d.B * d.H, threads = get_num_threads();
  if (heads < threads || threads == 1 || std::max(d.T, d.S) < 4096) {
    for_each_head(d, [&](int64_t b, int64_t h) { fn(b * d.H + h, b * d.H + h + 1); });
    return;
  }
  const int64_t per_run = (heads + threads - 1) / threads;
  parallel_for(0, (heads + per_run - 1) / per_run, 1, [&](int64_t lo, int64_t hi) {
    for (int64_t r = lo; r < hi; ++r) fn(r * per_run, std::min(heads, (r + 1) * per_run));
  });
}

}  // namespace linear_chunked
}  // namespace

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

template <class T>
void linear_attention_backward(const AttnDims& d, bool causal, const bool* key_padding,
                               const LinearFeatures<T>& features, const T* q, const T* k,
                               const T* v, const T* out, const T* den, const T* dout, T* dq, T* dk,
                               T* dv, T* work, const T* states) {
  namespace lc = linear_chunked;
  const int64_t per_head = causal ? d.T * (features.M + d.Dv + 1) : 0;
  const int64_t state_size = linear_attention_states_size(d, causal, features.M) / std::max<int64_t>(1, d.B * d.H);
  lc::for_each_head_run(d, [&](int64_t first, int64_t last) {
    // dq, dk, dv have the row strides of q, k, v; out and dout are contiguous.
    std::vector<lc::Head<T>> hs;
    std::vector<lc::HeadGrads<T>> gs;
    std::vector<const T*> sts;
    for (int64_t x = first; x < last; ++x) {
      sts.push_back(states ? states + x * state_size : nullptr);
      const int64_t b = x / d.H, h = x % d.H, o = (b * d.T * d.H + h) * d.Dv;
      hs.push_back(lc::head_of(d, key_padding, q, k, v, b, h));
      gs.push_back({out + o, den + (b * d.H + h) * d.T, dout + o, dq + b * d.T * d.ldq() + h * d.D,
                    dk + b * d.S * d.ldk() + h * d.D, dv + b * d.S * d.ldv() + h * d.Dv,
                    per_head ? work + x * per_head : nullptr});
    }
    lc::Work<T> w(d.D, features.M, d.Dv);
    lc::HeadRun<T> run(hs, w);
    const std::vector<T> stabs = lc::key_stabilisers(features, hs, w);
    if (causal)
      lc::heads_backward_causal(run, features, gs, stabs, sts);
    else
      lc::heads_backward_non_causal(run, features, gs, stabs, sts);
  });
}

int64_t linear_attention_states_size(const AttnDims& d, bool causal, int64_t M) {
  const int64_t chunks = causal ? (d.T + kLinearChunk - 1) / kLinearChunk : 1;
  return d.B * d.H * chunks * M * (d.Dv + 1);
}

int64_t linear_attention_backward_work(const AttnDims& d, bool causal, int64_t M) {
  return causal ? d.B * d.H * d.T * (M + d.Dv + 1) : 0;
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
  template void linear_attention_backward<T>(const AttnDims&, bool, const bool*,           \
                                             const LinearFeatures<T>&, const T*, const T*, \
                                             const T*, const T*, const T*, const T*, T*,   \
                                             T*, T*, T*, const T*);                        \
  template void favor_projection<T>(int64_t, int64_t, uint64_t, T*);
TG_INSTANTIATE(float)
TG_INSTANTIATE(double)
#undef TG_INSTANTIATE

}  // namespace tg::kernels
