// The Llama family against transformers: small random LlamaForCausalLM, MistralForCausalLM and
// Qwen2ForCausalLM checkpoints written by transformers' own save_pretrained
// (tests/models/make_llama_fixtures.py: F32, a BF16 sharded one with Llama 3's rope scaling, an
// F16 multi-query one with linear scaling, Mistral's sliding window, Qwen2's biases and tied
// head), with transformers' logits, loss, every gradient and 5 AdamW steps computed in f64 from
// the weights as stored. tapegrad loads each directory with load_llama and reproduces them, in
// f64 and in f32.
#include <map>

#include "models/decoders/generate.h"
#include "models/llama/llama_checkpoint.h"
#include "nn/optim/adamw.h"
#include "nn/safetensors.h"
#include "test_util.h"

namespace tg::models {
namespace {

const std::string kLlamaReferenceFixtures = std::string(TAPEGRAD_SOURCE_DIR) + "/tests/models/fixtures/llama";

const nn::StateDict& reference(const std::string& name) {
  static std::map<std::string, nn::StateDict> refs;
  auto it = refs.find(name);
  if (it == refs.end())
    it = refs.emplace(name, nn::load_safetensors(kLlamaReferenceFixtures + "/" + name + "_reference.safetensors")).first;
  return it->second;
}

LoadedLlama load(const std::string& name, DType dtype) {
  LoadLlamaOptions o;
  o.dtype = dtype;
  return load_llama(kLlamaReferenceFixtures + "/" + name, o);
}

class LlamaReferenceP : public ::testing::TestWithParam<const char*> {};

TEST_P(LlamaReferenceP, LogitsLossAndEveryGradientMatchTransformersInFloat64) {
  const nn::StateDict& ref = reference(GetParam());
  LoadedLlama loaded = load(GetParam(), DType::f64);
  CausalLMOutput out = loaded.model->forward(ref.at("idx"), ref.at("targets"));
  const double scale = testing::max_abs(ref.at("logits"));
  EXPECT_LE(testing::max_abs_diff(out.logits, ref.at("logits")), 1e-9 * scale);
  EXPECT_NEAR(out.loss.item(), ref.at("loss").item(), 1e-9);
  backward(out.loss);
  int checked = 0;
  for (auto& [name, p] : loaded.model->named_parameters()) {
    ASSERT_TRUE(ref.count("grad." + name)) << name << " has no reference gradient";
    const Tensor& want = ref.at("grad." + name);
    ASSERT_TRUE(p.grad().defined()) << name;
    EXPECT_LE(testing::max_abs_diff(p.grad(), want), 1e-8 * std::max(1.0, testing::max_abs(want))) << name;
    EXPECT_GT(testing::max_abs(want), 1e-6) << name << ": a vanishing gradient would check nothing";
    ++checked;
  }
  int references = 0;
  for (const auto& [name, t] : ref) references += name.starts_with("grad.");
  EXPECT_EQ(checked, references);
}

TEST_P(LlamaReferenceP, Float32IsWithin1e5OfTheFloat64Reference) {
  const nn::StateDict& ref = reference(GetParam());
  LoadedLlama loaded = load(GetParam(), DType::f32);
  CausalLMOutput out = loaded.model->forward(ref.at("idx"), ref.at("targets"));
  const Tensor& logits = ref.at("logits");
  EXPECT_LE(testing::max_abs_diff(out.logits.to(DType::f64), logits), 1e-5 * testing::max_abs(logits));
  EXPECT_NEAR(out.loss.item(), ref.at("loss").item(), 1e-5);
  backward(out.loss);
  for (auto& [name, p] : loaded.model->named_parameters()) {
    const Tensor& want = ref.at("grad." + name);
    EXPECT_LE(testing::max_abs_diff(p.grad().to(DType::f64), want), 1e-4 * testing::max_abs(want)) << name;
  }
}

TEST_P(LlamaReferenceP, FiveAdamWStepsMatchTransformers) {
  const nn::StateDict& ref = reference(GetParam());
  LoadedLlama loaded = load(GetParam(), DType::f64);
  optim::AdamW opt(optim::decay_groups(*loaded.model, 0.1), optim::AdamWOptions(1e-3).beta1(0.9).beta2(0.95).eps(1e-8));
  std::vector<double> losses;
  for (int step = 0; step < 5; ++step) {
    opt.zero_grad();
    Tensor loss = loaded.model->forward(ref.at("idx"), ref.at("targets")).loss;
    losses.push_back(loss.item());
    backward(loss);
    opt.step();
  }
  losses.push_back(loaded.model->forward(ref.at("idx"), ref.at("targets")).loss.item());
  const Tensor& want = ref.at("adamw_losses");
  ASSERT_EQ(int64_t(losses.size()), want.numel());
  for (size_t i = 0; i < losses.size(); ++i) EXPECT_NEAR(losses[i], want.at({int64_t(i)}), 1e-8) << "step " << i;
}

TEST_P(LlamaReferenceP, FlashAttentionComputesWhatDenseDoes) {
  const nn::StateDict& ref = reference(GetParam());
  LoadLlamaOptions o;
  o.dtype = DType::f64;
  o.attention = GPTAttention::parse("flash");
  LoadedLlama loaded = load_llama(kLlamaReferenceFixtures + "/" + GetParam(), o);
  CausalLMOutput out = loaded.model->forward(ref.at("idx"), ref.at("targets"));
  EXPECT_LE(testing::max_abs_diff(out.logits, ref.at("logits")), 1e-9 * testing::max_abs(ref.at("logits")));
}

// Greedy decoding: the same tokens with and without the KV cache (the cache holds Hkv heads).
TEST_P(LlamaReferenceP, KVCacheGivesTheSameTokens) {
  LoadedLlama loaded = load(GetParam(), DType::f32);
  const std::vector<int64_t> prompt = {1, 5, 9, 2};
  Generator g1(3), g2(3);
  EXPECT_EQ(generate(*loaded.model, prompt, 12, 0.0, 0, g1, /*use_kv_cache=*/true),
            generate(*loaded.model, prompt, 12, 0.0, 0, g2, /*use_kv_cache=*/false));
  Generator s1(4), s2(4);  // sampled too
  EXPECT_EQ(generate(*loaded.model, prompt, 12, 1.0, 0, s1, true), generate(*loaded.model, prompt, 12, 1.0, 0, s2, false));
}

// What tapegrad writes, it reads back to the same logits; in BF16, the values rounded once.
TEST_P(LlamaReferenceP, SavedCheckpointLoadsToTheSameLogits) {
  const nn::StateDict& ref = reference(GetParam());
  LoadedLlama loaded = load(GetParam(), DType::f64);
  testing::TempDir dir;
  save_llama(dir.file("ckpt"), *loaded.model, nullptr, nullptr, "float64");
  LoadedLlama back = load_llama(dir.file("ckpt"));
  EXPECT_EQ(back.config.dtype, DType::f64);
  EXPECT_EQ(testing::max_abs_diff(back.model->forward(ref.at("idx")), loaded.model->forward(ref.at("idx"))), 0.0);
  const auto names = [](const nn::Module& m) {
    std::vector<std::string> out;
    for (const auto& [name, p] : m.named_parameters()) out.push_back(name + " " + shape_str(p.shape()));
    return out;
  };
  EXPECT_EQ(names(*back.model), names(*loaded.model));
}

INSTANTIATE_TEST_SUITE_P(Fixtures, LlamaReferenceP,
                         ::testing::Values("llama_tiny", "llama3_scaled", "llama_linear_rope", "mistral_tiny",
                                           "qwen2_tiny"),
                         [](const auto& info) { return std::string(info.param); });

}  // namespace
}  // namespace tg::models
