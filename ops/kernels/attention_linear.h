#pragma once
// Linear attention kernels (Katharopoulos et al. 2020, "Transformers are RNNs"), per (b, h):
//   out_t = φ(q_t)ᵀ Σ_s φ(k_s) v_sᵀ / φ(q_t)ᵀ Σ_s φ(k_s)
// over the keys s visible to query t (all non-padding keys; causal: also s <= t). Both sums run
// over an augmented value v'_s = [v_s, 1] (width Dv + 1), so one GEMM gives numerator and
// denominator together. The denominator is a sum of positive terms (φ > 0), so the output is a
// convex combination of the visible values and needs no eps; it is 0 exactly when no key is
// visible, and then the row's output (and its gradient) is zero.
// Non-causal: the state KV' = Σ_s φ(k_s) v'_sᵀ [M, Dv + 1] once, O(S·M·Dv). Causal: chunks of
// kLinearChunk rows, the quadratic masked form inside a chunk and the running state across
// chunks, O(T·M·Dv + T·kLinearChunk·(M + Dv)). Workspace per head is a few chunks plus the state;
// backward keeps one [T, Dv + 1] buffer per head in flight.
#include <cstdint>

#include "ops/kernels/attention_mask.h"

namespace tg::kernels {

/// Rows per chunk of the causal form.
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

/// q [B, T, H, D], k [B, S, H, D], v [B, S, H, Dv] -> out [B, T, H, Dv]. key_padding is [B, S]
/// (true = padding) or null; causal: query t sees keys s <= d.query_offset + t (top-left aligned
/// when 0). Rows of the strides in d (AttnDims).
template <class T>
void linear_attention_forward(const AttnDims& d, bool causal, const bool* key_padding,
                              const LinearFeatures<T>& features, const T* q, const T* k, const T* v,
                              T* out);

/// Exact gradients given dout [B, T, H, Dv]: writes dq [B, T, H, D], dk [B, S, H, D],
/// dv [B, S, H, Dv] (overwriting). Recomputes the features and states from q, k, v.
template <class T>
void linear_attention_backward(const AttnDims& d, bool causal, const bool* key_padding,
                               const LinearFeatures<T>& features, const T* q, const T* k,
                               const T* v, const T* dout, T* dq, T* dk, T* dv);

/// FAVOR+'s orthogonal random projection W [M, D] for `seed`: blocks of D rows drawn Gaussian,
/// orthonormalised (Gram-Schmidt), each row rescaled to the norm of an independent Gaussian
/// D-vector (so rows are marginally N(0, I)). Deterministic in (seed, M, D).
template <class T>
void favor_projection(int64_t M, int64_t D, uint64_t seed, T* W);

}  // namespace tg::kernels
