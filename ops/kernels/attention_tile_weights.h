#pragma once
// The scores of a whole tile and their softmax weights in one pass: the forward's online softmax
// step for a tile that no mask, band edge, padding, score_mod or dropout touches (the common
// case), with the exp applied to each block of scores while it is still in registers.
//
// The running maximum may lag: a block moves a lane's maximum m only when one of its scores
// passes m + kWeightHeadroom (FlashAttention-4's rescaling threshold), so that most tiles leave
// m, the normaliser and the output accumulator as they are and every weight is exp(s - m) of the
// block in registers. A weight can then reach e^8; the normaliser and the output hold sums of such
// weights, and the finish divides them out (lse = m + log l whatever m is).
#include <cstdint>

#include "ops/kernels/attention_flash_tiled.h"
#include "ops/kernels/attention_tile.h"

namespace tg::kernels {

/// How far above a lane's running maximum a score may lie before the maximum moves (natural
/// log units: weights up to e^8 ≈ 2981).
inline constexpr float kWeightHeadroom = 8.0f;

/// pT [kTiledCols, kTiledRows] = exp(K · qT - m): K the tile's kTiledCols key rows (k, stride
/// ldk, D wide), qT [D, kTiledRows] (scale · Qᵀ); m and l [kTiledRows] the lanes' running maximum
/// and normaliser, updated (l = l · alpha + the new weights' sum); alpha [kTiledRows] the factor
/// the lanes' output accumulator must be multiplied by (1 where m did not move). Returns a bit per
/// strip of kTileLanes lanes whose alpha is not all 1.
uint32_t tile_softmax_weights(int64_t D, const float* k, int64_t ldk, const float* qT, float* pT, float* m,
                              float* l, float* alpha);

}  // namespace tg::kernels
