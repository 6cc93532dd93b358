#pragma once
// Block-sparse attention kernels, shared by the sparse (BigBird) and sliding_window variants.
// Queries are cut into block-rows; each block-row attends to a few key ranges (KeyRanges), and
// only those scores are computed (one GEMM per range), masked, softmaxed and stored:
// time and memory are proportional to the ranges, not to T·S.
#include <cstdint>

#include "ops/kernels/attention_mask.h"
#include "ops/kernels/sparse_layout.h"

namespace tg::kernels {

/// An element mask on top of the ranges: query t sees key s only if t - left <= s <= t + right
/// (sliding_window's band). kNoBand leaves the ranges alone.
struct AttnBand {
  int64_t left = 0, right = 0;
};
inline constexpr AttnBand kNoBand = {int64_t(1) << 60, int64_t(1) << 60};

/// q [B, T, H, D], k [B, S, H, D], v [B, S, H, Dv] -> out [B, T, H, Dv] and weights
/// [B, H, ranges.per_head()]: per head, block-row i's softmax weights as a [rows_i, width_i]
/// matrix over its range keys (after masking, before dropout; zero where masked). Within the
/// ranges, mask.causal, mask.key_padding and the band apply (mask's general mask must be unset).
/// Rows with no visible key get zero weights and zero output. Dropout keeps (b, h, t, s) as
/// AttnDropout::keep says, so it drops what dense drops for the same seed.
template <class T>
void block_sparse_attention_forward(const AttnDims& d, T scale, const AttnMask<T>& mask,
                                    const AttnBand& band, const KeyRanges& ranges,
                                    const AttnDropout& dropout, const T* q, const T* k, const T* v,
                                    T* out, T* weights);

/// Gradients given dout [B, T, H, Dv] and the forward's weights [B, H, ranges.per_head()]:
/// writes dq [B, T, H, D], dk [B, S, H, D], dv [B, S, H, Dv] (overwriting; rows of the strides
/// of q, k, v in d; a null one is not computed). dq is computed per
/// block-row, dk and dv per key block (each from the block-rows that see it, in row order), so
/// every output has one writer and the sums do not depend on the thread count. Workspace from
/// the caller (so the allocator counts it): ds [B, H, ranges.per_head()], and with dropout
/// dropped [B, H, ranges.per_head()] (may be null without).
template <class T>
void block_sparse_attention_backward(const AttnDims& d, T scale, const AttnDropout& dropout,
                                     const KeyRanges& ranges, const T* q, const T* k, const T* v,
                                     const T* weights, const T* dout, T* dq, T* dk, T* dv, T* ds,
                                     T* dropped);

}  // namespace tg::kernels
