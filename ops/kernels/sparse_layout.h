#pragma once
// Block layouts of the sparse attention variants, on plain integers (no Tensor): BigBird's
// pattern of window, global and random key blocks per query block-row, and the key ranges the
// block-sparse kernel computes (consecutive blocks merged, so one GEMM covers each run).
#include <cstdint>
#include <vector>

#include "ops/kernels/attention_flex.h"

namespace tg::kernels {

/// For each query block-row i (rows [i*block, (i+1)*block) of the queries, the last one
/// partial), the sorted key blocks it attends to, in CSR form.
struct BlockLayout {
  int64_t block = 0;               ///< block size b (queries and keys)
  int64_t rows = 0;                ///< query block-rows, ceil(T / b)
  int64_t cols = 0;                ///< key blocks, ceil(S / b)
  std::vector<int64_t> row_start;  ///< [rows + 1]: row i's blocks are blocks[row_start[i] ..)
  std::vector<int64_t> blocks;     ///< key block indices, sorted and distinct within a row
};

/// BigBird's layout (Zaheer et al. 2020) for T queries and S keys. Block-row i attends to the
/// window_blocks blocks centred on i (causal: i and the window_blocks - 1 before it), to the
/// first global_blocks blocks, and to random_blocks other blocks (fewer when fewer remain),
/// drawn from `seed` and i only, so the layout is the same for every batch and head. The
/// block-rows i < global_blocks attend to every block. Causal: only blocks j <= i. Blocks past
/// the keys (j >= ceil(S / b)) are dropped. Arguments are checked by the caller.
BlockLayout bigbird_layout(int64_t T, int64_t S, int64_t block, int64_t window_blocks,
                           int64_t global_blocks, int64_t random_blocks, uint64_t seed,
                           bool causal);

/// What the block-sparse kernel computes: query rows cut into block-rows of `block` rows, each
/// attending to sorted, disjoint key ranges [lo, hi). Row i's scores are stored as a dense
/// [rows_i, width_i] matrix whose columns are the keys of its ranges in order (width_i the sum
/// of the range lengths); a head's matrices follow each other, row i's at offset[i].
struct KeyRanges {
  int64_t T = 0, S = 0;
  int64_t block = 1;               ///< query rows per block-row (the last may be partial)
  std::vector<int64_t> row_start;  ///< [rows + 1] into lo / hi
  std::vector<int64_t> lo, hi;     ///< key ranges [lo, hi)
  std::vector<int64_t> width;      ///< [rows] keys per block-row
  std::vector<int64_t> offset;     ///< [rows + 1] start of row i's [rows_i, width_i] matrix

  int64_t rows() const { return static_cast<int64_t>(width.size()); }
  /// Query rows of block-row i.
  int64_t row_size(int64_t i) const { return (i + 1) * block <= T ? block : T - i * block; }
  /// Score entries per head: the size of the saved weights is [B, H, per_head()].
  int64_t per_head() const { return offset.empty() ? 0 : offset.back(); }

  /// Appends range [lo, hi) to the block-row being built (ranges come in increasing order;
  /// a range touching the previous one extends it); end_row() closes the block-row.
  void add_range(int64_t l, int64_t h);
  void end_row();
};

/// Starts an empty KeyRanges for T queries, S keys and block-rows of `block`.
KeyRanges begin_key_ranges(int64_t T, int64_t S, int64_t block);

/// The key ranges of a block layout: each row's blocks with consecutive ones merged, clipped
/// to [0, S).
KeyRanges key_ranges_of(const BlockLayout& layout, int64_t T, int64_t S);

/// A block layout as a block mask (flex attention's FlexBlocks, shared by every batch and head,
/// each listed block full), owning the arrays its view points into: what the register-tiled
/// flash kernels run a sparse layout with (attention_flash_tiled.h).
struct LayoutBlockMask {
  int64_t block = 0, rows = 0, cols = 0;
  std::vector<uint8_t> kind;               ///< [rows, cols]: kBlockFull where listed
  std::vector<int64_t> kv_start, q_start;  ///< [rows + 1], [cols + 1]
  std::vector<int32_t> kv_index, q_index;  ///< a block-row's key blocks, a key block's block-rows

  /// The kernel's view; valid while this object lives.
  FlexBlocks view() const;
};

LayoutBlockMask layout_block_mask(const BlockLayout& layout);

}  // namespace tg::kernels
