// The whole-model test, as llm.c's test_gpt2: small GPT-2s written in plain PyTorch
// (tests/models/make_gpt2_fixture.py) give checkpoints in Hugging Face's layout, the logits, the
// loss, every parameter's gradient, and the losses of 5 SGD and 5 AdamW steps; tapegrad loads each
// checkpoint with load_gpt and must reproduce all of them. gpt2_tiny is T=16; gpt2_t130 is T=130,
// past two 64-key blocks, so causal attention skips blocks and ends on a partial one.
#include <map>

#include "models/gpt/gpt_checkpoint.h"
#include "nn/optim/adamw.h"
#include "nn/optim/sgd.h"
#include "nn/safetensors.h"
#include "test_util.h"

namespace tg::models {
namespace {

const std::string kFixtures = std::string(TAPEGRAD_SOURCE_DIR) + "/tests/models/fixtures";

// fixtures/NAME_reference.safetensors, read once per fixture.
const nn::StateDict& reference(const std::string& name) {
  static std::map<std::string, nn::StateDict> refs;
  auto it = refs.find(name);
  if (it == refs.end())
    it = refs.emplace(name, nn::load_safetensors(kFixtures + "/" + name + "_reference.safetensors")).first;
  return it->second;
}

// The model's losses before each of 5 steps and after the last.
template <class Optimizer>
std::vector<double> step_losses(GPT& model, Optimizer& opt, const nn::StateDict& ref) {
  const Tensor& idx = ref.at("idx");
  const Tensor& targets = ref.at("targets");
  std::vector<double> losses;
  for (int step = 0; step < 5; ++step) {
    opt.zero_grad();
    Tensor loss = model.forward(idx, targets).loss;
    losses.push_back(loss.item());
    backward(loss);
    opt.step();
  }
  losses.push_back(model.forward(idx, targets).loss.item());
  return losses;
}

void expect_losses(const std::vector<double>& got, const Tensor& want, double tol, const char* what) {
  ASSERT_EQ(int64_t(got.size()), want.numel()) << what;
  for (size_t i = 0; i < got.size(); ++i) EXPECT_NEAR(got[i], want.at({int64_t(i)}), tol) << what << " step " << i;
}

TEST(GPTReference, LoadsHuggingFaceCheckpoint) {
  LoadedGPT loaded = load_gpt(kFixtures + "/gpt2_tiny");
  EXPECT_EQ(loaded.config.vocab_size, 17);
  EXPECT_EQ(loaded.config.n_positions, 16);
  EXPECT_EQ(loaded.config.n_embd, 12);
  EXPECT_EQ(loaded.config.n_layer, 2);
  EXPECT_EQ(loaded.config.n_head, 3);
  EXPECT_EQ(loaded.config.dtype, DType::f64);  // torch_dtype float64
  EXPECT_EQ(loaded.config.dropout, 0.0);
  // The file's "transformer."-prefixed values landed under the bare names.
  nn::StateDict file = nn::load_safetensors(kFixtures + "/gpt2_tiny/model.safetensors");
  for (auto& [name, p] : loaded.model->named_parameters())
    EXPECT_EQ(p.to_vector(), file.at("transformer." + name).to_vector()) << name;
}

class GPTReferenceP : public ::testing::TestWithParam<const char*> {};

TEST_P(GPTReferenceP, LogitsLossAndEveryGradientMatchPyTorch) {
  const nn::StateDict& ref = reference(GetParam());
  LoadedGPT loaded = load_gpt(kFixtures + "/" + GetParam());
  GPT& model = *loaded.model;
  GPTOutput out = model.forward(ref.at("idx"), ref.at("targets"));
  EXPECT_LE(testing::max_abs_diff(out.logits, ref.at("logits")), 1e-11);
  EXPECT_NEAR(out.loss.item(), ref.at("loss").item(), 1e-12);
  backward(out.loss);
  int checked = 0;
  for (auto& [name, p] : model.named_parameters()) {
    const Tensor& want = ref.at("grad." + name);
    ASSERT_TRUE(p.grad().defined()) << name;
    double scale = std::max(1.0, testing::max_abs(want));
    EXPECT_LE(testing::max_abs_diff(p.grad(), want), 1e-10 * scale) << name;
    EXPECT_GT(testing::max_abs(want), 1e-6) << name << ": a vanishing gradient would check nothing";
    ++checked;
  }
  EXPECT_EQ(checked, 2 + 12 * 2 + 2);
}

TEST_P(GPTReferenceP, FiveSGDStepsMatchPyTorch) {
  const nn::StateDict& ref = reference(GetParam());
  LoadedGPT loaded = load_gpt(kFixtures + "/" + GetParam());
  optim::SGD opt(loaded.model->parameters(), optim::SGDOptions(0.1).momentum(0.9));
  expect_losses(step_losses(*loaded.model, opt, ref), ref.at("sgd_losses"), 1e-10, "SGD");
}

TEST_P(GPTReferenceP, FiveAdamWStepsMatchPyTorch) {
  const nn::StateDict& ref = reference(GetParam());
  LoadedGPT loaded = load_gpt(kFixtures + "/" + GetParam());
  optim::AdamW opt(optim::decay_groups(*loaded.model, 0.1),
                   optim::AdamWOptions(1e-3).beta1(0.9).beta2(0.95).eps(1e-8));
  expect_losses(step_losses(*loaded.model, opt, ref), ref.at("adamw_losses"), 1e-10, "AdamW");
}

// The same checkpoint computed in f32 (values converted on load), against the f64 reference.
TEST_P(GPTReferenceP, Float32IsCloseToTheFloat64Reference) {
  const nn::StateDict& ref = reference(GetParam());
  LoadGPTOptions opts;
  opts.dtype = DType::f32;
  LoadedGPT loaded = load_gpt(kFixtures + "/" + GetParam(), opts);
  GPT& model = *loaded.model;
  EXPECT_EQ(model.wte->weight.dtype(), DType::f32);
  GPTOutput out = model.forward(ref.at("idx"), ref.at("targets"));
  const Tensor& logits = ref.at("logits");
  EXPECT_LE(testing::max_abs_diff(out.logits.to(DType::f64), logits), 1e-5 * testing::max_abs(logits));
  EXPECT_NEAR(out.loss.item(), ref.at("loss").item(), 1e-5);
  backward(out.loss);
  for (auto& [name, p] : model.named_parameters()) {
    const Tensor& want = ref.at("grad." + name);
    EXPECT_LE(testing::max_abs_diff(p.grad().to(DType::f64), want), 1e-4 * testing::max_abs(want)) << name;
  }
}

// T = 130 with flash attention: tiles of 64 keys, the ones above the diagonal skipped, the last
// one partial; forward and every gradient as PyTorch's dense reference.
TEST(GPTReference, FlashAttentionAtT130MatchesPyTorch) {
  const nn::StateDict& ref = reference("gpt2_t130");
  LoadGPTOptions opts;
  opts.attention = GPTAttention::parse("flash");
  LoadedGPT loaded = load_gpt(kFixtures + "/gpt2_t130", opts);
  GPT& model = *loaded.model;
  ASSERT_EQ(model.config.attention.name(), "flash");
  ASSERT_EQ(ref.at("idx").size(1), 130);
  GPTOutput out = model.forward(ref.at("idx"), ref.at("targets"));
  EXPECT_LE(testing::max_abs_diff(out.logits, ref.at("logits")), 1e-11);
  EXPECT_NEAR(out.loss.item(), ref.at("loss").item(), 1e-12);
  backward(out.loss);
  for (auto& [name, p] : model.named_parameters()) {
    const Tensor& want = ref.at("grad." + name);
    EXPECT_LE(testing::max_abs_diff(p.grad(), want), 1e-10 * std::max(1.0, testing::max_abs(want))) << name;
  }
}

INSTANTIATE_TEST_SUITE_P(Fixtures, GPTReferenceP, ::testing::Values("gpt2_tiny", "gpt2_t130"),
                         [](const auto& info) { return std::string(info.param); });

}  // namespace
}  // namespace tg::models
