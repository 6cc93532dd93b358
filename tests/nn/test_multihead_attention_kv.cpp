// nn::MultiheadAttention's self-attention path with kv heads, GPT-2's layout and the KV cache:
// against the composed reference (projections by hand, ops/attention_reference.h), with and
// without kv heads < heads; cached decoding chunk by chunk equals the uncached forward for
// every variant; f64 gradcheck of the module; its errors.
#include <set>

#include "nn/multihead_attention.h"
#include "ops/attention_reference.h"
#include "ops/matmul.h"
#include "ops/shape_ops.h"
#include "test_util.h"

namespace tg {
namespace {

using testing::expect_close;
using testing::uniform;

nn::MultiheadAttentionOptions options(int64_t C, int64_t H, int64_t Hkv) {
  return nn::MultiheadAttentionOptions(C, H).kv_heads(Hkv).dtype(DType::f64);
}

// Non-zero biases, so the test sees them.
void randomise(nn::MultiheadAttention& m, uint64_t seed) {
  NoGradGuard no_grad;
  int i = 0;
  for (auto& [name, p] : m.named_parameters()) p.copy_(uniform(p.shape(), seed + uint64_t(i++), -0.6, 0.6));
}

// The module's self-attention computed by hand: the projection, the pieces, the reference.
Tensor by_hand(const nn::MultiheadAttention& m, const Tensor& x, const AttentionSpec& spec) {
  const int64_t B = x.size(0), T = x.size(1), C = x.size(2), H = m.options.num_heads(), Hkv = m.kv_heads,
                D = m.head_dim;
  Tensor qkv = linear(x, m.in_proj_weight, m.in_proj_bias);  // [B, T, (H + 2 Hkv) D]
  auto heads = [&](int64_t first, int64_t n) {
    return reshape(narrow(qkv, 2, first * D, n * D), {B, T, n, D});
  };
  Tensor y = attention_reference(heads(0, H), heads(H, Hkv), heads(H + Hkv, Hkv), spec);
  return m.out_proj->forward(reshape(y, {B, T, C}));
}

TEST(MultiheadAttentionKv, SelfAttentionMatchesTheReference) {
  Tensor x = uniform({2, 5, 8}, 1);
  for (int64_t Hkv : {4, 2, 1}) {
    for (bool causal : {false, true}) {
      SCOPED_TRACE(fmt::format("kv heads {}, causal {}", Hkv, causal));
      nn::MultiheadAttention m(options(8, 4, Hkv).causal(causal));
      randomise(m, 10);
      EXPECT_EQ(m.in_proj_weight.shape(), Shape({(4 + 2 * Hkv) * 2, 8}));
      AttentionSpec spec;
      spec.causal = causal;
      spec.key_lengths = {5, 3};
      nn::SelfAttentionOptions call;
      call.key_lengths = {5, 3};
      expect_close(m.forward(x, call), by_hand(m, x, spec), 1e-12, 1e-12);
      // The three-input forward with one tensor takes the same fused path.
      Tensor kpm = tensor({0, 0, 0, 0, 0, 0, 0, 0, 1, 1}, {2, 5}, DType::b8);
      expect_close(m.forward(x, x, x, kpm, false, Tensor(), true, causal).output, by_hand(m, x, spec), 1e-12, 1e-12);
    }
  }
}

// GPT-2's layout holds the same projection transposed ([in, out]) under c_attn / c_proj.
TEST(MultiheadAttentionKv, Gpt2LayoutEqualsPytorchLayout) {
  nn::MultiheadAttention pt(options(8, 4, 2).causal(true));
  randomise(pt, 20);
  nn::MultiheadAttention g2(options(8, 4, 2).causal(true).layout(nn::AttentionLayout::gpt2));
  std::set<std::string> names;
  for (auto& [name, p] : g2.named_parameters()) names.insert(name);
  EXPECT_EQ(names, std::set<std::string>({"c_attn.weight", "c_attn.bias", "c_proj.weight", "c_proj.bias"}));
  EXPECT_EQ(g2.c_attn->weight.shape(), Shape({8, 16}));
  {
    NoGradGuard no_grad;
    g2.c_attn->weight.copy_(transpose(pt.in_proj_weight, 0, 1));
    g2.c_attn->bias.copy_(pt.in_proj_bias);
    g2.c_proj->weight.copy_(transpose(pt.out_proj->weight, 0, 1));
    g2.c_proj->bias.copy_(pt.out_proj->bias);
  }
  Tensor x = uniform({2, 4, 8}, 2), kv = uniform({2, 6, 8}, 3);
  expect_close(g2.forward(x, nn::SelfAttentionOptions{}), pt.forward(x, nn::SelfAttentionOptions{}), 1e-12, 1e-12);
  // Cross-attention slices the projection the same way in both layouts.
  expect_close(g2.forward(x, kv, kv, Tensor(), false).output, pt.forward(x, kv, kv, Tensor(), false).output, 1e-12,
               1e-12);
}

// Cached decoding in chunks (3, then 1, 2, 1) against the uncached forward of each prefix.
void expect_cache_matches(nn::MultiheadAttention& m, const std::vector<int64_t>& chunks) {
  NoGradGuard no_grad;
  Tensor x = uniform({2, 7, 8}, 4);
  nn::KVCache cache = m.make_cache(2, 7);
  EXPECT_EQ(cache.kv_heads(), m.kv_heads);
  nn::SelfAttentionOptions call;
  call.cache = &cache;
  int64_t pos = 0;
  for (int64_t n : chunks) {
    Tensor got = m.forward(narrow(x, 1, pos, n).clone(), call);
    Tensor full = m.forward(narrow(x, 1, 0, pos + n).clone(), nn::SelfAttentionOptions{});
    expect_close(got, narrow(full, 1, pos, n), 1e-12, 1e-12);
    pos += n;
    EXPECT_EQ(cache.length(), pos);
  }
}

TEST(MultiheadAttentionKv, CachedDecodingEqualsTheFullForward) {
  for (AttentionVariant variant : {AttentionVariant::dense, AttentionVariant::flash, AttentionVariant::sliding_window,
                                   AttentionVariant::sparse, AttentionVariant::linear}) {
    for (int64_t Hkv : {4, 2}) {
      SCOPED_TRACE(fmt::format("{}, kv heads {}", attention_variant_name(variant), Hkv));
      nn::MultiheadAttention m(options(8, 4, Hkv).causal(true).variant(variant).window(2).sparse({2, 1, 1, 1, 5}));
      randomise(m, 30);
      expect_cache_matches(m, {3, 1, 2, 1});
    }
  }
}

// Module gradients through finite differences: x and every parameter.
TEST(MultiheadAttentionKv, GradcheckF64) {
  for (auto layout : {nn::AttentionLayout::pytorch, nn::AttentionLayout::gpt2}) {
    nn::MultiheadAttention m(options(4, 2, 1).causal(true).layout(layout));
    randomise(m, 40);
    std::vector<Tensor> inputs = {uniform({2, 3, 4}, 5)};
    for (auto& [name, p] : m.named_parameters()) inputs.push_back(p.detach().clone());
    testing::expect_gradcheck(
        [&m](const std::vector<Tensor>& in) {
          // The module's parameters become gradcheck's leaves for this call.
          auto params = m.named_parameters();
          for (size_t i = 0; i < params.size(); ++i) {
            const std::string& name = params[i].first;
            Tensor& slot = name == "in_proj_weight"   ? m.in_proj_weight
                           : name == "in_proj_bias"   ? m.in_proj_bias
                           : name == "out_proj.weight" ? m.out_proj->weight
                           : name == "out_proj.bias"   ? m.out_proj->bias
                           : name == "c_attn.weight"   ? m.c_attn->weight
                           : name == "c_attn.bias"     ? m.c_attn->bias
                           : name == "c_proj.weight"   ? m.c_proj->weight
                                                       : m.c_proj->bias;
            slot = in[i + 1];
          }
          nn::SelfAttentionOptions call;
          call.key_lengths = {3, 2};
          return m.forward(in[0], call);
        },
        inputs);
  }
}

TEST(MultiheadAttentionKv, Errors) {
  EXPECT_TG_ERROR(nn::MultiheadAttention(options(8, 4, 3)), "kv_heads 3 must divide num_heads 4");
  nn::MultiheadAttention m(options(8, 4, 2).causal(true));
  nn::KVCache cache = m.make_cache(2, 4);
  nn::SelfAttentionOptions call;
  call.cache = &cache;
  EXPECT_TG_ERROR(m.forward(uniform({2, 2, 8}, 1), call), "run it under NoGradGuard");
  NoGradGuard no_grad;
  m.forward(uniform({2, 3, 8}, 1), call);
  EXPECT_TG_ERROR(m.forward(uniform({2, 2, 8}, 1), call),
                  "KVCache: appending 2 positions ([2, 2, 8, 2]) after 3 overflows the cache of 4 positions");
  EXPECT_EQ(cache.length(), 3);
  EXPECT_TG_ERROR(m.forward(uniform({1, 1, 8}, 1), call), "a KV cache of batch 2, 2 kv heads of width 2 does not fit");
  EXPECT_TG_ERROR(m.forward(uniform({2, 1, 6}, 1), call), "x must be f64 [B, T, embed_dim=8]");
  // Nothing is appended when the call is refused.
  nn::MultiheadAttention flash(options(8, 4, 2).causal(true).variant(AttentionVariant::flash));
  nn::KVCache flash_cache = flash.make_cache(2, 4);
  Tensor weights;
  nn::SelfAttentionOptions asks_weights;
  asks_weights.cache = &flash_cache;
  asks_weights.weights = &weights;
  EXPECT_TG_ERROR(flash.forward(uniform({2, 1, 8}, 1), asks_weights),
                  "only the dense variant returns its weights (asked of flash)");
  EXPECT_EQ(flash_cache.length(), 0);
}

}  // namespace
}  // namespace tg
