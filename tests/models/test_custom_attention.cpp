// A pattern written in C++ (FlexPattern::custom: mask_mod and score_mod lambdas) in a GPT: it
// computes what the named pattern of the same mask or score computes, config.json keeps its
// name, and a checkpoint trained with it loads only when the pattern is given again.
#include "models/gpt/gpt.h"
#include "models/gpt/gpt_checkpoint.h"
#include "ops/flex_patterns.h"
#include "test_util.h"

namespace tg::models {
namespace {

using testing::TempDir;

GPTConfig tiny(const GPTAttention& attention) {
  GPTConfig c;
  c.vocab_size = 13, c.n_positions = 24, c.n_embd = 12, c.n_layer = 2, c.n_head = 3, c.dtype = DType::f64;
  c.attention = attention;
  return c;
}

// The last 5 keys, as a lambda: flex:sliding:5's mask.
GPTAttention window_of_five() {
  return GPTAttention::from_pattern(
      FlexPattern::custom("window5", mask_mod("window5", [](int64_t, int64_t, int64_t q, int64_t k) { return q - k < 5; })));
}

Tensor token_ids(int64_t B, int64_t T, int64_t vocab) {
  Tensor t = empty({B, T}, DType::i64);
  for (int64_t i = 0; i < t.numel(); ++i) t.data<int64_t>()[i] = (i * 7 + 3) % vocab;
  return t;
}

std::pair<double, std::vector<Tensor>> loss_and_grads(const GPTAttention& attention) {
  Generator gen(5);
  GPT model(tiny(attention), gen);
  Tensor loss = model.forward(token_ids(2, 20, 13), token_ids(2, 20, 11)).loss;
  backward(loss);
  std::vector<Tensor> grads;
  for (const Tensor& p : model.parameters()) grads.push_back(p.grad());
  return {loss.item(), grads};
}

void expect_same_training(const GPTAttention& a, const GPTAttention& b) {
  auto [loss_a, grads_a] = loss_and_grads(a);
  auto [loss_b, grads_b] = loss_and_grads(b);
  EXPECT_NEAR(loss_a, loss_b, 1e-12);
  ASSERT_EQ(grads_a.size(), grads_b.size());
  for (size_t i = 0; i < grads_a.size(); ++i) testing::expect_close(grads_a[i], grads_b[i], 1e-10, 1e-12);
}

TEST(CustomAttention, LambdasComputeWhatTheNamedPatternsCompute) {
  expect_same_training(window_of_five(), GPTAttention::parse("flex:sliding:5"));
  // A score_mod lambda (with its derivative): Gemma 2's soft-capping at 2.
  ScoreMod cap = score_mod(
      "cap2", [](auto s, int64_t, int64_t, int64_t, int64_t, const auto&) { return 2 * std::tanh(s / 2); },
      [](auto s, auto g, int64_t, int64_t, int64_t, int64_t, const auto&) {
        auto t = std::tanh(s / 2);
        return g * (1 - t * t);
      });
  expect_same_training(GPTAttention::from_pattern(FlexPattern::custom("cap2", {}, cap)),
                       GPTAttention::parse("flex:softcap:2"));
  // The model's causal mask is applied on top: a mask allowing every key is causal attention.
  expect_same_training(
      GPTAttention::from_pattern(FlexPattern::custom("all", mask_mod("all", [](int64_t, int64_t, int64_t, int64_t) {
                                                        return true;
                                                      }))),
      GPTAttention::parse("dense"));
  EXPECT_EQ(window_of_five().name(), "flex:custom:window5");
  EXPECT_TG_ERROR(GPTAttention::parse("flex:custom:window5"), "a custom pattern is written in C++");
}

TEST(CustomAttention, ACheckpointNeedsThePatternAgain) {
  TempDir dir;
  Generator gen(2);
  GPT model(tiny(window_of_five()), gen);
  save_checkpoint(dir / "ck", model);
  // config.json names the pattern; reading it is fine, building a model from it is not.
  GPTConfig stored = load_gpt_config(dir / "ck");
  EXPECT_EQ(stored.attention.flex, "flex:custom:window5");
  EXPECT_TRUE(stored.attention.missing_custom_pattern());
  EXPECT_TG_ERROR(GPT(stored, gen), "GPT: the attention pattern 'flex:custom:window5' was written in C++");
  EXPECT_TG_ERROR(load_gpt(dir / "ck"),
                  fmt::format("load_gpt: {}/config.json names the attention pattern 'flex:custom:window5', written "
                              "in C++ by the program that trained it",
                              dir / "ck"));
  // Given again, the checkpoint loads and computes what the model computed.
  LoadGPTOptions again;
  again.attention = window_of_five();
  LoadedGPT loaded = load_gpt(dir / "ck", again);
  Tensor idx = token_ids(1, 16, 13);
  testing::expect_close(loaded.model->forward(idx), model.forward(idx), 0, 0);
}

}  // namespace
}  // namespace tg::models
