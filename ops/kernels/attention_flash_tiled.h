#pragma once
// The f32 flash attention kernels on register-blocked tiles (attention_tile.h): the same function
// as attention_flash.h's, for the common case (no general mask, Dv = D, D a multiple of the vector
// lanes), dropout included (the same draws as dense, Philox eight blocks at a time). Each tile
// pair's products are tile_gemm calls on the heads' rows in place (no BLAS call on thin panels);
// scores are held transposed, Sᵀ [keys, queries], so the online softmax runs down the lanes and
// its exp is a vector exp fused into the tile pass.
//
// Grouped kv heads (AttnDims::Hkv < H) are read in place: query head h reads kv head
// d.kv_head(h), and a group's query heads add into its kv head's dK and dV.
//
// Work: forward parallel over (batch, head, query tile), so that B·H below the core count still
// fills the cores; at T >= 4096 query tiles in groups that meet each key tile together (K and V
// read once per group). Backward one task per kv head when the kv heads fill the cores (its query
// heads in turn, query tiles in groups of 8 packed once, each key tile visited once per group,
// so K, V, dK and dV stream through the cache 8 times less often); else two passes, (kv head, key
// tile) for dK and dV, then (head, query tile) for dQ. A narrow band (or blocks listing few keys)
// runs a query tile's heads one after another instead, in both directions, so that each
// [B, T, H, D] row is read whole while in cache. Tiles crossing a band edge compute only what the
// band reaches (attention_tile_span.h). Every output and gradient element sums its tiles in the
// same order either way: the result does not depend on the thread count.
// Extra memory: per task a few tiles of kTiledRows x kTiledCols and [D, kTiledRows] floats (up to
// 256 KiB of query tiles in a forward group).
#include "ops/kernels/attention_flex.h"
#include "ops/kernels/attention_mask.h"
#include "ops/kernels/attention_sparse.h"

namespace tg::kernels {

/// Query rows (the vector lanes) and key columns of one tile. At D = 128 the transposed Q and dO
/// tiles [D, 64] and the score tiles [64, 64] take 96 KiB: L2-resident, the score tiles in L1.
/// Measured (one thread, T = 2048): 64 x 64 beat 32 x 64, 64 x 32, 128 x 64, 64 x 128 and
/// 128 x 32 at D = 16, 64 and 128, by 2-25%.
inline constexpr int64_t kTiledRows = 64;
inline constexpr int64_t kTiledCols = 64;

/// True when the tiled kernels take the problem: f32 callers check this first.
bool flash_tiled_applies(const AttnDims& d, const AttnMask<float>& mask);

/// A block mask over the tiles (flex attention without a score_mod, attention_flex.h): only the
/// tiles of its non-empty blocks run, and the tiles of partial blocks evaluate `mask` row by row
/// at query positions q_offset + t. Its blocks must be whole tiles (flex_tiled_applies).
struct TiledBlocks {
  const FlexBlocks& blocks;
  const MaskRowFn* mask = nullptr;  ///< null: the mask has no partial block
  int64_t q_offset = 0;
  /// Forward only: a score_mod applied to every computed score (before the mask), one key column
  /// of the transposed tile at a time; null: none. The backward with a score_mod runs flex's own
  /// kernel.
  const FlexMods<float>* score = nullptr;
};

/// True when the tiled kernels take a flex problem without a score_mod: D = Dv a multiple of
/// the lanes, query blocks whole multiples of kTiledRows and key blocks of kTiledCols.
bool flex_tiled_applies(const FlexDims& d, const FlexBlocks& blocks);

/// As flash_attention_forward (attention_flash.h) for a problem flash_tiled_applies to, with an
/// optional band on top of the mask (sliding_window's, attention_sliding.h: query t sees key s
/// only if t - band.left <= s <= t + band.right); only the key tiles a query tile's band reaches
/// run, so a band costs O(T · band) time and no memory beyond the lse. With `blocks` (flex; the
/// mask empty and no band), only the tiles of its non-empty blocks run.
void flash_tiled_forward(const AttnDims& d, float scale, const AttnMask<float>& mask, const AttnBand& band,
                         const AttnDropout& dropout, const float* q, const float* k, const float* v, float* out,
                         float* lse, const TiledBlocks* blocks = nullptr);

/// As flash_attention_backward (attention_flash.h) for a problem flash_tiled_applies to, with the
/// forward's band and blocks; delta [B, H, T] is the caller's workspace for rowsum(dO ∘ O).
void flash_tiled_backward(const AttnDims& d, float scale, const AttnMask<float>& mask, const AttnBand& band,
                          const AttnDropout& dropout, const float* q, const float* k, const float* v, const float* out,
                          const float* lse, const float* dout, float* delta, float* dq, float* dk, float* dv,
                          const TiledBlocks* blocks = nullptr);

}  // namespace tg::kernels
