#pragma once
// GPT: GPT-2's architecture as nanoGPT writes it, with GPT-2's parameter names, so that
// named_parameters() gives exactly the names of a Hugging Face GPT-2 checkpoint:
//   wte.weight [V, C], wpe.weight [n_positions, C],
//   h.N.ln_1.{weight, bias} [C], h.N.attn.c_attn.{weight [C, 3C], bias [3C]},
//   h.N.attn.c_proj.{weight [C, C], bias [C]}, h.N.ln_2.*, h.N.mlp.c_fc.{weight [C, 4C], bias [4C]},
//   h.N.mlp.c_proj.{weight [4C, C], bias [C]}, ln_f.{weight, bias} [C].
// The LM head is tied to wte: logits = x · wteᵀ.
#include <memory>
#include <vector>

#include "models/decoders/causal_lm.h"
#include "models/gpt/gpt_block.h"
#include "models/gpt/gpt_config.h"
#include "nn/embedding.h"
#include "nn/layer_norm.h"
#include "nn/module.h"

namespace tg::models {

/// The names GPT's callers have always used.
using GPTForwardOptions = CausalLMForwardOptions;
using GPTOutput = CausalLMOutput;

class GPT : public CausalLM {
 public:
  /// Builds the model and draws GPT-2's initialisation from `gen`. The default generator is
  /// left as it was.
  GPT(const GPTConfig& config, Generator& gen);
  /// Same, from Generator(0).
  explicit GPT(const GPTConfig& config);

  /// idx [B, T] i64 (token ids), targets [B, T] i64 or undefined -> logits and loss.
  /// T (plus the cache's length) must not exceed n_positions.
  GPTOutput forward(const Tensor& idx, const Tensor& targets, const GPTForwardOptions& options = {}) override;
  using CausalLM::forward;

  /// GPT-2's initialisation: weights and embeddings N(0, 0.02), residual projections
  /// (attn.c_proj, mlp.c_proj) N(0, 0.02/sqrt(2·n_layer)), biases 0, LayerNorms 1 and 0.
  void reset_parameters(Generator& gen);
  std::vector<const nn::MultiheadAttention*> attention_layers() const override;
  int64_t context_length() const override { return config.n_positions; }
  const char* context_length_field() const override { return "n_positions"; }
  int64_t vocab_size() const override { return config.vocab_size; }
  /// Changes the attention kernel of every block (the parameters stay as they are).
  void set_attention(const GPTAttention& attention) override;
  /// Parameter count; without `include_position_embedding` the count nanoGPT reports.
  int64_t num_parameters(bool include_position_embedding = true) const;

  GPTConfig config;
  std::shared_ptr<nn::Embedding> wte;  ///< weight [V, C]
  std::shared_ptr<nn::Embedding> wpe;  ///< weight [n_positions, C]
  std::shared_ptr<BlockList> h;
  std::shared_ptr<nn::LayerNorm> ln_f;

 private:
  /// position_ids (checked by check_forward_inputs, or undefined) name rows of wpe: in [0, n_positions).
  void check_position_rows(const Tensor& position_ids) const;
};

}  // namespace tg::models
