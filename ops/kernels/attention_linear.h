#pragma once
// Linear attention kernels (Katharopoulos et al. 2020, "Transformers are RNNs"), per (b, h):
//   out_t = φ(q_t)ᵀ S_t / φ(q_t)ᵀ z_t,   S_t = Σ_s φ(k_s) v_sᵀ [M, Dv],   z_t = Σ_s φ(k_s) [M]
// over the keys s visible to query t (all non-padding keys; causal: also s <= t). The denominator
// φ(q)ᵀz is a sum of positive terms (φ > 0), so the output is a convex combination of the visible
// values and needs no eps; it is 0 exactly when no key is visible, and then the row's output
// (and its gradient) is zero.
//
// The chunked form (as flash-linear-attention's kernels): queries and keys in chunks of
// C = kLinearChunk rows. Non-causal: the state [S, z] of all keys once, then each query chunk
// against it. Causal: inside a chunk the quadratic masked form A = tril(φ(Q_c) φ(K_c)ᵀ),
// out_c = (φ(Q_c) S + A V_c) / (φ(Q_c) z + rowsum A), and between chunks the state carried by
// S += φ(K_c)ᵀ V_c, z += colsum φ(K_c). Every product is a register-tiled GEMM on operands that
// sit in cache (attention_linear_tiles.h). The backward: non-causal, the queries' gradients
// against the state of all keys, then the keys' and values' against the gradient state of all
// queries; causal, one pass backward in time carrying the state's gradient [dS, dz], each chunk's
// queries against the state before them, recomputing the chunk's A. The states [S, z] it needs
// are the forward's (`states`: the one of all keys, or causal the one before each chunk), or
// folded again from k and v when not given. Heads are stepped in runs, a thread's heads together
// chunk by chunk, at T >= 4096. Workspace per head: a few [C, C], [C, M] and [M, Dv] buffers;
// causal without the forward's states, those states (from the caller:
// linear_attention_backward_work).
#include <cstdint>

#include "ops/kernels/attention_mask.h"

namespace tg::kernels {

/// Rows per chunk (chosen by measurement: bench/README.md, "Chunked linear attention").
inline constexpr int64_t kLinearChunk = 64;

/// The feature map φ: elu(x) + 1 (M = D), or FAVOR+ positive random features (Choromanski et
/// al. 2021): φ(x)_i = exp(w_iᵀx̃ - |x̃|²/2 - c) / sqrt(M), x̃ = favor_scale · x, with W [M, D]
/// and c a stabiliser (per query row; one per head for the keys) that cancels in the ratio.
template <class T>
struct LinearFeatures {
  int64_t M = 0;         ///< features per row: D for elu
  const T* W = nullptr;  ///< FAVOR+ projection [M, D]; null for elu
  T favor_scale = T(1);  ///< FAVOR+: sqrt(scale), so φ(q)ᵀφ(k) estimates exp(scale · qᵀk)
};

/// q [B, T, H, D], k [B, S, H, D], v [B, S, H, Dv] -> out [B, T, H, Dv] and, when not null,
/// den [B, H, T] (each query's denominator φ(q)ᵀz, for backward). key_padding is [B, S]
/// (true = padding) or null; causal: query t sees keys s <= d.query_offset + t (top-left aligned
/// when 0). Rows of the strides in d (AttnDims).
/// `states` (when not null, linear_attention_states_size elements) receives the states [S, z]
/// (S [M, Dv] then z [M]) the backward starts from: non-causal each head's state of all its keys
/// [B, H, M · (Dv + 1)]; causal the state before each chunk of queries,
/// [B, H, ceil(T / kLinearChunk), M · (Dv + 1)].
template <class T>
void linear_attention_forward(const AttnDims& d, bool causal, const bool* key_padding,
                              const LinearFeatures<T>& features, const T* q, const T* k, const T* v,
                              T* out, T* den, T* states = nullptr);

/// Exact gradients given dout [B, T, H, Dv] and the forward's den [B, H, T] (not its out: the
/// denominators' gradient -(dout · out) / den is summed from the backward's own products):
/// writes dq [B, T, H, D], dk [B, S, H, D], dv [B, S, H, Dv] (overwriting, with the row strides
/// of q, k, v). Recomputes the features from q, k, v.
/// `states` (when not null) is the forward's: the keys' states are then read, not computed again
/// (one pass over k and v fewer; the same bits). Causal without them, `work` is the caller's
/// workspace of linear_attention_backward_work elements (so that the tensor allocator counts and
/// reuses it), into which they are folded first; otherwise it may be null.
template <class T>
void linear_attention_backward(const AttnDims& d, bool causal, const bool* key_padding,
                               const LinearFeatures<T>& features, const T* q, const T* k,
                               const T* v, const T* den, const T* dout, T* dq, T* dk,
                               T* dv, T* work, const T* states = nullptr);

/// The elements of the forward's `states` (see linear_attention_forward).
int64_t linear_attention_states_size(const AttnDims& d, bool causal, int64_t M);

/// The backward's workspace in elements when it is given no `states`: causal, the states before
/// each chunk (linear_attention_states_size); else 0.
int64_t linear_attention_backward_work(const AttnDims& d, bool causal, int64_t M);

/// The forward's useful floating-point operations (2 per multiply-add), summed over the B·H
/// heads, with E = Dv + 1 (the values and the normaliser z):
///   non-causal: 2·S·M·E (the state of all keys) + 2·T·M·E (each query against it);
///   causal, for each chunk of nq queries whose chunk holds nk keys and p = Σ_i min(i + 1, nk)
///   visible (query, key) pairs: 2·p·M (φ(Q)φ(K)ᵀ inside the chunk, its lower triangle only)
///   + 2·p·E (the weighted sum of [v, 1] with it) + 2·nq·M·E (φ(Q)·[S, z]) + 2·nk·M·E (the state
///   update, every chunk but the last), plus 2·P·M·E for the P = query_offset prefix keys.
/// The FAVOR+ projection is not counted. The backward's useful operations are twice these
/// (each product's two gradient products); its recomputation of A and of the states is not counted.
double linear_attention_flops(const AttnDims& d, bool causal, int64_t M);

/// FAVOR+'s orthogonal random projection W [M, D] for `seed`: blocks of D rows drawn Gaussian,
/// orthonormalised (Gram-Schmidt), each row rescaled to the norm of an independent Gaussian
/// D-vector (so rows are marginally N(0, I)). Deterministic in (seed, M, D).
template <class T>
void favor_projection(int64_t M, int64_t D, uint64_t seed, T* W);

}  // namespace tg::kernels
