#pragma once
// CausalLM: what every decoder of the zoo (GPT-2, the Llama family) offers the code that trains,
// evaluates and samples from it, as Hugging Face's *ForCausalLM models do: token ids in, logits
// (and the loss of given targets) out, a KV cache for incremental decoding. One generation path
// (models/decoders/generate.h) and one training loop serve every family through it.
#include <vector>

#include "autograd/random.h"
#include "models/gpt/gpt_config.h"
#include "nn/kv_cache.h"
#include "nn/module.h"
#include "nn/multihead_attention.h"

namespace tg::models {

/// Keys and values of every layer for incremental decoding, preallocated to the longest context.
struct KVCache {
  std::vector<nn::KVCache> layers;  ///< per layer: keys and values [B, capacity, Hkv, D]
  int64_t length = 0;               ///< positions 0..length-1 are filled
  int64_t batch() const { return layers.empty() ? 0 : layers[0].batch(); }
  int64_t capacity() const { return layers.empty() ? 0 : layers[0].capacity(); }
  /// Forgets the cached positions (keeps the buffers).
  void reset() {
    length = 0;
    for (nn::KVCache& layer : layers) layer.reset();
  }
};

struct CausalLMForwardOptions {
  /// Compute the logits of the last position only ([B, 1, V]), as generation needs.
  bool logits_last_only = false;
  /// Incremental decoding: the T tokens take positions cache->length.. and are appended to the
  /// cache (inference only, under NoGradGuard). Null: positions 0..T-1, no cache.
  KVCache* cache = nullptr;
  /// Out: each layer's attention weights [B, H, T, S] (dense attention only), for inspection.
  std::vector<Tensor>* attention_weights = nullptr;
  /// Packed sequences (several documents in a row), as Hugging Face's position_ids and a document
  /// mask. position_ids: i64 [B, T], each token's position (GPT-2: the row of wpe, in
  /// [0, n_positions); Llama: its rotary position); undefined: 0..T-1 after the cache's length.
  /// document_ids: i64 [B, T], the document of each token; a token then attends only to earlier
  /// tokens of its own document, in every layer (one block mask per batch; every attention
  /// variant but linear, through flex_attention). Give both, positions restarting at 0 at each
  /// document start, and a row computes for each of its documents what that document alone
  /// computes. Training and evaluation, not with a cache.
  Tensor position_ids;
  Tensor document_ids;
};

struct CausalLMOutput {
  Tensor logits;  ///< [B, T, V] ([B, 1, V] with logits_last_only)
  Tensor loss;    ///< scalar mean cross-entropy over [B·T] (targets -1 ignored); undefined without targets
};

/// `config` with its attention kernel replaced, validated: what a decoder's set_attention keeps
/// before it hands the kernel to its layers.
template <class Config>
Config with_attention(Config config, const GPTAttention& attention) {
  config.attention = attention;
  config.validate();
  return config;
}

class CausalLM : public nn::Module {
 public:
  using nn::Module::Module;
  /// idx [B, T] i64 (token ids), targets [B, T] i64 (the next token of each position, -1 ignored)
  /// or undefined -> logits and loss. T plus the cache's length must not exceed context_length().
  virtual CausalLMOutput forward(const Tensor& idx, const Tensor& targets,
                                 const CausalLMForwardOptions& options = {}) = 0;
  /// idx [B, T] i64 -> logits [B, T, V].
  Tensor forward(const Tensor& idx) override { return forward(idx, Tensor(), {}).logits; }
  /// An empty cache for a batch of B: per layer keys and values [B, capacity, Hkv, D]
  /// (capacity 0: context_length()).
  KVCache make_cache(int64_t batch, int64_t capacity = 0) const;
  /// Every layer's attention module, first to last.
  virtual std::vector<const nn::MultiheadAttention*> attention_layers() const = 0;
  /// The longest context: GPT-2's n_positions, Llama's max_position_embeddings.
  virtual int64_t context_length() const = 0;
  /// The config field that holds it, for messages ("n_positions", "max_position_embeddings").
  virtual const char* context_length_field() const = 0;
  virtual int64_t vocab_size() const = 0;
  /// Changes the attention kernel (the parameters stay as they are).
  virtual void set_attention(const GPTAttention& attention) = 0;

  /// The generator dropout draws from (default_generator() when null); not owned.
  void set_dropout_generator(Generator* gen) { dropout_gen_ = gen; }
  /// Activation checkpointing: in training, each layer's activations are recomputed during
  /// backward instead of kept (tg::checkpoint), trading a second forward of the layers for
  /// memory. Off by default; never used with a KV cache or when returning attention weights.
  void set_activation_checkpointing(bool on) { activation_checkpointing_ = on; }
  bool activation_checkpointing() const { return activation_checkpointing_; }

 protected:
  Generator& dropout_generator() const { return dropout_gen_ ? *dropout_gen_ : default_generator(); }
  /// The checks every forward makes, tg::Error starting with type_name() otherwise: idx i64
  /// [B, T]; the cache's positions plus T within context_length(); a cache of `num_layers` layers
  /// of batch B, each as long as the cache says; targets of idx's shape and not with
  /// logits_last_only; position_ids and document_ids i64 [B, T] and not with a cache.
  void check_forward_inputs(const Tensor& idx, const Tensor& targets, const CausalLMForwardOptions& options,
                            int64_t num_layers) const;
  /// Layer `layer`'s attention call in a forward with `options`: the layer's cache and weights
  /// slot, the dropout generator, the packed documents' ids and positions.
  nn::SelfAttentionOptions layer_call(const CausalLMForwardOptions& options, int64_t layer);
  /// Whether forward checkpoints its layers in this call.
  bool checkpoints_layers(const CausalLMForwardOptions& options) const {
    return activation_checkpointing_ && is_training() && !options.cache && !options.attention_weights;
  }

 private:
  Generator* dropout_gen_ = nullptr;
  bool activation_checkpointing_ = false;
};

}  // namespace tg::models
