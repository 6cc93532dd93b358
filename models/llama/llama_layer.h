#pragma once
// The pieces of a Llama-family decoder, with transformers' names: the SwiGLU MLP (gate_proj,
// up_proj, down_proj), the decoder layer (input_layernorm, self_attn, post_attention_layernorm,
// mlp) and the list of layers.
#include <memory>
#include <vector>

#include "models/llama/llama_config.h"
#include "nn/kv_cache.h"
#include "nn/linear.h"
#include "nn/module.h"
#include "nn/multihead_attention.h"
#include "nn/rms_norm.h"

namespace tg::models {

/// Layer `layer`'s attention: nn::MultiheadAttention in the llama layout (q_proj, k_proj, v_proj,
/// o_proj), Hkv kv heads, causal, rotary positions of rope_theta and rope_scaling, the kernel of
/// config.attention, or sliding_window(w) in a sliding layer.
nn::MultiheadAttentionOptions llama_attention_options(const LlamaConfig& config, int64_t layer);

/// SwiGLU (Shazeer 2020): down_proj(silu(gate_proj(x)) · up_proj(x)).
class LlamaMLP : public nn::Module {
 public:
  explicit LlamaMLP(const LlamaConfig& config);
  /// x [B, T, C] -> [B, T, C] through [B, T, intermediate_size].
  Tensor forward(const Tensor& x) override;

  std::shared_ptr<nn::Linear> gate_proj;  ///< weight [I, C]
  std::shared_ptr<nn::Linear> up_proj;    ///< weight [I, C]
  std::shared_ptr<nn::Linear> down_proj;  ///< weight [C, I]
};

/// What one layer's forward needs beside x.
/// Pre-norm: h = x + self_attn(input_layernorm(x)), then h + mlp(post_attention_layernorm(h)).
class LlamaDecoderLayer : public nn::Module {
 public:
  LlamaDecoderLayer(const LlamaConfig& config, int64_t layer);
  /// x [B, T, C] -> [B, T, C]; `call`: the attention's cache, weights, dropout generator,
  /// rotary positions and documents.
  Tensor forward(const Tensor& x, const nn::SelfAttentionOptions& call);

  std::shared_ptr<nn::RMSNorm> input_layernorm;
  std::shared_ptr<nn::MultiheadAttention> self_attn;
  std::shared_ptr<nn::RMSNorm> post_attention_layernorm;
  std::shared_ptr<LlamaMLP> mlp;
};

/// The layers, registered "0", "1", ... (transformers' `layers`).
class LlamaLayerList : public nn::Module {
 public:
  explicit LlamaLayerList(const LlamaConfig& config);
  std::vector<std::shared_ptr<LlamaDecoderLayer>> layers;
};

}  // namespace tg::models
