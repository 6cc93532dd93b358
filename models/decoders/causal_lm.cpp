#include "models/decoders/causal_lm.h"

#include "autograd/error.h"

namespace tg::models {

void CausalLM::check_forward_inputs(const Tensor& idx, const Tensor& targets, const CausalLMForwardOptions& options,
                                    int64_t num_layers) const {
  const std::string& me = type_name();
  TG_CHECK(idx.defined() && idx.dtype() == DType::i64 && idx.dim() == 2 && idx.size(1) >= 1,
           "{}: idx must be i64 [B, T] with T >= 1, got {} {}", me, idx.defined() ? idx.dtype() : DType::i64,
           idx.defined() ? shape_str(idx.shape()) : "undefined");
  const int64_t B = idx.size(0), T = idx.size(1), P = context_length();
  const KVCache* cache = options.cache;
  const int64_t pos0 = cache ? cache->length : 0;
  TG_CHECK(pos0 + T <= P, "{}: positions {}..{} exceed {} = {} (crop the context to the last {} tokens)", me, pos0,
           pos0 + T - 1, context_length_field(), P, P);
  if (cache) {
    TG_CHECK(int64_t(cache->layers.size()) == num_layers && cache->batch() == B,
             "{}: the KV cache has {} layers for a batch of {}; the model has {} layers, idx {}", me,
             cache->layers.size(), cache->batch(), num_layers, shape_str(idx.shape()));
    for (size_t i = 0; i < cache->layers.size(); ++i)
      TG_CHECK(cache->layers[i].length() == pos0,
               "{}: the KV cache's layer {} holds {} positions but the cache says {} (reset() it)", me, i,
               cache->layers[i].length(), pos0);
  }
  TG_CHECK(!targets.defined() || (targets.dtype() == DType::i64 && targets.shape() == idx.shape()),
           "{}: targets must be i64 of idx's shape {}, got {} {}", me, shape_str(idx.shape()),
           targets.defined() ? targets.dtype() : DType::i64, targets.defined() ? shape_str(targets.shape()) : "");
  TG_CHECK(!(targets.defined() && options.logits_last_only),
           "{}: targets need every position's logits; drop logits_last_only", me);
  for (const auto& [name, ids] : {std::pair{"position_ids", &options.position_ids}, {"document_ids", &options.document_ids}}) {
    if (!ids->defined()) continue;
    TG_CHECK(ids->dtype() == DType::i64 && ids->shape() == idx.shape(), "{}: {} must be i64 [B, T] like idx {}, got {} {}",
             me, name, shape_str(idx.shape()), dtype_name(ids->dtype()), shape_str(ids->shape()));
    TG_CHECK(!cache, "{}: {} are for packed sequences in training and evaluation, not with a KV cache", me, name);
  }
}

nn::SelfAttentionOptions CausalLM::layer_call(const CausalLMForwardOptions& options, int64_t layer) {
  nn::SelfAttentionOptions call;
  call.generator = &dropout_generator();
  if (options.cache) call.cache = &options.cache->layers[size_t(layer)];
  if (options.attention_weights) call.weights = &(*options.attention_weights)[size_t(layer)];
  call.position_ids = options.position_ids;
  call.document_ids = options.document_ids;
  return call;
}

KVCache CausalLM::make_cache(int64_t batch, int64_t capacity) const {
  TG_CHECK(batch > 0, "{}: make_cache needs a positive batch, got {}", type_name(), batch);
  TG_CHECK(capacity >= 0 && capacity <= context_length(), "{}: make_cache: capacity {} is not in [0, {} {}]",
           type_name(), capacity, context_length_field(), context_length());
  KVCache c;
  for (const nn::MultiheadAttention* attn : attention_layers())
    c.layers.push_back(attn->make_cache(batch, capacity > 0 ? capacity : context_length()));
  return c;
}

}  // namespace tg::models
