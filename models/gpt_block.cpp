#include "models/gpt_block.h"

#include <cmath>
#include <cstring>

#include "autograd/error.h"
#include "autograd/tape.h"
#include "ops/binary.h"
#include "ops/dropout.h"
#include "ops/shape_ops.h"
#include "ops/unary.h"

namespace tg::models {
namespace {

nn::LayerNormOptions ln_options(const GPTConfig& c) {
  return nn::LayerNormOptions({c.n_embd}).eps(c.layer_norm_epsilon).bias(c.bias).dtype(c.dtype);
}

nn::Conv1DOptions conv_options(const GPTConfig& c, int64_t in, int64_t out) {
  return nn::Conv1DOptions(in, out).bias(c.bias).dtype(c.dtype);
}

// Copies x [B, T, H, D] into cache [B, P, H, D] at positions [pos, pos + T).
void write_cache(Tensor& cache, const Tensor& x, int64_t pos) {
  const int64_t B = x.size(0), T = x.size(1), P = cache.size(1), row = x.size(2) * x.size(3);
  TG_CHECK(cache.dtype() == x.dtype() && cache.size(0) == B && cache.size(2) * cache.size(3) == row,
           "GPT: KV cache {} {} does not fit keys {} {}", cache.dtype(), shape_str(cache.shape()), x.dtype(),
           shape_str(x.shape()));
  TG_CHECK(pos + T <= P, "GPT: KV cache holds {} positions, cannot write positions {}..{}", P, pos,
           pos + T - 1);
  const size_t es = element_size(x.dtype());
  auto* dst = static_cast<char*>(cache.raw_data());
  const auto* src = static_cast<const char*>(x.raw_data());
  for (int64_t b = 0; b < B; ++b)
    std::memcpy(dst + size_t((b * P + pos) * row) * es, src + size_t(b * T * row) * es, size_t(T * row) * es);
  cache.bump_version();
}

// b8 [T, S]: query t (absolute position pos + t) may see key s when keep(pos + t, s).
template <class Keep>
Tensor query_mask(int64_t pos, int64_t T, int64_t S, Keep keep) {
  Tensor m = empty({T, S}, DType::b8);
  bool* p = m.data<bool>();
  for (int64_t t = 0; t < T; ++t)
    for (int64_t s = 0; s < S; ++s) p[t * S + s] = keep(pos + t, s);
  return m;
}

}  // namespace

CausalSelfAttention::CausalSelfAttention(const GPTConfig& c, Generator& gen)
    : Module("CausalSelfAttention"), attention(c.attention), n_head(c.n_head), dropout_p(c.dropout) {
  c_attn = register_module("c_attn", std::make_shared<nn::Conv1D>(conv_options(c, c.n_embd, 3 * c.n_embd), &gen));
  c_proj = register_module("c_proj", std::make_shared<nn::Conv1D>(conv_options(c, c.n_embd, c.n_embd), &gen));
}

Tensor CausalSelfAttention::forward(const Tensor& x, const BlockStep& step) {
  const int64_t B = x.size(0), T = x.size(1), C = x.size(2), H = n_head, D = C / H;
  // c_attn -> [B, T, 3C] = [B, T, 3, H, D]: q, k, v each [B, T, H, D], the layout attention reads.
  Tensor qkv = reshape(c_attn->forward(x), {B, T, 3, H, D});
  Tensor q, k, v;  // split from qkv only for the KV cache; attention_qkv reads qkv in place

  const int64_t pos = step.pos;
  TG_CHECK(step.cache_k || pos == 0, "GPT: a forward at position {} needs the KV cache of positions 0..{}", pos,
           pos - 1);
  if (step.cache_k) {
    TG_CHECK(!is_grad_enabled(), "GPT: the KV cache is for inference; run it under NoGradGuard");
    q = reshape(narrow(qkv, 2, 0, 1), {B, T, H, D});
    k = reshape(narrow(qkv, 2, 1, 1), {B, T, H, D});
    v = reshape(narrow(qkv, 2, 2, 1), {B, T, H, D});
    write_cache(*step.cache_k, k, pos);
    write_cache(*step.cache_v, v, pos);
    k = narrow(*step.cache_k, 1, 0, pos + T);  // [B, S, H, D], S = pos + T
    v = narrow(*step.cache_v, 1, 0, pos + T);
  }
  const int64_t S = pos + T;

  AttentionSpec spec;
  spec.variant = attention.variant;
  spec.window = attention.window;
  spec.sparse = attention.sparse;
  // Linear attention has no weights to drop out; its blocks keep the residual dropout only.
  spec.dropout_p = is_training() && attention.variant != AttentionVariant::linear ? dropout_p : 0.0;
  spec.generator = step.gen;
  if (pos == 0) {
    spec.causal = true;  // T == S: the usual causal pattern
  } else {
    // Queries at absolute positions pos..pos+T-1 over cached keys 0..S-1. The kernels' causal
    // mask is top-left aligned, so a single query (T = 1) is simply non-causal; longer chunks and
    // the patterns of sliding_window and sparse become an explicit mask on the dense kernel.
    const AttentionVariant var = attention.variant;
    if (var == AttentionVariant::sliding_window) {
      const int64_t w = attention.window;
      spec.variant = AttentionVariant::dense;
      spec.attn_mask = query_mask(pos, T, S, [w](int64_t t, int64_t s) { return s <= t && s > t - w; });
    } else if (var == AttentionVariant::sparse) {
      spec.variant = AttentionVariant::dense;
      spec.attn_mask = narrow(sparse_layout_mask(attention.sparse, S, S, /*causal=*/true), 0, pos, T);
    } else if (T > 1) {
      TG_CHECK(var != AttentionVariant::linear,
               "GPT: linear attention with a KV cache takes one token at a time after the prompt (got {})", T);
      spec.attn_mask = query_mask(pos, T, S, [](int64_t t, int64_t s) { return s <= t; });
    }
  }
  Tensor y = step.cache_k ? tg::attention(q, k, v, spec, step.weights)  // [B, T, H, D]
                         : tg::attention_qkv(qkv, spec, step.weights);
  y = c_proj->forward(reshape(y, {B, T, C}));
  return dropout(y, dropout_p, is_training(), step.gen ? *step.gen : default_generator());
}

MLP::MLP(const GPTConfig& c, Generator& gen)
    : Module("MLP"), approximate(c.activation == "gelu" ? "none" : "tanh"), dropout_p(c.dropout) {
  c_fc = register_module("c_fc", std::make_shared<nn::Conv1D>(conv_options(c, c.n_embd, 4 * c.n_embd), &gen));
  c_proj = register_module("c_proj", std::make_shared<nn::Conv1D>(conv_options(c, 4 * c.n_embd, c.n_embd), &gen));
}

Tensor MLP::forward(const Tensor& x, Generator* gen) {
  Tensor y = c_proj->forward(gelu(c_fc->forward(x), approximate));
  return dropout(y, dropout_p, is_training(), gen ? *gen : default_generator());
}

Block::Block(const GPTConfig& c, Generator& gen) : Module("Block") {
  ln_1 = register_module("ln_1", std::make_shared<nn::LayerNorm>(ln_options(c)));
  attn = register_module("attn", std::make_shared<CausalSelfAttention>(c, gen));
  ln_2 = register_module("ln_2", std::make_shared<nn::LayerNorm>(ln_options(c)));
  mlp = register_module("mlp", std::make_shared<MLP>(c, gen));
}

Tensor Block::forward(const Tensor& x, const BlockStep& step) {
  Tensor h = add(x, attn->forward(ln_1->forward(x), step));
  return add(h, mlp->forward(ln_2->forward(h), step.gen));
}

BlockList::BlockList(const GPTConfig& c, Generator& gen) : Module("ModuleList") {
  for (int64_t i = 0; i < c.n_layer; ++i)
    blocks.push_back(register_module(std::to_string(i), std::make_shared<Block>(c, gen)));
}

}  // namespace tg::models
