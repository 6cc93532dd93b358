#include "models/llama/llama.h"

#include "autograd/checkpoint.h"
#include "autograd/error.h"
#include "nn/init.h"
#include "ops/loss.h"
#include "ops/matmul.h"
#include "ops/shape_ops.h"

namespace tg::models {
namespace {

const LlamaConfig& validated(const LlamaConfig& c) {
  c.validate();
  return c;
}

}  // namespace

LlamaModel::LlamaModel(const LlamaConfig& c) : Module("LlamaModel") {
  embed_tokens = register_module(
      "embed_tokens", std::make_shared<nn::Embedding>(nn::EmbeddingOptions(c.vocab_size, c.hidden_size).dtype(c.dtype)));
  layers = register_module("layers", std::make_shared<LlamaLayerList>(c));
  norm = register_module("norm", std::make_shared<nn::RMSNorm>(
                                     nn::RMSNormOptions({c.hidden_size}).eps(c.rms_norm_eps).dtype(c.dtype)));
}

Llama::Llama(const LlamaConfig& cfg, Generator& gen) : CausalLM("Llama"), config(validated(cfg)) {
  {
    KeepDefaultGenerator keep;  // the submodules' own draws, replaced by reset_parameters below
    model = register_module("model", std::make_shared<LlamaModel>(cfg));
    if (!cfg.tie_word_embeddings)
      lm_head = register_module("lm_head", std::make_shared<nn::Linear>(nn::LinearOptions(cfg.hidden_size, cfg.vocab_size)
                                                                            .bias(false)
                                                                            .dtype(cfg.dtype)));
  }
  // One block mask per batch (packed documents) or size, for every layer of the same pattern.
  const auto& layers = model->layers->layers;
  for (size_t i = 1; i < layers.size(); ++i)
    for (size_t j = 0; j < i; ++j)
      if (layers[j]->self_attn->options.flex() == layers[i]->self_attn->options.flex() &&
          config.layer_uses_sliding_window(int64_t(i)) == config.layer_uses_sliding_window(int64_t(j))) {
        layers[i]->self_attn->share_flex_caches(*layers[j]->self_attn);
        break;
      }
  reset_parameters(gen);
}

void Llama::reset_parameters(Generator& gen) {
  for (auto& [name, p] : named_parameters()) {
    if (p.dim() == 2)
      nn::init::normal_(p, 0.0, config.initializer_range, gen);
    else if (name.ends_with(".bias"))
      nn::init::zeros_(p);
    else
      nn::init::ones_(p);  // RMSNorm weights
  }
}

CausalLMOutput Llama::forward(const Tensor& idx, const Tensor& targets, const CausalLMForwardOptions& options) {
  check_forward_inputs(idx, targets, options, config.num_hidden_layers);
  const int64_t B = idx.size(0), T = idx.size(1), V = config.vocab_size, L = config.num_hidden_layers;
  KVCache* cache = options.cache;

  Tensor x = model->embed_tokens->forward(idx);  // [B, T, C]
  if (options.attention_weights) options.attention_weights->assign(size_t(L), Tensor());
  for (int64_t i = 0; i < L; ++i) {
    const nn::SelfAttentionOptions call = layer_call(options, i);
    std::shared_ptr<LlamaDecoderLayer> layer = model->layers->layers[size_t(i)];
    if (checkpoints_layers(options))
      x = checkpoint([layer, call](const std::vector<Tensor>& in) { return layer->forward(in[0], call); }, {x},
                     call.generator);
    else
      x = layer->forward(x, call);
  }
  x = model->norm->forward(x);
  if (options.logits_last_only) x = narrow(x, 1, T - 1, 1);  // [B, 1, C]
  CausalLMOutput out;
  out.logits = linear(x, lm_head ? lm_head->weight : model->embed_tokens->weight);  // [B, T, V]
  if (targets.defined())
    out.loss = cross_entropy(reshape(out.logits, {B * T, V}), reshape(targets, {B * T}), /*ignore_index=*/-1);
  if (cache) cache->length += T;
  return out;
}

std::vector<const nn::MultiheadAttention*> Llama::attention_layers() const {
  std::vector<const nn::MultiheadAttention*> out;
  for (const auto& layer : model->layers->layers) out.push_back(layer->self_attn.get());
  return out;
}

void Llama::set_attention(const GPTAttention& attention) {
  config = with_attention(config, attention);
  for (int64_t i = 0; i < config.num_hidden_layers; ++i)
    model->layers->layers[size_t(i)]->self_attn->set_kernel(llama_attention_options(config, i));
}

}  // namespace tg::models
