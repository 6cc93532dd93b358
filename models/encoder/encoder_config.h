#pragma once
// EncoderConfig: the encoder classifier's hyper-parameters, checked, and saved as config.json.
#include <cstdint>
#include <string>

#include "ops/attention.h"

namespace tg::models {

struct EncoderConfig {
  int64_t vocab_size = 0;   ///< V, token ids 0..V-1
  int64_t n_classes = 10;   ///< classification head outputs
  int64_t max_len = 512;    ///< longest input in tokens (a CLS token is not counted)
  int64_t n_layer = 2;      ///< L encoder blocks
  int64_t n_head = 4;       ///< H
  int64_t n_embd = 128;     ///< C, divisible by H
  int64_t ffn_dim = 0;      ///< FFN hidden width; 0 means 4·C
  double dropout = 0.1;     ///< embeddings, attention weights, residual branches, FFN hidden
  std::string norm = "post";        ///< "post" (x = LN(x + f(x)), the tutorials') or "pre"
  std::string pos = "learned";      ///< "learned" or "sinusoidal" position embeddings
  std::string pooling = "mean";     ///< "mean" over real tokens, or "cls" (a learned token first)
  std::string attention = "dense";  ///< dense, flash, sliding:W, sparse, linear, flex:PATTERN
  double layer_norm_eps = 1e-5;
  bool bias = true;  ///< biases in the Linear layers and LayerNorms

  /// tg::Error naming the first bad field and its value.
  void validate() const;
  /// Hidden width of the FFN (ffn_dim or 4·n_embd).
  int64_t ffn_width() const { return ffn_dim > 0 ? ffn_dim : 4 * n_embd; }
  /// Rows of the position table: max_len, plus one for the CLS token.
  int64_t n_positions() const { return max_len + (pooling == "cls" ? 1 : 0); }
  /// The attention spec of `attention` (variant and window); masks and dropout are set per call.
  AttentionSpec attention_spec() const;

  /// JSON with model_type "tapegrad_encoder" and every field above.
  std::string to_json() const;
  /// Parses to_json()'s text: fields missing take their defaults, vocab_size and n_classes are
  /// required; tg::Error naming `source` and the field for a wrong type or value.
  static EncoderConfig from_json(const std::string& text, const std::string& source = "config.json");
  void save(const std::string& path) const;
  static EncoderConfig load(const std::string& path);

  bool operator==(const EncoderConfig&) const = default;
};

}  // namespace tg::models
