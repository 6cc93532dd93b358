#pragma once
// LlamaConfig: the shape and options of a decoder of the Llama family, with transformers' field
// names: LlamaConfig (model_type "llama"), MistralConfig ("mistral": a sliding window, no biases)
// and Qwen2Config ("qwen2": q, k, v biases, o_proj without). Read from and written to Hugging
// Face's config.json as transformers 4.x writes it (top-level rope_theta and rope_scaling,
// torch_dtype) or 5.x (rope_parameters, dtype).
#include <optional>
#include <string>
#include <vector>

#include "autograd/dtype.h"
#include "models/gpt/gpt_config.h"
#include "ops/rope.h"

namespace tg::models {

struct LlamaConfig {
  std::string model_type = "llama";          ///< "llama", "mistral" or "qwen2"
  int64_t vocab_size = 32000;                ///< V
  int64_t hidden_size = 4096;                ///< C
  int64_t intermediate_size = 11008;         ///< the SwiGLU MLP's width
  int64_t num_hidden_layers = 32;            ///< L
  int64_t num_attention_heads = 32;          ///< H (D = C / H)
  int64_t num_key_value_heads = 32;          ///< Hkv (grouped-query attention; 1 = multi-query)
  int64_t max_position_embeddings = 2048;    ///< the longest context
  double rms_norm_eps = 1e-6;
  double rope_theta = 10000.0;
  RopeScaling rope_scaling;                  ///< rope_type "default": none
  /// q, k, v biases (Qwen2: always; Llama: attention_bias, which also gives o_proj one).
  bool attention_bias = false;
  bool mlp_bias = false;                     ///< Llama's gate/up/down biases
  bool tie_word_embeddings = false;          ///< the LM head is embed_tokens (no lm_head.weight)
  /// Mistral's (and Qwen2's with use_sliding_window) window: query t sees keys t-w+1..t.
  std::optional<int64_t> sliding_window;
  /// Per layer "full_attention" or "sliding_attention" (transformers' layer_types); empty: every
  /// layer full unless the family says otherwise (see layer_uses_sliding_window).
  std::vector<std::string> layer_types;
  double attention_dropout = 0.0;
  double initializer_range = 0.02;           ///< the std of the normal initialisation
  std::optional<int64_t> bos_token_id, eos_token_id;  ///< kept to be written back
  /// The dtype the weights are stored in ("float32", "bfloat16", "float16", "float64"): what
  /// config.json says and what a checkpoint is written in by default.
  std::string storage_dtype = "float32";
  DType dtype = DType::f32;                  ///< of the parameters, computed in: f32 or f64
  /// The attention kernel of the full-attention layers (tapegrad_attention); sliding layers run
  /// sliding_window(w).
  GPTAttention attention;

  int64_t head_dim() const { return hidden_size / num_attention_heads; }
  bool layer_uses_sliding_window(int64_t layer) const;
  /// The o_proj bias: Llama's attention_bias, none for Mistral and Qwen2.
  bool o_proj_bias() const { return model_type == "llama" && attention_bias; }
  /// Throws tg::Error naming the first bad field ("LlamaConfig: num_key_value_heads (3) must
  /// divide num_attention_heads (4)").
  void validate() const;

  /// config.json as transformers 4.x writes it (architectures, model_type, sizes, rope_theta,
  /// rope_scaling, torch_dtype, ...) plus "tapegrad_attention" when not dense. Pretty-printed.
  std::string to_json() const;
  /// Reads either version's config.json (rope_parameters or rope_theta/rope_scaling, dtype or
  /// torch_dtype; rope_scaling's "rope_type" or the older "type"). Validates. `source` names the
  /// file in error messages.
  static LlamaConfig from_json(const std::string& text, const std::string& source = "config.json");
};

/// model_type of a config.json ("gpt2" when it has none, as GPT-2's older files); tg::Error
/// naming `source` when it is not a JSON object.
std::string config_model_type(const std::string& text, const std::string& source);

}  // namespace tg::models
