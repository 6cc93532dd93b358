#pragma once
// Llama: the decoder of Llama 2 and 3, Mistral and Qwen2 (transformers' LlamaForCausalLM,
// MistralForCausalLM, Qwen2ForCausalLM), with transformers' parameter names, so that
// named_parameters() gives exactly the names of a Hugging Face checkpoint:
//   model.embed_tokens.weight [V, C],
//   model.layers.N.input_layernorm.weight [C],
//   model.layers.N.self_attn.{q_proj [H·D, C], k_proj [Hkv·D, C], v_proj [Hkv·D, C], o_proj [C, C]}.weight
//     (+ .bias where the family has them),
//   model.layers.N.post_attention_layernorm.weight [C],
//   model.layers.N.mlp.{gate_proj [I, C], up_proj [I, C], down_proj [C, I]}.weight,
//   model.norm.weight [C], lm_head.weight [V, C] (none when tie_word_embeddings: the head is
//   embed_tokens).
#include <memory>

#include "models/decoders/causal_lm.h"
#include "models/llama/llama_config.h"
#include "models/llama/llama_layer.h"
#include "nn/embedding.h"
#include "nn/linear.h"
#include "nn/rms_norm.h"

namespace tg::models {

/// transformers' LlamaModel: the embeddings, the layers and the final norm.
class LlamaModel : public nn::Module {
 public:
  explicit LlamaModel(const LlamaConfig& config);
  std::shared_ptr<nn::Embedding> embed_tokens;  ///< weight [V, C]
  std::shared_ptr<LlamaLayerList> layers;
  std::shared_ptr<nn::RMSNorm> norm;
};

class Llama : public CausalLM {
 public:
  /// Builds the model and draws transformers' initialisation from `gen`: every weight
  /// N(0, initializer_range), biases 0, norms 1. The default generator is left as it was.
  Llama(const LlamaConfig& config, Generator& gen);

  CausalLMOutput forward(const Tensor& idx, const Tensor& targets, const CausalLMForwardOptions& options = {}) override;
  using CausalLM::forward;
  std::vector<const nn::MultiheadAttention*> attention_layers() const override;
  int64_t context_length() const override { return config.max_position_embeddings; }
  const char* context_length_field() const override { return "max_position_embeddings"; }
  int64_t vocab_size() const override { return config.vocab_size; }

  void reset_parameters(Generator& gen);
  /// Changes the attention kernel of the full-attention layers (the parameters stay as they are).
  void set_attention(const GPTAttention& attention) override;

  LlamaConfig config;
  std::shared_ptr<LlamaModel> model;
  std::shared_ptr<nn::Linear> lm_head;  ///< weight [V, C]; null when tied to model.embed_tokens
};

}  // namespace tg::models
