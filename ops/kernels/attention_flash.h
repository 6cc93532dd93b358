#pragma once
// FlashAttention kernels (Dao et al. 2022; FlashAttention-2, Dao 2023): attention computed tile
// by tile with an online softmax, so the [T, S] weights never exist. The forward keeps, per
// query row, a running maximum m and sum l of exp(score - m) and rescales its output
// accumulator when m grows; it saves only the log-sum-exp lse = m + log(l). The backward
// recomputes each tile's weights as exp(score - lse).
//
// f32 problems without a general mask, with Dv = D a multiple of 8 (kTileMinN), run the
// register-blocked kernels of attention_flash_tiled.h (the same function, faster at every head
// width; on 8-lane builds only where OpenBLAS lacks AVX-512 kernels or with dropout, see
// attention_flash.cpp). The rest run here: tiles of kFlashRows queries by kFlashCols keys whose scores and
// products are GEMMs on the heads' strided rows (leading dimension H*D, read in place). Extra
// memory: lse [B, H, T] and, in backward, rowsum(dO ∘ O) [B, H, T], plus per-task tile scratch.
#include "ops/kernels/attention_mask.h"

namespace tg::kernels {

/// Query rows and key columns of one tile. At D = 64, f32, a tile pair touches a 64 KiB score
/// tile and 32 KiB each of Q, K, V, dO: well inside a 1 MiB L2. Measured at T = 4096, D = 64
/// (forward + backward, causal): 128 x 128 was the fastest of 64/128/256-row and 64/128-column
/// tiles, by 2-5%; 64 x 64 was ~4% slower (twice the GEMM calls).
inline constexpr int64_t kFlashRows = 128;
inline constexpr int64_t kFlashCols = 128;

/// q [B, T, H, D], k [B, S, Hkv, D], v [B, S, Hkv, Dv] (rows of the strides in d, see AttnDims;
/// query head h reads kv head d.kv_head(h), in place) -> out [B, T, H, Dv] (contiguous) and lse [B, H, T]
/// (log of the row's normaliser in the units of scale·score + bias; -inf for a row whose keys
/// are all masked, whose output is zeros). Dropout drops the weights dense drops for the same
/// (seed, offset), after normalising. Parallel over (b, h, query tile).
template <class T>
void flash_attention_forward(const AttnDims& d, T scale, const AttnMask<T>& mask,
                             const AttnDropout& dropout, const T* q, const T* k, const T* v, T* out,
                             T* lse);

/// Gradients given dout [B, T, H, Dv], the forward's out [B, T, H, Dv] and lse [B, H, T]:
/// writes dq [B, T, H, D], dk [B, S, Hkv, D], dv [B, S, Hkv, Dv] (overwriting; a kv head's summed
/// over its group of query heads; rows of the strides
/// of q, k, v, so a packed q/k/v gets a packed gradient; a null one is not computed), using delta
/// [B, H, T] as workspace (rowsum(dO ∘ O)). Every element is summed over tiles in a fixed
/// order, so the result does not depend on the thread count.
template <class T>
void flash_attention_backward(const AttnDims& d, T scale, const AttnMask<T>& mask,
                              const AttnDropout& dropout, const T* q, const T* k, const T* v,
                              const T* out, const T* lse, const T* dout, T* delta, T* dq, T* dk,
                              T* dv);

}  // namespace tg::kernels
