#pragma once
// A flex_attention pattern named in words, as the command line gives it ("flex:sliding:256",
// "flex:document:8", "flex:alibi"), and what it builds for a problem size: the mask_mod (as a
// BlockMask) and the score_mod. One parser for `tapegrad bench attention --variants` and the
// models' attention option.
//
// Patterns (each intersected with causal masking when the caller's problem is causal):
//   full                every key (the caller's causal flag alone decides)
//   causal              k <= q, whatever the caller says
//   sliding:W           the W-key window (flex_patterns' sliding_window_mask)
//   prefix:N            prefix-LM: the first N keys for every query, the rest causally
//   document:N          T split into N equal documents, a query sees its own document only
//   sinks:W:N           attention sinks: the last W keys and the first N
//   dilated:W:D         dilated sliding window, W steps of D keys
//   bigbird[:B:W:G:R]   BigBird's block layout (the sparse variant's defaults when no numbers)
//   longformer:B:W:G    Longformer's layout: a window of W blocks of B keys, G global blocks
//   alibi               ALiBi with the paper's slopes for H heads
//   softcap:C           Gemma 2's C · tanh(score / C)
// and patterns written in C++ (FlexPattern::custom: a mask_mod and/or a score_mod), named
// "flex:custom:NAME" in messages and in a model's config.json, which cannot hold the code itself.
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "autograd/tensor.h"
#include "ops/attention.h"
#include "ops/block_mask.h"
#include "ops/flex_attention.h"

namespace tg {

struct FlexPattern {
  std::string name;           ///< "sliding", "document", ..., "custom:NAME"
  std::vector<int64_t> ints;  ///< its integer arguments
  double real = 0;            ///< softcap's cap
  /// A custom pattern's functions (undefined for the named ones): the mask_mod (undefined: every
  /// key) and the score_mod (undefined: none).
  MaskMod mask_mod;
  ScoreMod score_mod;

  /// A pattern written in C++, e.g.
  ///   FlexPattern::custom("strided", mask_mod("strided", [](int64_t, int64_t, int64_t q, int64_t k) {
  ///     return q - k < 32 || k % 8 == 7; }));
  /// A model applies its causal mask (and padding, documents) on top, as for the named patterns.
  /// tg::Error for an empty name or one holding ':', or when neither function is defined.
  static FlexPattern custom(std::string name, MaskMod mask_mod, ScoreMod score_mod = {});
  bool is_custom() const { return name.starts_with("custom:"); }
  /// The pattern in words: "flex:sliding:256", "flex:softcap:50", "flex:custom:NAME".
  std::string text() const;
};

/// Parses "flex:NAME[:ARGS]" (the "flex:" prefix required); tg::Error naming the text and the
/// patterns there are.
FlexPattern parse_flex_pattern(std::string_view text);
/// True when `text` starts with "flex:".
bool is_flex_pattern(std::string_view text);
/// True when `text` names a custom pattern ("flex:custom:NAME"), which words cannot rebuild.
bool is_custom_flex_pattern(std::string_view text);
/// parse_flex_pattern for a model's attention: also refuses document:N, which splits the keys of
/// each call into N equal parts (a bench's pattern; a model's documents are its data's).
FlexPattern parse_model_flex_pattern(std::string_view text);

/// The named pattern computing what a hand-written variant computes (AttentionSpec's variant,
/// window and sparse layout): dense and flash "full", sliding_window "sliding:W", sparse
/// "bigbird:B:W:G:R" (and its seed), so that a mask those kernels cannot take (documents) can be
/// added. tg::Error for linear attention, which has no mask to add to.
FlexPattern flex_pattern_of_variant(const AttentionSpec& spec);

/// The pattern built for H heads of T queries over S keys (q_offset: the queries' first position);
/// its mask is one for every batch and head.
struct FlexProblem {
  BlockMask block_mask;  ///< undefined when every key is visible and there is no causal mask
  ScoreMod score_mod;    ///< undefined when the pattern has none
};

/// Builds `pattern` for the sizes; `causal` intersects its mask with k <= q, `key_lengths`
/// (one per batch, or empty) with k < key_lengths[b] (padding keys hidden), and `document_ids`
/// (i64 [B, T] with T == S and no q_offset, or undefined) with "q and k in the same document"
/// (packed sequences: document_mask). Tensors a score_mod captures (ALiBi's slopes) are made in
/// `dtype`. The mask has a batch axis when key lengths or documents are given.
FlexProblem build_flex_problem(const FlexPattern& pattern, int64_t H, int64_t T, int64_t S, bool causal,
                               DType dtype = DType::f32, int64_t block_size = kFlexDefaultBlock,
                               int64_t q_offset = 0, const std::vector<int64_t>& key_lengths = {},
                               const Tensor& document_ids = {});

}  // namespace tg
