// --attention flex:PATTERN in the models: the GPT and the encoder run flex_attention through their
// one attention module, and give what the hand-written variant of the same pattern gives.
#include "models/encoder/encoder.h"
#include "models/decoders/generate.h"
#include "models/gpt/gpt.h"
#include "test_util.h"

namespace tg::models {
namespace {

GPTConfig tiny_gpt(const std::string& attention) {
  GPTConfig c;
  c.vocab_size = 13, c.n_positions = 24, c.n_embd = 12, c.n_layer = 2, c.n_head = 3, c.dtype = DType::f64;
  c.attention = GPTAttention::parse(attention);
  return c;
}

Tensor token_ids(int64_t B, int64_t T, int64_t vocab) {
  Tensor t = empty({B, T}, DType::i64);
  for (int64_t i = 0; i < t.numel(); ++i) t.data<int64_t>()[i] = (i * 7 + 3) % vocab;
  return t;
}

// The loss and every parameter's gradient of a GPT with `attention`, from the same weights.
std::pair<double, std::vector<Tensor>> loss_and_grads(const std::string& attention) {
  Generator gen(5);
  GPT model(tiny_gpt(attention), gen);
  Tensor idx = token_ids(2, 20, 13), targets = token_ids(2, 20, 11);
  Tensor loss = model.forward(idx, targets).loss;
  backward(loss);
  std::vector<Tensor> grads;
  for (const Tensor& p : model.parameters()) grads.push_back(p.grad());
  return {loss.item(), grads};
}

void expect_same_training(const std::string& flex, const std::string& variant) {
  SCOPED_TRACE(flex + " vs " + variant);
  auto [loss_a, grads_a] = loss_and_grads(flex);
  auto [loss_b, grads_b] = loss_and_grads(variant);
  EXPECT_NEAR(loss_a, loss_b, 1e-12);
  ASSERT_EQ(grads_a.size(), grads_b.size());
  for (size_t i = 0; i < grads_a.size(); ++i) testing::expect_close(grads_a[i], grads_b[i], 1e-10, 1e-12);
}

TEST(FlexModels, GPTWithAFlexPatternTrainsAsTheSameVariant) {
  expect_same_training("flex:causal", "dense");
  expect_same_training("flex:full", "flash");  // the GPT is causal: full becomes causal
  expect_same_training("flex:sliding:5", "sliding:5");
}

TEST(FlexModels, CachedDecodingEqualsTheWholeContext) {
  Generator init(3);
  GPT model(tiny_gpt("flex:alibi"), init);
  std::vector<int64_t> prompt = {1, 2, 3, 4};
  Generator a(9), b(9);
  EXPECT_EQ(generate(model, prompt, 12, 0.0, 0, a, /*use_kv_cache=*/true),
            generate(model, prompt, 12, 0.0, 0, b, /*use_kv_cache=*/false));
}

TEST(FlexModels, ConfigKeepsThePattern) {
  GPTConfig c = tiny_gpt("flex:softcap:30");
  GPTConfig d = GPTConfig::from_json(c.to_json());
  EXPECT_EQ(d.attention.name(), "flex:softcap:30");
  EXPECT_TG_ERROR(GPTAttention::parse("flex:wobbly"), "unknown pattern 'wobbly'");
  EXPECT_TG_ERROR(GPTAttention::parse("flex:document:4"), "only the attention bench means");
}

// The encoder pads its batches: flex with the key lengths gives what dense with them gives.
TEST(FlexModels, EncoderWithPaddingMatchesDense) {
  auto logits = [](const std::string& attention) {
    EncoderConfig c;
    c.vocab_size = 9, c.n_classes = 3, c.max_len = 16, c.n_layer = 2, c.n_head = 2, c.n_embd = 8, c.dropout = 0;
    c.attention = attention;
    EncoderClassifier model(c, DType::f64);
    Generator gen(4);
    model.reset_parameters(gen);
    model.eval();
    return model.forward(token_ids(3, 10, 9), {10, 6, 3});
  };
  testing::expect_close(logits("flex:full"), logits("dense"), 1e-10, 1e-12);
  testing::expect_close(logits("flex:sliding:2"), logits("sliding:2"), 1e-10, 1e-12);
  EXPECT_GT(testing::max_abs_diff(logits("flex:sliding:2"), logits("dense")), 1e-6);  // the pattern is used
}

}  // namespace
}  // namespace tg::models
