#include "models/gpt/gpt.h"

#include <cmath>

#include "autograd/checkpoint.h"
#include "autograd/error.h"
#include "nn/init.h"
#include "ops/binary.h"
#include "ops/dropout.h"
#include "ops/loss.h"
#include "ops/matmul.h"
#include "ops/shape_ops.h"

namespace tg::models {
namespace {

bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

const GPTConfig& validated(const GPTConfig& c) {
  c.validate();
  return c;
}

}  // namespace

GPT::GPT(const GPTConfig& cfg, Generator& gen) : CausalLM("GPT"), config(validated(cfg)) {
  {
    KeepDefaultGenerator keep;
    Generator scratch(0);  // the submodules' own draws, replaced by reset_parameters below
    const auto emb = [&](int64_t n) { return nn::EmbeddingOptions(n, cfg.n_embd).dtype(cfg.dtype); };
    wte = register_module("wte", std::make_shared<nn::Embedding>(emb(cfg.vocab_size)));
    wpe = register_module("wpe", std::make_shared<nn::Embedding>(emb(cfg.n_positions)));
    h = register_module("h", std::make_shared<BlockList>(cfg, scratch));
    // One block mask per batch (packed documents) or size, for every layer.
    for (size_t i = 1; i < h->blocks.size(); ++i) h->blocks[i]->attn->share_flex_caches(*h->blocks[0]->attn);
    ln_f = register_module("ln_f", std::make_shared<nn::LayerNorm>(nn::LayerNormOptions({cfg.n_embd})
                                                                        .eps(cfg.layer_norm_epsilon)
                                                                        .bias(cfg.bias)
                                                                        .dtype(cfg.dtype)));
  }
  reset_parameters(gen);
}

GPT::GPT(const GPTConfig& cfg) : GPT(cfg, *std::make_unique<Generator>(0)) {}

void GPT::reset_parameters(Generator& gen) {
  const double std = 0.02, proj_std = 0.02 / std::sqrt(2.0 * double(config.n_layer));
  for (auto& [name, p] : named_parameters()) {
    if (p.dim() == 2) {
      nn::init::normal_(p, 0.0, ends_with(name, "c_proj.weight") ? proj_std : std, gen);
    } else if (ends_with(name, ".bias")) {
      nn::init::zeros_(p);
    } else {
      nn::init::ones_(p);  // LayerNorm weights
    }
  }
}

GPTOutput GPT::forward(const Tensor& idx, const Tensor& targets, const GPTForwardOptions& options) {
  check_forward_inputs(idx, targets, options, config.n_layer);
  check_position_rows(options.position_ids);
  const int64_t B = idx.size(0), T = idx.size(1), V = config.vocab_size, L = config.n_layer;
  KVCache* cache = options.cache;
  const int64_t pos0 = cache ? cache->length : 0;
  Generator& gen = dropout_generator();

  // Token + position embeddings: [B, T, C] + [T, C] (rows pos0.. of wpe, a view), or the rows
  // position_ids pick [B, T, C].
  Tensor x = options.position_ids.defined() ? add(wte->forward(idx), wpe->forward(options.position_ids))
                                            : add(wte->forward(idx), narrow(wpe->weight, 0, pos0, T));
  x = dropout(x, config.dropout, is_training(), gen);
  if (options.attention_weights) options.attention_weights->assign(size_t(L), Tensor());
  for (int64_t i = 0; i < L; ++i) {
    const nn::SelfAttentionOptions call = layer_call(options, i);
    std::shared_ptr<Block> block = h->blocks[size_t(i)];
    if (checkpoints_layers(options))
      x = checkpoint([block, call](const std::vector<Tensor>& in) { return block->forward(in[0], call); }, {x},
                     call.generator);
    else
      x = block->forward(x, call);
  }
  x = ln_f->forward(x);
  if (options.logits_last_only) x = narrow(x, 1, T - 1, 1);  // [B, 1, C]
  GPTOutput out;
  out.logits = linear(x, wte->weight);  // tied head: [B, T, C] · [V, C]ᵀ -> [B, T, V]
  if (targets.defined())
    out.loss = cross_entropy(reshape(out.logits, {B * T, V}), reshape(targets, {B * T}), /*ignore_index=*/-1);
  if (cache) cache->length += T;
  return out;
}

void GPT::check_position_rows(const Tensor& position_ids) const {
  if (!position_ids.defined()) return;
  const int64_t* p = position_ids.data<int64_t>();
  const int64_t T = position_ids.size(1);
  for (int64_t i = 0; i < position_ids.numel(); ++i)
    TG_CHECK(p[i] >= 0 && p[i] < config.n_positions, "GPT: position_ids[{}, {}] = {} is outside [0, n_positions = {})",
             i / T, i % T, p[i], config.n_positions);
}

std::vector<const nn::MultiheadAttention*> GPT::attention_layers() const {
  std::vector<const nn::MultiheadAttention*> out;
  for (const auto& block : h->blocks) out.push_back(block->attn.get());
  return out;
}

void GPT::set_attention(const GPTAttention& attention) {
  config = with_attention(config, attention);
  const nn::MultiheadAttentionOptions kernel = gpt_attention_options(config);
  for (auto& block : h->blocks) block->attn->set_kernel(kernel);
}

int64_t GPT::num_parameters(bool include_position_embedding) const {
  int64_t n = Module::num_parameters();
  return include_position_embedding ? n : n - wpe->weight.numel();
}

}  // namespace tg::models
