#pragma once
// The pieces of a GPT block, with GPT-2's names: the attention (nn::MultiheadAttention in GPT-2's
// layout: attn.c_attn, attn.c_proj), MLP (mlp.c_fc, mlp.c_proj), Block (ln_1, attn, ln_2, mlp),
// and the per-layer KV cache.
#include <memory>
#include <vector>

#include "models/decoders/causal_lm.h"
#include "models/gpt/gpt_config.h"
#include "nn/conv1d.h"
#include "nn/kv_cache.h"
#include "nn/layer_norm.h"
#include "nn/module.h"
#include "nn/multihead_attention.h"

namespace tg::models {

/// What one block's forward needs beside x.
/// The blocks' attention, GPT-2's tensor names (attn.c_attn, attn.c_proj) through the gpt2
/// layout of nn::MultiheadAttention: causal, dropout on the weights (none for linear attention,
/// which has no weights), the kernel of config.attention.
nn::MultiheadAttentionOptions gpt_attention_options(const GPTConfig& config);

class MLP : public nn::Module {
 public:
  MLP(const GPTConfig& config, Generator& gen);
  /// x [B, T, C] -> c_fc [B, T, 4C] -> GELU -> c_proj [B, T, C] -> dropout.
  Tensor forward(const Tensor& x, Generator* gen);

  std::shared_ptr<nn::Conv1D> c_fc;    ///< weight [C, 4C]
  std::shared_ptr<nn::Conv1D> c_proj;  ///< weight [4C, C]
  std::string approximate;             ///< "tanh" or "none"
  double dropout_p;
};

/// Pre-LN: x + dropout(attn(ln_1(x))), then + mlp(ln_2(x)).
class Block : public nn::Module {
 public:
  Block(const GPTConfig& config, Generator& gen);
  /// x [B, T, C] -> [B, T, C]; `call`: the attention's cache, weights and documents, and the
  /// generator of every dropout of the block (default_generator() when null).
  Tensor forward(const Tensor& x, const nn::SelfAttentionOptions& call);

  std::shared_ptr<nn::LayerNorm> ln_1;
  std::shared_ptr<nn::MultiheadAttention> attn;
  double dropout_p;  ///< on the attention's output (GPT-2's resid_pdrop)
  std::shared_ptr<nn::LayerNorm> ln_2;
  std::shared_ptr<MLP> mlp;
};

/// The list of blocks, registered "0", "1", ... (GPT-2's `h`).
class BlockList : public nn::Module {
 public:
  BlockList(const GPTConfig& config, Generator& gen);
  std::vector<std::shared_ptr<Block>> blocks;
};

}  // namespace tg::models
