#include "nn/multihead_attention.h"

#include <cmath>
#include <limits>

#include "autograd/error.h"
#include "autograd/tape.h"
#include "nn/init.h"
#include "ops/binary.h"
#include "ops/flex_attention.h"
#include "ops/matmul.h"
#include "ops/reduce.h"
#include "ops/shape_ops.h"

namespace tg::nn {
namespace {

// PyTorch's b8 masks say "true = not allowed"; tg::attention's say "true = may attend".
Tensor invert(const Tensor& mask) {
  Tensor out = empty(mask.shape(), DType::b8);
  const bool* src = mask.data<bool>();
  bool* dst = out.data<bool>();
  for (int64_t i = 0; i < mask.numel(); ++i) dst[i] = !src[i];
  return out;
}

// A b8 "true = may attend" mask as an additive one: 0 where allowed, -inf elsewhere.
Tensor additive_from_allowed(const Tensor& allowed, DType dtype) {
  Tensor out = empty(allowed.shape(), dtype);
  const bool* src = allowed.data<bool>();
  dispatch(dtype, [&]<class T>() {
    T* dst = out.data<T>();
    for (int64_t i = 0; i < allowed.numel(); ++i)
      dst[i] = src[i] ? T(0) : -std::numeric_limits<T>::infinity();
  });
  return out;
}

bool same_tensor(const Tensor& a, const Tensor& b) { return a.impl() == b.impl(); }

}  // namespace

MultiheadAttention::MultiheadAttention(const MultiheadAttentionOptions& opts)
    : Module("MultiheadAttention"), options(opts) {
  const int64_t C = opts.embed_dim(), H = opts.num_heads();
  TG_CHECK(C > 0 && H > 0,
           "MultiheadAttention: embed_dim and num_heads must be positive, got {} and {}", C, H);
  TG_CHECK(C % H == 0, "MultiheadAttention: embed_dim {} is not divisible by num_heads {}", C, H);
  TG_CHECK(opts.kv_heads() >= 0 && (opts.kv_heads() == 0 || H % opts.kv_heads() == 0),
           "MultiheadAttention: kv_heads {} must divide num_heads {} (0 = num_heads)", opts.kv_heads(), H);
  TG_CHECK(opts.kdim() >= 0 && opts.vdim() >= 0,
           "MultiheadAttention: kdim and vdim must be positive (or 0 for embed_dim), got {} and {}",
           opts.kdim(), opts.vdim());
  TG_CHECK(opts.dropout() >= 0.0 && opts.dropout() <= 1.0,
           "MultiheadAttention: dropout must be in [0, 1], got {}", opts.dropout());
  if (opts.flex_pattern()) {
    TG_CHECK(opts.flex().empty() || opts.flex() == opts.flex_pattern()->text(),
             "MultiheadAttention: flex '{}' and flex_pattern '{}' name two patterns; give one", opts.flex(),
             opts.flex_pattern()->text());
    flex_ = std::make_shared<FlexPatternCache>(*opts.flex_pattern());
    options.flex(opts.flex_pattern()->text());  // names it in messages
  } else if (!opts.flex().empty()) {
    flex_ = std::make_shared<FlexPatternCache>(opts.flex());
  }
  if (opts.rope()) {
    TG_CHECK(std::isfinite(opts.rope_theta()) && opts.rope_theta() > 0,
             "MultiheadAttention: rope_theta must be positive and finite, got {}", opts.rope_theta());
    TG_CHECK((C / H) % 2 == 0, "MultiheadAttention: rope needs an even head width, got {}", C / H);
    opts.rope_scaling().validate("MultiheadAttention: rope_scaling");
  }
  TG_CHECK(
      !(opts.variant() == AttentionVariant::linear && opts.dropout() > 0.0),
      "MultiheadAttention: the linear variant has no attention weights to drop out (dropout = {})",
      opts.dropout());
  if (options.kdim() == 0) options.kdim(C);
  if (options.vdim() == 0) options.vdim(C);
  if (options.kv_heads() == 0) options.kv_heads(H);
  head_dim = C / H;
  kv_heads = options.kv_heads();
  const int64_t width = (H + 2 * kv_heads) * head_dim;  // q, k, v features of the projection
  const DType dt = opts.dtype();
  if (opts.layout() == AttentionLayout::gpt2) {
    TG_CHECK(options.kdim() == C && options.vdim() == C,
             "MultiheadAttention: the gpt2 layout projects keys and values from embed_dim {}, got kdim {}, "
             "vdim {}",
             C, options.kdim(), options.vdim());
    c_attn = register_module("c_attn", std::make_shared<Conv1D>(Conv1DOptions(C, width).bias(opts.bias()).dtype(dt)));
    c_proj = register_module("c_proj", std::make_shared<Conv1D>(Conv1DOptions(C, C).bias(opts.bias()).dtype(dt)));
  } else if (opts.layout() == AttentionLayout::llama) {
    TG_CHECK(options.kdim() == C && options.vdim() == C,
             "MultiheadAttention: the llama layout projects keys and values from embed_dim {}, got kdim {}, vdim {}", C,
             options.kdim(), options.vdim());
    const auto proj = [&](int64_t out, bool bias) { return std::make_shared<Linear>(LinearOptions(C, out).bias(bias).dtype(dt)); };
    q_proj = register_module("q_proj", proj(H * head_dim, opts.bias()));
    k_proj = register_module("k_proj", proj(kv_heads * head_dim, opts.bias()));
    v_proj = register_module("v_proj", proj(kv_heads * head_dim, opts.bias()));
    out_proj = register_module("o_proj", proj(C, opts.out_bias().value_or(opts.bias())));
  } else {
    if (options.kdim() == C && options.vdim() == C) {
      in_proj_weight = register_parameter("in_proj_weight", zeros({width, C}, dt));
    } else {
      q_proj_weight = register_parameter("q_proj_weight", zeros({C, C}, dt));
      k_proj_weight = register_parameter("k_proj_weight", zeros({kv_heads * head_dim, options.kdim()}, dt));
      v_proj_weight = register_parameter("v_proj_weight", zeros({kv_heads * head_dim, options.vdim()}, dt));
    }
    if (opts.bias()) in_proj_bias = register_parameter("in_proj_bias", zeros({width}, dt));
    out_proj = register_module(
        "out_proj", std::make_shared<Linear>(LinearOptions(C, C).bias(opts.out_bias().value_or(opts.bias())).dtype(dt)));
  }
  if (opts.init_parameters()) reset_parameters();
}

void MultiheadAttention::reset_parameters() {
  if (q_proj) {
    for (const auto& proj : {q_proj, k_proj, v_proj, out_proj}) proj->reset_parameters();
    return;
  }
  if (c_attn) {
    c_attn->reset_parameters(default_generator());
    c_proj->reset_parameters(default_generator());
    return;
  }
  if (in_proj_weight.defined()) {
    init::xavier_uniform_(in_proj_weight);
  } else {
    init::xavier_uniform_(q_proj_weight);
    init::xavier_uniform_(k_proj_weight);
    init::xavier_uniform_(v_proj_weight);
  }
  out_proj->reset_parameters();
  if (in_proj_bias.defined()) init::zeros_(in_proj_bias);
  if (out_proj->bias.defined()) init::zeros_(out_proj->bias);
}

void MultiheadAttention::set_kernel(const MultiheadAttentionOptions& other) {
  options.variant(other.variant()).window(other.window()).sparse(other.sparse()).dropout(other.dropout());
}

void MultiheadAttention::share_flex_caches(const MultiheadAttention& other) {
  TG_CHECK(options.flex() == other.options.flex(),
           "MultiheadAttention: share_flex_caches between the patterns '{}' and '{}'", options.flex(), other.options.flex());
  flex_ = other.flex_;
  variant_as_flex_ = other.variant_as_flex_;
}

DType MultiheadAttention::param_dtype() const { return c_proj ? c_proj->weight.dtype() : out_proj->weight.dtype(); }

KVCache MultiheadAttention::make_cache(int64_t batch, int64_t capacity) const {
  return KVCache(batch, capacity, kv_heads, head_dim, param_dtype());
}

Tensor MultiheadAttention::llama_qkv_weight() const { return cat({q_proj->weight, k_proj->weight, v_proj->weight}, 0); }

Tensor MultiheadAttention::llama_qkv_bias() const {
  return q_proj->bias.defined() ? cat({q_proj->bias, k_proj->bias, v_proj->bias}, 0) : Tensor();
}

Tensor MultiheadAttention::project_qkv(const Tensor& x) const {
  if (q_proj && is_grad_enabled()) return linear(x, llama_qkv_weight(), llama_qkv_bias());
  if (q_proj) {
    std::vector<std::pair<const void*, uint64_t>> now;
    for (const auto& proj : {q_proj, k_proj, v_proj}) {
      now.emplace_back(proj->weight.impl(), proj->weight.version());
      if (proj->bias.defined()) now.emplace_back(proj->bias.impl(), proj->bias.version());
    }
    if (now != fused_from_ || !fused_weight_.defined()) {
      fused_weight_ = llama_qkv_weight();
      fused_bias_ = llama_qkv_bias();
      fused_from_ = std::move(now);
    }
    return linear(x, fused_weight_, fused_bias_);
  }
  return c_attn ? c_attn->forward(x) : linear(x, in_proj_weight, in_proj_bias);
}

Tensor MultiheadAttention::project_part(const Tensor& x, int64_t first, int64_t count,
                                        const Tensor& separate) const {
  if (q_proj) {
    Tensor b = llama_qkv_bias();
    return linear(x, narrow(llama_qkv_weight(), 0, first, count), b.defined() ? narrow(b, 0, first, count) : Tensor());
  }
  Tensor bias = in_proj_bias.defined() ? narrow(in_proj_bias, 0, first, count) : Tensor();
  if (c_attn) {
    Tensor b = c_attn->bias.defined() ? narrow(c_attn->bias, 0, first, count) : Tensor();
    return addmm(b, x, narrow(c_attn->weight, 1, first, count));  // Conv1D: weight [in, out]
  }
  return linear(x, separate.defined() ? separate : narrow(in_proj_weight, 0, first, count), bias);
}

Tensor MultiheadAttention::project_out(const Tensor& y) const {
  return c_proj ? c_proj->forward(y) : out_proj->forward(y);
}

AttentionSpec MultiheadAttention::kernel_spec() const {
  AttentionSpec spec;
  spec.variant = options.variant();
  spec.window = options.window();
  spec.sparse = options.sparse();
  spec.feature_map = options.feature_map();
  return spec;
}

AttentionSpec MultiheadAttention::make_spec(int64_t B, int64_t T, int64_t S,
                                            const Tensor& key_padding_mask, const Tensor& attn_mask,
                                            bool is_causal) const {
  const int64_t H = options.num_heads();
  const DType dt = param_dtype();
  AttentionSpec spec = kernel_spec();
  spec.causal = is_causal;
  spec.dropout_p = is_training() ? options.dropout() : 0.0;

  NoGradGuard no_grad;  // masks take no gradient
  Tensor additive;      // floating, broadcastable to [B, H, T, S]
  if (attn_mask.defined()) {
    const Shape& s = attn_mask.shape();
    TG_CHECK(s == Shape({T, S}) || s == Shape({B * H, T, S}),
             "MultiheadAttention: attn_mask of shape {} must be [T, S] = [{}, {}] or "
             "[B * num_heads, T, S] = [{}, {}, {}]",
             shape_str(s), T, S, B * H, T, S);
    TG_CHECK(attn_mask.dtype() == DType::b8 || is_floating(attn_mask.dtype()),
             "MultiheadAttention: attn_mask must be b8 or floating, got {}", attn_mask.dtype());
    Tensor m = attn_mask.dim() == 3 ? attn_mask.detach().view_of({B, H, T, S}) : attn_mask.detach();
    if (m.dtype() == DType::b8)
      spec.attn_mask = invert(m);
    else
      additive = m.to(dt);
  }
  if (key_padding_mask.defined()) {
    TG_CHECK(key_padding_mask.shape() == Shape({B, S}),
             "MultiheadAttention: key_padding_mask of shape {} must be [B, S] = [{}, {}]",
             shape_str(key_padding_mask.shape()), B, S);
    TG_CHECK(key_padding_mask.dtype() == DType::b8 || is_floating(key_padding_mask.dtype()),
             "MultiheadAttention: key_padding_mask must be b8 or floating, got {}",
             key_padding_mask.dtype());
    if (key_padding_mask.dtype() == DType::b8) {
      spec.key_padding_mask = key_padding_mask;  // the same convention: true = padding
    } else {
      // An additive key mask joins the general mask as [B, 1, 1, S].
      Tensor k4 = key_padding_mask.detach().to(dt).view_of({B, 1, 1, S});
      if (spec.attn_mask.defined()) additive = additive_from_allowed(spec.attn_mask, dt);
      spec.attn_mask = Tensor();
      additive = additive.defined() ? add(additive, k4) : k4;
    }
  }
  if (additive.defined()) spec.attn_mask = additive;
  return spec;
}

MultiheadAttentionOutput MultiheadAttention::forward(const Tensor& query, const Tensor& key,
                                                     const Tensor& value,
                                                     const Tensor& key_padding_mask,
                                                     bool need_weights, const Tensor& attn_mask,
                                                     bool average_attn_weights, bool is_causal) {
  const int64_t C = options.embed_dim(), H = options.num_heads(), Hkv = kv_heads, D = head_dim;
  TG_CHECK(query.defined() && key.defined() && value.defined(),
           "MultiheadAttention: query, key and value must be defined");
  TG_CHECK(!flex_, "MultiheadAttention: the flex pattern {} runs in self-attention: forward(x) or forward(x, options)",
           options.flex());
  TG_CHECK(!options.rope(), "MultiheadAttention: rotary positions run in self-attention: forward(x) or forward(x, options)");
  TG_CHECK(query.dim() == 3 && key.dim() == 3 && value.dim() == 3 && query.size(2) == C &&
               key.size(2) == options.kdim() && value.size(2) == options.vdim() &&
               key.size(0) == query.size(0) && value.size(0) == query.size(0) &&
               key.size(1) == value.size(1),
           "MultiheadAttention: query {}, key {}, value {} must be [B, T, embed_dim={}], "
           "[B, S, kdim={}], [B, S, vdim={}]",
           shape_str(query.shape()), shape_str(key.shape()), shape_str(value.shape()), C,
           options.kdim(), options.vdim());
  const DType dt = param_dtype();
  TG_CHECK(query.dtype() == dt && key.dtype() == dt && value.dtype() == dt,
           "MultiheadAttention: query, key, value are {}, {}, {} but the parameters are {}",
           query.dtype(), key.dtype(), value.dtype(), dt);
  TG_CHECK(!need_weights || options.variant() == AttentionVariant::dense,
           "MultiheadAttention: need_weights needs the dense variant, this module uses {} (pass "
           "need_weights = false)",
           attention_variant_name(options.variant()));
  const int64_t B = query.size(0), T = query.size(1), S = key.size(1);

  // Projections to [B, n, heads, D], read by attention in place (no permute).
  Tensor q, k, v;  // [B, T, H, D], [B, S, Hkv, D], [B, S, Hkv, D]
  Tensor qkv;      // self-attention: the packed projection [B, T, H + 2·Hkv, D], read in place
  if (fused() && same_tensor(query, key) && same_tensor(key, value)) {
    qkv = reshape(project_qkv(query), {B, T, H + 2 * Hkv, D});
  } else if (fused() && same_tensor(key, value)) {
    q = reshape(project_part(query, 0, H * D, Tensor()), {B, T, H, D});
    Tensor kv = reshape(project_part(key, H * D, 2 * Hkv * D, Tensor()), {B, S, 2 * Hkv, D});
    k = narrow(kv, 2, 0, Hkv), v = narrow(kv, 2, Hkv, Hkv);
  } else {
    q = reshape(project_part(query, 0, H * D, q_proj_weight), {B, T, H, D});
    k = reshape(project_part(key, H * D, Hkv * D, k_proj_weight), {B, S, Hkv, D});
    v = reshape(project_part(value, (H + Hkv) * D, Hkv * D, v_proj_weight), {B, S, Hkv, D});
  }

  AttentionSpec spec = make_spec(B, T, S, key_padding_mask, attn_mask, is_causal);
  Tensor weights;                                                            // [B, H, T, S]
  Tensor* w = need_weights ? &weights : nullptr;
  Tensor out = qkv.defined() ? attention_qkv(qkv, Hkv, spec, w) : attention(q, k, v, spec, w);  // [B, T, H, D]
  MultiheadAttentionOutput result;
  result.output = project_out(reshape(out, {B, T, C}));
  if (need_weights) result.weights = average_attn_weights ? mean(weights, {1}) : weights;
  return result;
}

Tensor MultiheadAttention::forward(const Tensor& x) {
  if (flex_ || options.rope()) return forward(x, SelfAttentionOptions{});
  return forward(x, x, x, Tensor(), false, Tensor(), true, options.causal()).output;
}

Tensor MultiheadAttention::flex_self_attention(FlexPatternCache& pattern, const Tensor& qkv, KVCache* cache,
                                               const SelfAttentionOptions& call) {
  const int64_t H = options.num_heads(), Hkv = kv_heads, T = qkv.size(1);
  TG_CHECK(!call.key_padding_mask.defined(), "MultiheadAttention: the flex pattern {} takes key_lengths, not a "
                                             "key_padding_mask",
           options.flex());
  const int64_t pos = cache ? cache->length() : 0;
  Tensor q = narrow(qkv, 2, 0, H), k, v;
  if (cache) {
    cache->append_packed(qkv, H);
    k = cache->keys(), v = cache->values();
  } else {
    k = narrow(qkv, 2, H, Hkv), v = narrow(qkv, 2, H + Hkv, Hkv);
  }
  const FlexProblem& p =
      pattern.problem(H, T, pos + T, pos, options.causal(), qkv.dtype(), call.key_lengths, call.document_ids);
  FlexOptions fo;
  fo.dropout_p = is_training() ? options.dropout() : 0.0;
  fo.generator = call.generator;
  fo.enable_gqa = Hkv != H;
  return flex_attention(q, k, v, p.score_mod, p.block_mask, fo);
}

Tensor MultiheadAttention::forward(const Tensor& x, const SelfAttentionOptions& call) {
  const int64_t C = options.embed_dim(), H = options.num_heads(), Hkv = kv_heads, D = head_dim;
  const DType dt = param_dtype();
  TG_CHECK(x.defined() && x.dim() == 3 && x.size(2) == C && x.dtype() == dt,
           "MultiheadAttention: x must be {} [B, T, embed_dim={}], got {} {}", dt, C,
           x.defined() ? x.dtype() : dt, x.defined() ? shape_str(x.shape()) : "undefined");
  TG_CHECK(fused(), "MultiheadAttention: forward(x, options) projects q, k, v from x: it needs kdim = vdim = "
                    "embed_dim, got kdim {}, vdim {}",
           options.kdim(), options.vdim());
  TG_CHECK(!call.weights || options.variant() == AttentionVariant::dense,
           "MultiheadAttention: only the dense variant returns its weights (asked of {})",
           attention_variant_name(options.variant()));
  const int64_t B = x.size(0), T = x.size(1);
  KVCache* cache = call.cache;
  if (call.document_ids.defined()) {
    TG_CHECK(call.document_ids.dtype() == DType::i64 && call.document_ids.shape() == Shape({B, T}),
             "MultiheadAttention: document_ids must be i64 [B, T] = [{}, {}] like x {}, got {} {}", B, T,
             shape_str(x.shape()), dtype_name(call.document_ids.dtype()), shape_str(call.document_ids.shape()));
    TG_CHECK(!cache, "MultiheadAttention: document_ids are for packed training sequences, not for cached decoding");
    TG_CHECK(!call.weights, "MultiheadAttention: document_ids run flex_attention, which returns no weights");
    if (!flex_) {
      try {
        variant_as_flex_->set_pattern(flex_pattern_of_variant(kernel_spec()));
      } catch (const Error& e) {
        fail("MultiheadAttention: document_ids: {}", e.what());
      }
    }
  }
  const int64_t pos = cache ? cache->length() : 0;  // where the new queries sit among the keys
  if (cache) {
    TG_CHECK(!is_grad_enabled(), "MultiheadAttention: the KV cache is for inference; run it under NoGradGuard");
    TG_CHECK(cache->batch() == B && cache->kv_heads() == Hkv && cache->head_dim() == D,
             "MultiheadAttention: a KV cache of batch {}, {} kv heads of width {} does not fit x {} ({} kv "
             "heads of width {})",
             cache->batch(), cache->kv_heads(), cache->head_dim(), shape_str(x.shape()), Hkv, D);
  }
  // The fused projection [B, T, H + 2·Hkv, D]: q heads, then k heads, then v heads per row.
  Tensor qkv = reshape(project_qkv(x), {B, T, H + 2 * Hkv, D});
  if (options.rope()) {
    RopeOptions ro;
    ro.theta = options.rope_theta();
    ro.scaling = options.rope_scaling();
    ro.position_offset = pos;
    ro.rotated_heads = H + Hkv;  // q and k
    if (call.position_ids.defined()) {
      TG_CHECK(call.position_ids.dtype() == DType::i64 && call.position_ids.shape() == Shape({B, T}),
               "MultiheadAttention: position_ids must be i64 [B, T] = [{}, {}] like x {}, got {} {}", B, T,
               shape_str(x.shape()), dtype_name(call.position_ids.dtype()), shape_str(call.position_ids.shape()));
      ro.positions = call.position_ids;
    }
    qkv = rope(qkv, ro);
  }
  const int64_t S = pos + T;
  AttentionSpec spec = make_spec(B, T, S, call.key_padding_mask, Tensor(), options.causal());
  spec.key_lengths = call.key_lengths;
  spec.generator = call.generator;
  Tensor y;  // [B, T, H, D]
  if (flex_ || call.document_ids.defined()) {
    y = flex_self_attention(flex_ ? *flex_ : *variant_as_flex_, qkv, cache, call);
  } else if (cache) {
    cache->append_packed(qkv, H);  // the keys and values of positions pos..pos+T-1
    spec.query_offset = pos;
    y = attention(narrow(qkv, 2, 0, H), cache->keys(), cache->values(), spec, call.weights);
  } else {
    y = attention_qkv(qkv, Hkv, spec, call.weights);
  }
  return project_out(reshape(y, {B, T, C}));
}

std::string MultiheadAttention::extra_repr() const {
  std::string s =
      fmt::format("embed_dim={}, num_heads={}", options.embed_dim(), options.num_heads());
  if (kv_heads != options.num_heads()) s += fmt::format(", kv_heads={}", kv_heads);
  if (!fused()) s += fmt::format(", kdim={}, vdim={}", options.kdim(), options.vdim());
  if (c_attn) s += ", layout=gpt2";
  if (q_proj) s += ", layout=llama";
  if (options.rope()) s += fmt::format(", rope_theta={}", options.rope_theta());
  if (options.causal()) s += ", causal=true";
  if (options.dropout() > 0) s += fmt::format(", dropout={}", options.dropout());
  if (!options.bias()) s += ", bias=false";
  if (flex_)
    s += ", pattern=" + options.flex();
  else if (options.variant() != AttentionVariant::dense)
    s += ", variant=" + attention_variant_name(options.variant());
  return s;
}

}  // namespace tg::nn
