#pragma once
// GPTConfig: the shape and options of a GPT (GPT-2's architecture, nanoGPT's names for the
// options), stored as Hugging Face's GPT-2 config.json plus tapegrad's own "tapegrad_*" fields.
#include <optional>
#include <string>
#include <string_view>

#include "autograd/dtype.h"
#include "ops/attention.h"
#include "ops/flex_spec.h"

namespace tg::models {

/// Which attention kernel the blocks use, with the variant's own parameters (an AttentionSpec
/// without the per-call parts: masks, dropout and generator are set by the model).
struct GPTAttention {
  AttentionVariant variant = AttentionVariant::dense;
  int64_t window = 256;  ///< sliding_window: keys t-window+1..t
  SparseLayout sparse;   ///< sparse: BigBird's block layout
  std::string flex;      ///< "flex:PATTERN" (ops/flex_spec.h): flex_attention with it; empty: variant
  /// A pattern written in C++ (FlexPattern::custom), or none; flex is then its name
  /// ("flex:custom:NAME"), which is all config.json keeps of it: a checkpoint trained with one
  /// loads only when the pattern is given again (LoadGPTOptions::attention).
  std::optional<FlexPattern> custom;

  /// From the command line's words: "dense", "flash", "sliding:W", "sparse", "linear",
  /// "flex:PATTERN".
  static GPTAttention parse(std::string_view text);
  /// A pattern written in C++: GPTAttention::from_pattern(FlexPattern::custom("strided", mask)).
  static GPTAttention from_pattern(FlexPattern pattern);
  /// The inverse of parse(): "dense", "sliding:32", ..., "flex:custom:NAME".
  std::string name() const;
  /// tg::Error "{owner}: attention.window must be positive, ..." for a bad window or sparse layout.
  void validate(const std::string& owner) const;
  /// True when flex names a custom pattern that `custom` does not hold (read from config.json).
  bool missing_custom_pattern() const { return !custom && is_custom_flex_pattern(flex); }
};

struct GPTConfig {
  int64_t vocab_size = 50257;
  int64_t n_positions = 1024;  ///< block size: the longest context
  int64_t n_embd = 768;        ///< C
  int64_t n_layer = 12;        ///< L
  int64_t n_head = 12;         ///< H (D = C / H)
  double dropout = 0.0;        ///< on embeddings, attention weights and residual branches
  bool bias = true;            ///< biases in Conv1D and LayerNorm (GPT-2: true)
  double layer_norm_epsilon = 1e-5;
  /// "gelu_new" (tanh form, GPT-2's) or "gelu" (exact, erf).
  std::string activation = "gelu_new";
  GPTAttention attention;
  DType dtype = DType::f32;  ///< of the parameters: f32 or f64

  int64_t head_dim() const { return n_embd / n_head; }
  /// Throws tg::Error naming the first bad field ("GPTConfig: n_embd (10) must be divisible
  /// by n_head (3)").
  void validate() const;

  /// config.json in Hugging Face's GPT-2 format (model_type "gpt2", vocab_size, n_positions,
  /// n_ctx, n_embd, n_layer, n_head, layer_norm_epsilon, activation_function, *_pdrop,
  /// torch_dtype) plus "tapegrad_bias" and "tapegrad_attention". Pretty-printed.
  std::string to_json() const;
  /// Reads to_json()'s output or a GPT-2 config.json written by other tools (missing tapegrad
  /// fields take their defaults, missing *_pdrop fields Hugging Face's 0.1). Validates.
  /// `source` names the file in error messages.
  static GPTConfig from_json(const std::string& text, const std::string& source = "config.json");
};

}  // namespace tg::models
