#pragma once
// Ready patterns for flex_attention: mask_mods (for create_block_mask) and score_mods, each a
// few lines in flex_patterns.cpp. q is a query position (q_offset + row), k a key index.
// Combine masks with and_masks / or_masks (ops/block_mask.h).
#include <vector>

#include "ops/attention.h"
#include "ops/flex_attention.h"

namespace tg {

/// k <= q (top-left aligned when T != S, as attention's causal).
MaskMod causal_mask();
/// As the sliding_window variant: causal, the `window` keys q-window+1..q; otherwise
/// |q - k| <= window. window >= 1.
MaskMod sliding_window_mask(int64_t window, bool causal = true);
/// Prefix-LM: every query sees the first `prefix` keys, and the rest causally (k < prefix or
/// k <= q). prefix >= 0.
MaskMod prefix_lm_mask(int64_t prefix);
/// Packed sequences: q and k in the same document. doc_ids i64 [S] (shared by the batch) or
/// [B, S], indexed by key and by query position (so q_offset + T <= S).
MaskMod document_mask(const Tensor& doc_ids);
/// Key padding: padding b8 [B, S], true = a padding key no query sees.
MaskMod key_padding_mask(const Tensor& padding);
/// Key padding from lengths: keys k >= lengths[b] are padding.
MaskMod key_lengths_mask(std::vector<int64_t> lengths);
/// BigBird's block layout (SparseLayout, as the sparse variant) for T queries and S keys;
/// causal also masks k > q inside the blocks. Longformer: layout.random_blocks = 0.
MaskMod bigbird_mask(const SparseLayout& layout, int64_t T, int64_t S, bool causal = false);
/// Longformer's layout: sliding window of window_blocks blocks plus global_blocks global blocks.
MaskMod longformer_mask(int64_t block_size, int64_t window_blocks, int64_t global_blocks, int64_t T,
                        int64_t S, bool causal = false);
/// Dilated sliding window (Longformer): keys q - i·dilation for i in 0..window (and q + i·dilation
/// unless causal). window >= 0, dilation >= 1.
MaskMod dilated_sliding_window_mask(int64_t window, int64_t dilation, bool causal = true);
/// Attention sinks (StreamingLLM): causal, the last `window` keys plus the first `sinks` keys.
MaskMod attention_sink_mask(int64_t window, int64_t sinks);

/// ALiBi (Press et al. 2022): score + slopes[h] · (k - q); slopes [H] (f32/f64 like q) may
/// require grad.
ScoreMod alibi(const Tensor& slopes);
/// The paper's slopes for H heads: 2^(-8i/H), i = 1..H (interpolated when H is not a power of 2).
Tensor alibi_slopes(int64_t H, DType dtype = DType::f32);
/// Gemma 2's soft-capping: cap · tanh(score / cap), cap > 0.
ScoreMod softcap(double cap);
/// T5's bucket of relative position k - q (HF T5's _relative_position_bucket).
int64_t t5_relative_bucket(int64_t relative, bool bidirectional, int64_t num_buckets, int64_t max_distance);
/// T5's learned relative bias: score + table[h, bucket(k - q)]; table [H, num_buckets] (f32/f64
/// like q) learns through flex_attention's backward.
ScoreMod relative_position_bias(const Tensor& table, bool bidirectional = true, int64_t max_distance = 128);

}  // namespace tg
