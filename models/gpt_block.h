#pragma once
// The pieces of a GPT block, with GPT-2's names: CausalSelfAttention (attn.c_attn, attn.c_proj),
// MLP (mlp.c_fc, mlp.c_proj), Block (ln_1, attn, ln_2, mlp), and the per-layer KV cache.
#include <memory>
#include <vector>

#include "models/gpt_config.h"
#include "nn/conv1d.h"
#include "nn/layer_norm.h"
#include "nn/module.h"

namespace tg::models {

/// Keys and values of every layer for incremental decoding, preallocated to the longest context.
struct KVCache {
  std::vector<Tensor> k;  ///< per layer [B, n_positions, H, D]
  std::vector<Tensor> v;  ///< per layer [B, n_positions, H, D]
  int64_t length = 0;     ///< positions 0..length-1 are filled
  int64_t batch() const { return k.empty() ? 0 : k[0].size(0); }
  int64_t capacity() const { return k.empty() ? 0 : k[0].size(1); }
  /// Forgets the cached positions (keeps the buffers).
  void reset() { length = 0; }
};

/// What one block's forward needs beside x.
struct BlockStep {
  int64_t pos = 0;              ///< absolute position of the first of the T tokens
  Tensor* cache_k = nullptr;    ///< [B, n_positions, H, D], written at [pos, pos + T); or null
  Tensor* cache_v = nullptr;    ///< [B, n_positions, H, D]
  Tensor* weights = nullptr;    ///< out: attention weights [B, H, T, S] (dense only); or null
  Generator* gen = nullptr;     ///< dropout (default_generator() when null)
};

class CausalSelfAttention : public nn::Module {
 public:
  CausalSelfAttention(const GPTConfig& config, Generator& gen);
  /// x [B, T, C] -> [B, T, C]. With a cache, the new keys and values are stored at
  /// [pos, pos + T) and the queries attend to positions 0..pos+T-1.
  Tensor forward(const Tensor& x, const BlockStep& step);

  std::shared_ptr<nn::Conv1D> c_attn;  ///< weight [C, 3C]
  std::shared_ptr<nn::Conv1D> c_proj;  ///< weight [C, C]
  GPTAttention attention;
  int64_t n_head;
  double dropout_p;
};

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

/// Pre-LN: x + attn(ln_1(x)), then + mlp(ln_2(x)).
class Block : public nn::Module {
 public:
  Block(const GPTConfig& config, Generator& gen);
  /// x [B, T, C] -> [B, T, C].
  Tensor forward(const Tensor& x, const BlockStep& step);

  std::shared_ptr<nn::LayerNorm> ln_1;
  std::shared_ptr<CausalSelfAttention> attn;
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
