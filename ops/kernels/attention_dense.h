#pragma once
// Dense attention kernels: the weights P = softmax(Q Kᵀ · scale + mask) are materialised
// ([B, H, T, S]), the reference every other variant is checked against.
#include "ops/kernels/attention_mask.h"

namespace tg::kernels {

/// q [B, T, H, D], k [B, S, H, D], v [B, S, H, Dv] (rows of the strides in d, see AttnDims)
/// -> out [B, T, H, Dv] (contiguous) and weights [B, H, T, S]
/// (after masking, before dropout). Rows whose keys are all masked get zero weights. A causal
/// mask skips the score blocks above the diagonal (their weights are written as zeros).
template <class T>
void dense_attention_forward(const AttnDims& d, T scale, const AttnMask<T>& mask,
                             const AttnDropout& dropout, const T* q, const T* k, const T* v,
                             T* out, T* weights);

/// Gradients of dense attention given dout [B, T, H, Dv] and the saved weights [B, H, T, S]:
/// writes dq [B, T, H, D], dk [B, S, H, D], dv [B, S, H, Dv] (overwriting; rows of the strides
/// of q, k, v, so a packed q/k/v gets a packed gradient). `causal` says the
/// forward was causal, so the weights above the diagonal are zero and their blocks are skipped.
/// A null dq, dk or dv is not computed (its products are skipped).
template <class T>
void dense_attention_backward(const AttnDims& d, T scale, bool causal, const AttnDropout& dropout,
                              const T* q, const T* k, const T* v, const T* weights, const T* dout,
                              T* dq, T* dk, T* dv);

}  // namespace tg::kernels
