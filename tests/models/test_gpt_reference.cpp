// The whole-model test, as llm.c's test_gpt2: a small GPT-2 written in plain PyTorch
// (tests/models/make_gpt2_fixture.py) gives a checkpoint in Hugging Face's layout, the logits,
// the loss, every parameter's gradient, and the losses of 5 SGD and 5 AdamW steps; tapegrad loads
// the checkpoint with load_gpt and must reproduce all of them.
#include "models/gpt_checkpoint.h"
#include "nn/optim/adamw.h"
#include "nn/optim/sgd.h"
#include "nn/safetensors.h"
#include "test_util.h"

namespace tg::models {
namespace {

const std::string kFixtures = std::string(TAPEGRAD_SOURCE_DIR) + "/tests/models/fixtures";

const nn::StateDict& reference() {
  static nn::StateDict ref = nn::load_safetensors(kFixtures + "/gpt2_tiny_reference.safetensors");
  return ref;
}

// The model's losses before each of 5 steps and after the last.
template <class Optimizer>
std::vector<double> step_losses(GPT& model, Optimizer& opt) {
  const Tensor& idx = reference().at("idx");
  const Tensor& targets = reference().at("targets");
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

TEST(GPTReference, LogitsLossAndEveryGradientMatchPyTorch) {
  LoadedGPT loaded = load_gpt(kFixtures + "/gpt2_tiny");
  GPT& model = *loaded.model;
  GPTOutput out = model.forward(reference().at("idx"), reference().at("targets"));
  EXPECT_LE(testing::max_abs_diff(out.logits, reference().at("logits")), 1e-11);
  EXPECT_NEAR(out.loss.item(), reference().at("loss").item(), 1e-12);
  backward(out.loss);
  int checked = 0;
  for (auto& [name, p] : model.named_parameters()) {
    const Tensor& want = reference().at("grad." + name);
    ASSERT_TRUE(p.grad().defined()) << name;
    double scale = std::max(1.0, testing::max_abs(want));
    EXPECT_LE(testing::max_abs_diff(p.grad(), want), 1e-10 * scale) << name;
    EXPECT_GT(testing::max_abs(want), 1e-6) << name << ": a vanishing gradient would check nothing";
    ++checked;
  }
  EXPECT_EQ(checked, 2 + 12 * 2 + 2);
}

TEST(GPTReference, FiveSGDStepsMatchPyTorch) {
  LoadedGPT loaded = load_gpt(kFixtures + "/gpt2_tiny");
  optim::SGD opt(loaded.model->parameters(), optim::SGDOptions(0.1).momentum(0.9));
  expect_losses(step_losses(*loaded.model, opt), reference().at("sgd_losses"), 1e-10, "SGD");
}

TEST(GPTReference, FiveAdamWStepsMatchPyTorch) {
  LoadedGPT loaded = load_gpt(kFixtures + "/gpt2_tiny");
  optim::AdamW opt(optim::decay_groups(*loaded.model, 0.1),
                   optim::AdamWOptions(1e-3).beta1(0.9).beta2(0.95).eps(1e-8));
  expect_losses(step_losses(*loaded.model, opt), reference().at("adamw_losses"), 1e-10, "AdamW");
}

// The same checkpoint computed in f32 (values converted on load), against the f64 reference.
TEST(GPTReference, Float32IsCloseToTheFloat64Reference) {
  LoadGPTOptions opts;
  opts.dtype = DType::f32;
  LoadedGPT loaded = load_gpt(kFixtures + "/gpt2_tiny", opts);
  GPT& model = *loaded.model;
  EXPECT_EQ(model.wte->weight.dtype(), DType::f32);
  GPTOutput out = model.forward(reference().at("idx"), reference().at("targets"));
  const Tensor& logits = reference().at("logits");
  EXPECT_LE(testing::max_abs_diff(out.logits.to(DType::f64), logits), 1e-5 * testing::max_abs(logits));
  EXPECT_NEAR(out.loss.item(), reference().at("loss").item(), 1e-5);
  backward(out.loss);
  for (auto& [name, p] : model.named_parameters()) {
    const Tensor& want = reference().at("grad." + name);
    EXPECT_LE(testing::max_abs_diff(p.grad().to(DType::f64), want), 1e-4 * testing::max_abs(want)) << name;
  }
}

}  // namespace
}  // namespace tg::models
