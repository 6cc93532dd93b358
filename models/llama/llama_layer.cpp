#include "models/llama/llama_layer.h"

#include "autograd/error.h"
#include "autograd/tape.h"
#include "ops/binary.h"
#include "ops/matmul.h"
#include "ops/shape_ops.h"
#include "ops/swiglu.h"
#include "ops/unary.h"

namespace tg::models {
namespace {

nn::RMSNormOptions rms_options(const LlamaConfig& c) {
  return nn::RMSNormOptions({c.hidden_size}).eps(c.rms_norm_eps).dtype(c.dtype);
}

std::shared_ptr<nn::Linear> projection(const LlamaConfig& c, int64_t in, int64_t out, bool bias) {
  return std::make_shared<nn::Linear>(nn::LinearOptions(in, out).bias(bias).dtype(c.dtype));
}

}  // namespace

nn::MultiheadAttentionOptions llama_attention_options(const LlamaConfig& c, int64_t layer) {
  TG_CHECK(!c.attention.missing_custom_pattern(),
           "Llama: the attention pattern '{}' was written in C++, and the config names it without holding it: give it "
           "again (LlamaConfig::attention = GPTAttention::from_pattern(...))",
           c.attention.flex);
  const bool sliding = c.layer_uses_sliding_window(layer);
  const GPTAttention& a = c.attention;
  return nn::MultiheadAttentionOptions(c.hidden_size, c.num_attention_heads)
      .kv_heads(c.num_key_value_heads)
      .dropout(a.variant == AttentionVariant::linear && !sliding ? 0.0 : c.attention_dropout)
      .bias(c.attention_bias)
      .out_bias(c.o_proj_bias())
      .rope(true)
      .rope_theta(c.rope_theta)
      .rope_scaling(c.rope_scaling)
      .variant(sliding ? AttentionVariant::sliding_window : a.variant)
      .window(sliding ? *c.sliding_window : a.window)
      .flex(sliding || a.custom ? "" : a.flex)
      .flex_pattern(sliding ? std::optional<FlexPattern>() : a.custom)
      .sparse(a.sparse)
      .causal(true)
      .layout(nn::AttentionLayout::llama)
      .init_parameters(false)
      .dtype(c.dtype);
}

LlamaMLP::LlamaMLP(const LlamaConfig& c) : Module("LlamaMLP") {
  const int64_t C = c.hidden_size, I = c.intermediate_size;
  gate_proj = register_module("gate_proj", projection(c, C, I, c.mlp_bias));
  up_proj = register_module("up_proj", projection(c, C, I, c.mlp_bias));
  down_proj = register_module("down_proj", projection(c, I, C, c.mlp_bias));
}

Tensor LlamaMLP::forward(const Tensor& x) {
  // Without gradients (evaluation, generation a token at a time): the two projections as they are.
  if (!is_grad_enabled()) return down_proj->forward(mul(silu(gate_proj->forward(x)), up_proj->forward(x)));
  // Training: gate and up as one GEMM over their weights side by side ([2I, C], remade each step:
  // a copy far smaller than the activations), then swiglu in one pass each way (the values of
  // silu then mul).
  Tensor w = cat({gate_proj->weight, up_proj->weight}, 0);
  Tensor b = gate_proj->bias.defined() ? cat({gate_proj->bias, up_proj->bias}, 0) : Tensor();
  return down_proj->forward(swiglu(linear(x, w, b)));  // [..., 2I] -> [..., I] -> [..., C]
}

LlamaDecoderLayer::LlamaDecoderLayer(const LlamaConfig& c, int64_t layer) : Module("LlamaDecoderLayer") {
  input_layernorm = register_module("input_layernorm", std::make_shared<nn::RMSNorm>(rms_options(c)));
  self_attn = register_module("self_attn", std::make_shared<nn::MultiheadAttention>(llama_attention_options(c, layer)));
  post_attention_layernorm =
      register_module("post_attention_layernorm", std::make_shared<nn::RMSNorm>(rms_options(c)));
  mlp = register_module("mlp", std::make_shared<LlamaMLP>(c));
}

Tensor LlamaDecoderLayer::forward(const Tensor& x, const nn::SelfAttentionOptions& call) {
  Tensor h = add(x, self_attn->forward(input_layernorm->forward(x), call));  // [B, T, C]
  return add(h, mlp->forward(post_attention_layernorm->forward(h)));
}

LlamaLayerList::LlamaLayerList(const LlamaConfig& c) : Module("ModuleList") {
  for (int64_t i = 0; i < c.num_hidden_layers; ++i)
    layers.push_back(register_module(std::to_string(i), std::make_shared<LlamaDecoderLayer>(c, i)));
}

}  // namespace tg::models
