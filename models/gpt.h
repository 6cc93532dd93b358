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

#include "models/gpt_block.h"
#include "models/gpt_config.h"
#include "nn/embedding.h"
#include "nn/layer_norm.h"
#include "nn/module.h"

namespace tg::models {

struct GPTForwardOptions {
  /// Compute the logits of the last position only ([B, 1, V]), as generation needs.
  bool logits_last_only = false;
  /// Incremental decoding: the T tokens take positions cache->length.. and are appended to the
  /// cache (inference only, under NoGradGuard). Null: positions 0..T-1, no cache.
  KVCache* cache = nullptr;
  /// Out: each layer's attention weights [B, H, T, S] (dense attention only), for inspection.
  std::vector<Tensor>* attention_weights = nullptr;
  /// Packed sequences (several documents in a row), as Hugging Face's position_ids and a document
  /// mask. position_ids: i64 [B, T], the row of wpe each token takes (in [0, n_positions));
  /// undefined: 0..T-1 after the cache's length. document_ids: i64 [B, T], the document of each
  /// token; a token then attends only to earlier tokens of its own document, in every layer (one
  /// block mask per batch; every attention variant but linear, through flex_attention). Give
  /// both, positions restarting at 0 at each document start, and a row computes for each of its
  /// documents what that document alone computes. Training and evaluation, not with a cache.
  Tensor position_ids;
  Tensor document_ids;
};

struct GPTOutput {
  Tensor logits;  ///< [B, T, V] ([B, 1, V] with logits_last_only)
  Tensor loss;    ///< scalar mean cross-entropy over [B·T] (targets -1 ignored); undefined without targets
};

class GPT : public nn::Module {
 public:
  /// Builds the model and draws GPT-2's initialisation from `gen`. The default generator is
  /// left as it was.
  GPT(const GPTConfig& config, Generator& gen);
  /// Same, from Generator(0).
  explicit GPT(const GPTConfig& config);

  /// idx [B, T] i64 (token ids), targets [B, T] i64 or undefined -> logits and loss.
  /// T (plus the cache's length) must not exceed n_positions.
  GPTOutput forward(const Tensor& idx, const Tensor& targets, const GPTForwardOptions& options = {});
  /// idx [B, T] i64 -> logits [B, T, V].
  Tensor forward(const Tensor& idx) override;

  /// GPT-2's initialisation: weights and embeddings N(0, 0.02), residual projections
  /// (attn.c_proj, mlp.c_proj) N(0, 0.02/sqrt(2·n_layer)), biases 0, LayerNorms 1 and 0.
  void reset_parameters(Generator& gen);
  /// An empty cache for a batch of B: per layer keys and values [B, n_positions, H, D].
  KVCache make_cache(int64_t batch) const;
  /// The generator dropout draws from (default_generator() when null); not owned.
  void set_dropout_generator(Generator* gen) { dropout_gen_ = gen; }
  /// Activation checkpointing: in training, each block's activations are recomputed during
  /// backward instead of kept (tg::checkpoint), trading a second forward of the blocks for
  /// memory. Off by default; never used with a KV cache or when returning attention weights.
  void set_activation_checkpointing(bool on) { activation_checkpointing_ = on; }
  bool activation_checkpointing() const { return activation_checkpointing_; }
  /// Changes the attention kernel of every block (the parameters stay as they are).
  void set_attention(const GPTAttention& attention);
  /// Parameter count; without `include_position_embedding` the count nanoGPT reports.
  int64_t num_parameters(bool include_position_embedding = true) const;

  GPTConfig config;
  std::shared_ptr<nn::Embedding> wte;  ///< weight [V, C]
  std::shared_ptr<nn::Embedding> wpe;  ///< weight [n_positions, C]
  std::shared_ptr<BlockList> h;
  std::shared_ptr<nn::LayerNorm> ln_f;

 private:
  /// position_ids and document_ids fit idx and the model (tg::Error naming them otherwise).
  void check_packed_sequences(const GPTForwardOptions& options, const Shape& idx_shape) const;
  Generator* dropout_gen_ = nullptr;
  bool activation_checkpointing_ = false;
};

}  // namespace tg::models
