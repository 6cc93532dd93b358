#include "nn/multihead_attention.h"

#include <limits>

#include "autograd/error.h"
#include "autograd/tape.h"
#include "nn/init.h"
#include "ops/binary.h"
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
  TG_CHECK(opts.kdim() >= 0 && opts.vdim() >= 0,
           "MultiheadAttention: kdim and vdim must be positive (or 0 for embed_dim), got {} and {}",
           opts.kdim(), opts.vdim());
  TG_CHECK(opts.dropout() >= 0.0 && opts.dropout() <= 1.0,
           "MultiheadAttention: dropout must be in [0, 1], got {}", opts.dropout());
  TG_CHECK(
      !(opts.variant() == AttentionVariant::linear && opts.dropout() > 0.0),
      "MultiheadAttention: the linear variant has no attention weights to drop out (dropout = {})",
      opts.dropout());
  if (options.kdim() == 0) options.kdim(C);
  if (options.vdim() == 0) options.vdim(C);
  head_dim = C / H;
  const DType dt = opts.dtype();
  if (options.kdim() == C && options.vdim() == C) {
    in_proj_weight = register_parameter("in_proj_weight", empty({3 * C, C}, dt));
  } else {
    q_proj_weight = register_parameter("q_proj_weight", empty({C, C}, dt));
    k_proj_weight = register_parameter("k_proj_weight", empty({C, options.kdim()}, dt));
    v_proj_weight = register_parameter("v_proj_weight", empty({C, options.vdim()}, dt));
  }
  if (opts.bias()) in_proj_bias = register_parameter("in_proj_bias", empty({3 * C}, dt));
  out_proj = register_module(
      "out_proj", std::make_shared<Linear>(LinearOptions(C, C).bias(opts.bias()).dtype(dt)));
  reset_parameters();
}

void MultiheadAttention::reset_parameters() {
  if (fused()) {
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

AttentionSpec MultiheadAttention::make_spec(int64_t B, int64_t T, int64_t S,
                                            const Tensor& key_padding_mask, const Tensor& attn_mask,
                                            bool is_causal) const {
  const int64_t H = options.num_heads();
  const DType dt = out_proj->weight.dtype();
  AttentionSpec spec;
  spec.variant = options.variant();
  spec.window = options.window();
  spec.sparse = options.sparse();
  spec.feature_map = options.feature_map();
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
  const int64_t C = options.embed_dim(), H = options.num_heads(), D = head_dim;
  TG_CHECK(query.defined() && key.defined() && value.defined(),
           "MultiheadAttention: query, key and value must be defined");
  TG_CHECK(query.dim() == 3 && key.dim() == 3 && value.dim() == 3 && query.size(2) == C &&
               key.size(2) == options.kdim() && value.size(2) == options.vdim() &&
               key.size(0) == query.size(0) && value.size(0) == query.size(0) &&
               key.size(1) == value.size(1),
           "MultiheadAttention: query {}, key {}, value {} must be [B, T, embed_dim={}], "
           "[B, S, kdim={}], [B, S, vdim={}]",
           shape_str(query.shape()), shape_str(key.shape()), shape_str(value.shape()), C,
           options.kdim(), options.vdim());
  const DType dt = out_proj->weight.dtype();
  TG_CHECK(query.dtype() == dt && key.dtype() == dt && value.dtype() == dt,
           "MultiheadAttention: query, key, value are {}, {}, {} but the parameters are {}",
           query.dtype(), key.dtype(), value.dtype(), dt);
  TG_CHECK(!need_weights || options.variant() == AttentionVariant::dense,
           "MultiheadAttention: need_weights needs the dense variant, this module uses {} (pass "
           "need_weights = false)",
           attention_variant_name(options.variant()));
  const int64_t B = query.size(0), T = query.size(1), S = key.size(1);

  // Projections to [B, n, H, D], read by attention in place (no permute).
  auto bias = [&](int64_t first, int64_t parts) {
    return in_proj_bias.defined() ? narrow(in_proj_bias, 0, first * C, parts * C) : Tensor();
  };
  auto rows = [&](int64_t first, int64_t parts) {
    return narrow(in_proj_weight, 0, first * C, parts * C);
  };
  // Piece i of a packed [B, n, parts * C] projection.
  auto piece = [&](const Tensor& packed, int64_t n, int64_t parts, int64_t i) {
    return reshape(narrow(reshape(packed, {B, n, parts, H, D}), 2, i, 1), {B, n, H, D});
  };
  Tensor q, k, v;  // [B, T, H, D], [B, S, H, D], [B, S, H, D]
  Tensor qkv;      // self-attention: the packed projection [B, T, 3, H, D], read in place
  if (fused() && same_tensor(query, key) && same_tensor(key, value)) {
    qkv = reshape(linear(query, in_proj_weight, in_proj_bias), {B, T, 3, H, D});
  } else if (fused() && same_tensor(key, value)) {
    q = reshape(linear(query, rows(0, 1), bias(0, 1)), {B, T, H, D});
    Tensor kv = linear(key, rows(1, 2), bias(1, 2));  // [B, S, 2C]
    k = piece(kv, S, 2, 0), v = piece(kv, S, 2, 1);
  } else {
    q = reshape(linear(query, fused() ? rows(0, 1) : q_proj_weight, bias(0, 1)), {B, T, H, D});
    k = reshape(linear(key, fused() ? rows(1, 1) : k_proj_weight, bias(1, 1)), {B, S, H, D});
    v = reshape(linear(value, fused() ? rows(2, 1) : v_proj_weight, bias(2, 1)), {B, S, H, D});
  }

  AttentionSpec spec = make_spec(B, T, S, key_padding_mask, attn_mask, is_causal);
  Tensor weights;                                                            // [B, H, T, S]
  Tensor* w = need_weights ? &weights : nullptr;
  Tensor out = qkv.defined() ? attention_qkv(qkv, spec, w) : attention(q, k, v, spec, w);  // [B, T, H, D]
  MultiheadAttentionOutput result;
  result.output = out_proj->forward(reshape(out, {B, T, C}));
  if (need_weights) result.weights = average_attn_weights ? mean(weights, {1}) : weights;
  return result;
}

Tensor MultiheadAttention::forward(const Tensor& x) {
  return forward(x, x, x, Tensor(), false, Tensor(), true, options.causal()).output;
}

std::string MultiheadAttention::extra_repr() const {
  std::string s =
      fmt::format("embed_dim={}, num_heads={}", options.embed_dim(), options.num_heads());
  if (!fused()) s += fmt::format(", kdim={}, vdim={}", options.kdim(), options.vdim());
  if (options.dropout() > 0) s += fmt::format(", dropout={}", options.dropout());
  if (!options.bias()) s += ", bias=false";
  if (options.variant() != AttentionVariant::dense)
    s += ", variant=" + attention_variant_name(options.variant());
  return s;
}

}  // namespace tg::nn
