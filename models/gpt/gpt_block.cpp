#include "models/gpt/gpt_block.h"

#include "autograd/error.h"
#include "ops/binary.h"
#include "ops/dropout.h"
#include "ops/unary.h"

namespace tg::models {
namespace {

nn::LayerNormOptions ln_options(const GPTConfig& c) {
  return nn::LayerNormOptions({c.n_embd}).eps(c.layer_norm_epsilon).bias(c.bias).dtype(c.dtype);
}

nn::Conv1DOptions conv_options(const GPTConfig& c, int64_t in, int64_t out) {
  return nn::Conv1DOptions(in, out).bias(c.bias).dtype(c.dtype);
}

}  // namespace

nn::MultiheadAttentionOptions gpt_attention_options(const GPTConfig& c) {
  TG_CHECK(!c.attention.missing_custom_pattern(),
           "GPT: the attention pattern '{}' was written in C++, and a config names it without holding it: give it "
           "again (GPTConfig::attention, or LoadGPTOptions::attention when loading a checkpoint, = "
           "GPTAttention::from_pattern(FlexPattern::custom(\"{}\", ...)))",
           c.attention.flex, c.attention.flex.substr(std::string("flex:custom:").size()));
  const bool linear = c.attention.variant == AttentionVariant::linear;
  return nn::MultiheadAttentionOptions(c.n_embd, c.n_head)
      .dropout(linear ? 0.0 : c.dropout)  // linear attention keeps the residual dropout only
      .bias(c.bias)
      .variant(c.attention.variant)
      .flex(c.attention.custom ? "" : c.attention.flex)
      .flex_pattern(c.attention.custom)
      .window(c.attention.window)
      .sparse(c.attention.sparse)
      .causal(true)
      .layout(nn::AttentionLayout::gpt2)
      .init_parameters(false)  // GPT::reset_parameters draws every parameter
      .dtype(c.dtype);
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

Block::Block(const GPTConfig& c, Generator& gen) : Module("Block"), dropout_p(c.dropout) {
  ln_1 = register_module("ln_1", std::make_shared<nn::LayerNorm>(ln_options(c)));
  attn = register_module("attn", std::make_shared<nn::MultiheadAttention>(gpt_attention_options(c)));
  ln_2 = register_module("ln_2", std::make_shared<nn::LayerNorm>(ln_options(c)));
  mlp = register_module("mlp", std::make_shared<MLP>(c, gen));
}

Tensor Block::forward(const Tensor& x, const nn::SelfAttentionOptions& call) {
  Tensor a = attn->forward(ln_1->forward(x), call);  // [B, T, C]
  Tensor h = add(x, dropout(a, dropout_p, is_training(), call.generator ? *call.generator : default_generator()));
  return add(h, mlp->forward(ln_2->forward(h), call.generator));
}

BlockList::BlockList(const GPTConfig& c, Generator& gen) : Module("ModuleList") {
  for (int64_t i = 0; i < c.n_layer; ++i)
    blocks.push_back(register_module(std::to_string(i), std::make_shared<Block>(c, gen)));
}

}  // namespace tg::models
