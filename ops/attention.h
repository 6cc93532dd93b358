#pragma once
// Attention: one function with a spec and interchangeable kernels.
//   dense           softmax(Q Kᵀ · scale + mask) V with the weights materialised
//   flash           tiled, online softmax; saves the log-sum-exp and recomputes in backward
//   sliding_window  banded: each query sees the keys within `window` positions
//   sparse          block-sparse, BigBird's layout of window, global and random blocks
//   linear          φ(Q)(φ(K)ᵀV) / φ(Q)(φ(K)ᵀ1), φ(x) = elu(x) + 1 (Katharopoulos et al. 2020);
//                   ignores spec.scale (FAVOR+ features use it), causal by chunked prefix sums
// Tensors are read in the layout [B, T, H, D] (no permute): q [B, T, H, D], k [B, S, Hkv, D],
// v [B, S, Hkv, Dv]; the output is [B, T, H, Dv]. Hkv < H is grouped-query attention: query
// head h reads kv head h / (H / Hkv).
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "autograd/random.h"
#include "autograd/tensor.h"

namespace tg {

enum class AttentionVariant { dense, flash, sliding_window, sparse, linear };

/// BigBird's block layout (Zaheer et al. 2020). Keys and queries are cut into blocks of
/// block_size (the last ones partial); block-row i attends to the window_blocks blocks centred
/// on i (causal: i and the window_blocks - 1 before it), to the first global_blocks blocks, and
/// to random_blocks other blocks drawn from `seed` and i (the same for every batch and head;
/// fewer when fewer blocks remain); the global blocks' rows attend to every block. Causal:
/// only blocks j <= i. Within these blocks, causal and key padding still mask elements.
/// block_size >= 1, window_blocks odd and >= 1, global_blocks and random_blocks >= 0.
/// Longformer's layout is random_blocks = 0.
struct SparseLayout {
  int64_t block_size = 64;
  int64_t window_blocks = 3;
  int64_t global_blocks = 2;
  int64_t random_blocks = 3;
  uint64_t seed = 0;
};

/// The layout for T queries and S keys (causal picks blocks j <= i) expanded to elements:
/// b8 [T, S], true where query t's block-row attends to key s's block. Sparse attention equals
/// dense attention with this attn_mask (and the same causal and key padding). For inspection.
Tensor sparse_layout_mask(const SparseLayout& layout, int64_t T, int64_t S, bool causal = false);

/// The true entries of rows [first_row, T) of sparse_layout_mask(layout, T, S, causal), and with
/// causal only those with s <= t: counted block by block, without the [T, S] mask.
int64_t sparse_layout_visible_pairs(const SparseLayout& layout, int64_t T, int64_t S, bool causal,
                                    int64_t first_row = 0);

struct AttentionSpec {
  AttentionVariant variant = AttentionVariant::dense;
  /// Query t sees keys s <= t + query_offset (top-left aligned when T != S and query_offset
  /// is 0, as PyTorch's is_causal).
  bool causal = false;
  /// Where the queries sit among the keys: query t is at key position query_offset + t
  /// (0 <= query_offset, query_offset + T <= S). Cached decoding passes the number of cached
  /// keys before the new queries. Every variant honours it (causal and the sliding band are
  /// measured from the query's position, the sparse layout's rows are those of the positions;
  /// linear's causal prefix sums start from the state of keys 0..query_offset-1).
  int64_t query_offset = 0;
  /// b8 [B, S]: true marks a padding key, which no query sees (as nn.MultiheadAttention).
  Tensor key_padding_mask;
  /// Alternative to key_padding_mask: keys s >= key_lengths[b] are padding.
  std::vector<int64_t> key_lengths;
  /// Broadcastable to [B, H, T, S]: b8 (true = may attend, as F.scaled_dot_product_attention)
  /// or floating (added to the scores; no gradient flows into it). dense and flash only.
  Tensor attn_mask;
  /// Dropout on the attention weights (dense, flash, sliding_window, sparse). The mask for
  /// element (b, h, t, s) depends only on the generator's seed and offset, so dense and flash
  /// drop the same weights for the same seed.
  double dropout_p = 0.0;
  Generator* generator = nullptr;  ///< default_generator() when null
  /// Multiplies Q Kᵀ; 1/sqrt(D) when not set.
  std::optional<double> scale;
  /// sliding_window: causal, the `window` keys t-window+1..t; otherwise t-window..t+window
  /// (clipped to [0, S); T != S aligns top-left, as causal does).
  int64_t window = 256;
  SparseLayout sparse;
  /// linear: "elu" (elu(x) + 1), or "favor[:M[:SEED]]": FAVOR+ positive orthogonal random
  /// features (Choromanski et al. 2021), M of them (default round(D ln D), at least D) drawn
  /// from SEED (default 0), estimating softmax(scale · q kᵀ).
  std::string feature_map = "elu";
};

/// Attention over q [B, T, H, D], k [B, S, Hkv, D], v [B, S, Hkv, Dv] (Hkv divides H)
/// -> [B, T, H, Dv], recorded for backward. A query whose keys are all masked gets zeros (not
/// NaN). With `weights` (dense only), the attention weights [B, H, T, S] (after masking, before
/// dropout) are returned there.
Tensor attention(const Tensor& q, const Tensor& k, const Tensor& v, const AttentionSpec& spec = {},
                 Tensor* weights = nullptr);

/// x [B, S, Hkv, D] -> [B, S, Hkv * group, D]: kv head j repeated for query heads
/// j * group .. (j + 1) * group - 1 (a copy; the gradient is summed back over the group).
/// How the kernels, which take one kv head per query head, run grouped-query attention.
Tensor repeat_kv_heads(const Tensor& x, int64_t group);

/// Self-attention over a packed projection qkv [B, T, 3, H, D] (q, k, v interleaved per row,
/// as a fused [C, 3C] projection writes them viewed as [B, T, 3, H, D]) -> [B, T, H, D]. The
/// same numbers as attention(q, k, v) on the three pieces; every variant's kernels read the
/// pieces in place and write the gradient of qkv in one buffer (no split copies, no zero-filled
/// gradients).
Tensor attention_qkv(const Tensor& qkv, const AttentionSpec& spec = {}, Tensor* weights = nullptr);

/// Self-attention over a packed projection with kv heads: qkv [B, T, H + 2·Hkv, D] (each row
/// holds the H query heads, then the Hkv key heads, then the Hkv value heads, as a fused
/// [C, (H + 2·Hkv)·D] projection writes them) -> [B, T, H, D]. With Hkv = H the same as
/// attention_qkv above (read in place); with Hkv < H the pieces are split and the kv heads
/// repeated (the kernels take one kv head per query head).
Tensor attention_qkv(const Tensor& qkv, int64_t kv_heads, const AttentionSpec& spec = {},
                     Tensor* weights = nullptr);

/// "dense", "flash", "sliding:W" (sets window), "sparse", "sparse:B" or "sparse:B:W:G:R" (sets
/// the layout's block size, window, global and random blocks), "linear" -> the variant;
/// tg::Error naming the text otherwise.
AttentionVariant parse_attention_variant(std::string_view text, AttentionSpec* spec = nullptr);
std::string attention_variant_name(AttentionVariant variant);

}  // namespace tg
