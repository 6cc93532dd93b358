#pragma once
// What the linear attention kernels' forward (attention_linear.cpp) and backward
// (attention_linear_backward.cpp) share: a head's rows in place (Head), the chunk buffers
// (Work), the feature maps, loading and folding a chunk of keys into the state, and runs of
// heads stepped together (HeadRun, for_each_head_run). Internal to those two files.
#include <algorithm>
#include <cmath>
#include <limits>
#include <type_traits>
#include <vector>

#include "ops/kernels/attention_linear.h"
#include "ops/kernels/attention_linear_tiles.h"
#include "ops/kernels/attention_tile.h"
#include "ops/kernels/copy_rows.h"
#include "ops/kernels/fast_math.h"
#include "ops/kernels/gemm.h"
#include "ops/kernels/parallel.h"
#include "ops/kernels/row_prefetch.h"
#include "ops/kernels/transpose_matrix.h"

// A namespace of its own: the sanitizer build compiles the kernels in batches, and names such as
// dot, transpose or Shape are other kernels' too.
namespace tg::kernels::linear_chunked {

using linear_tiles::gemm_tiles;
using linear_tiles::Shape;
using linear_tiles::Strided;
inline constexpr int64_t kC = kLinearChunk;

// Adds rows [r0, r0 + n) of x (row stride ld, w elements each; rows outside [0, rows) skipped) to
// the rows `ahead` asks the caches for (Work::plan_prefetch).
template <class T>
void prefetch_rows(RowPrefetch& ahead, const T* x, int64_t r0, int64_t n, int64_t rows, int64_t ld, int64_t w) {
  const int64_t first = std::max<int64_t>(r0, 0), end = std::min(r0 + n, rows);
  if (first < end) ahead.add(x + first * ld, end - first, ld, w, false);
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
  void prefetch_keys(RowPrefetch& ahead, int64_t s0, int64_t n) const {
    prefetch_rows(ahead, k, s0, n, S, ldk, D);
    prefetch_rows(ahead, v, s0, n, S, ldv, Dv);
  }
  void prefetch_queries(RowPrefetch& ahead, int64_t t0, int64_t n) const { prefetch_rows(ahead, q, t0, n, T_, ldq, D); }
  // ... and of the rows of dout (backward).
  void prefetch_output_grads(RowPrefetch& ahead, const T* dout, int64_t t0, int64_t n) const {
    prefetch_rows(ahead, dout, t0, n, T_, ldo, Dv);
  }
};

// The buffers of one head (C = kLinearChunk rows, M features).
template <class T>
struct Work {
  Work(int64_t D, int64_t M, int64_t Dv)
      : xq(size_t(kC * D)),
        xk(xq.size()),
        xv(size_t(kC * Dv)),
        dvx(xv.size()),
        fq(size_t(kC * M)),
        fk(fq.size()),
        fkT(fq.size()),
        dfk(fq.size()),
        dfq(fq.size()),
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
  std::vector<T> dvx;      // [C, Dv]: their gradient, before it is stored (backward)
  std::vector<T> fq, fk;   // [C, M]: features of a query chunk, of a key chunk
  std::vector<T> fkT;      // [M, C]: fk transposed (the right operand of φ(Q)φ(K)ᵀ)
  std::vector<T> dfk;      // [C, M]: gradient of fk
  std::vector<T> dfq;      // [C, M]: gradient of fq (backward)
  std::vector<T> A, P;     // [C, C]: tril(φ(Q)φ(K)ᵀ) and tril(dnum Vᵀ + dden) of a chunk
  std::vector<T> vT;       // [Dv, C]: a value chunk transposed
  std::vector<T> dnum;     // [C, Dv]: gradient of the chunk's numerators
  std::vector<T> dden;     // [C]: ... and of its denominators
  std::vector<T> state;    // [M, Dv]: S = Σ φ(k) vᵀ over the keys before the chunk
  std::vector<T> stateT;   // [Dv, M]: Sᵀ (backward)
  std::vector<T> z;        // [M]: z = Σ φ(k)
  std::vector<T> dS, dST;  // [M, Dv], [Dv, M]: the gradient of S (backward) and its transpose
  std::vector<T> dz;       // [M]: the gradient of z
  RowPrefetch ahead;       // the rows the head's next chunk reads (plan_prefetch)

  // A chunk step's prefetch: what the previous step left unasked is asked for at once, then
  // add(ahead) queues the rows the head's next chunk will read, asked for a few at a time before
  // each row tile of this step's products (gemm_tiles). One head's rows lie H·D floats apart, two
  // to a 4 KiB page, which the hardware prefetchers do not follow; asked for all at once (as
  // before), the prefetches changed nothing measurable. Spread, B = 1, H = 8, D = 64, 2 threads,
  // time before ÷ after (median of 5 alternating runs): non-causal forward 1.03 / 1.10 at
  // T = 4096 / 16384, fwd+bwd 1.08 / 1.10; causal 1.00-1.02; at T = 2048 0.98-1.02.
  template <class F>
  void plan_prefetch(F&& add) {
    ahead.flush();
    ahead.clear();
    add(ahead);
    ahead.spread_over(kPrefetchSteps);
  }
  static constexpr int64_t kPrefetchSteps = 16;
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
// dF is used as scratch. For elu in float, rows written whole go past the caches (stream_lanes):
// dq and dk are written once and not read again here, and written through the caches each line
// was read from memory first. B = 1, H = 8, D = 64, 2 threads, fwd+bwd, time before ÷ after
// (median of 5 alternating runs): non-causal 1.056 / 1.069 / 1.073 at T = 2K / 4K / 16K, causal
// 1.091 / 1.065 / 1.036.
template <class T>
void feature_rows_backward(const LinearFeatures<T>& f, int64_t D, const T* x, int64_t ld, int64_t n,
                           const bool* pad, const T* F, T* dF, T* dx, int64_t ldx) {
  const int64_t M = f.M;
  if (!f.W) {
    // φ'(x) = 1 for x > 0, else exp(x) = φ(x).
    for (int64_t r = 0; r < n; ++r) {
      const T *xr = x + r * ld, *Fr = F + r * M, *dFr = dF + r * M;
      T* dxr = dx + r * ldx;
      int64_t i = 0;
      if constexpr (std::is_same_v<T, float>)
        for (; i + kTileLanes <= M && streamable(dxr); i += kTileLanes) {
          const TileVec xv = load_lanes(xr + i), g = load_lanes(dFr + i);
          stream_lanes(dxr + i, xv > 0.0f ? g : g * load_lanes(Fr + i));
        }
      for (; i < M; ++i) dxr[i] = xr[i] > T(0) ? dFr[i] : dFr[i] * Fr[i];
    }
    if constexpr (std::is_same_v<T, float>) stream_fence();
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
                h.Dv, true, &w.ahead);
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
                false, &w.ahead);
  mask_upper(w.A.data(), nq, nk);
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
      run.w.plan_prefetch([&](RowPrefetch& a) { h.prefetch_keys(a, s0 + kC, std::min(kC, end - s0 - kC)); });
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
// save_state past the caches (stream_rows_to), for the causal forward's state before each chunk: written
// once, read only by the backward (34 MB at B = 1, H = 8, D = 64, T = 16384). Causal, time before ÷
// after (median of 5 alternating runs): forward 1.04 / 1.03 at T = 4K / 16K, fwd+bwd 1.02-1.03.
template <class T>
void stream_state(const Work<T>& w, T* to) {
  stream_rows_to(w.state.data(), 1, int64_t(w.state.size()), to, 0);
  stream_rows_to(w.z.data(), 1, int64_t(w.z.size()), to + w.state.size(), 0);
}
template <class T>
void load_state(const T* from, Work<T>& w) {
  std::copy(from, from + w.state.size(), w.state.begin());
  std::copy(from + w.state.size(), from + w.state.size() + w.z.size(), w.z.begin());
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

}  // namespace tg::kernels::linear_chunked
