// Optimizers against torch.optim trajectories (fixture from tests/nn/make_optim_fixture.py),
// LR schedules against nanoGPT's formula, gradient clipping.
#include <cmath>
#include <numbers>

#include "nn/optim/adamw.h"
#include "nn/optim/clip_grad.h"
#include "nn/optim/lr_schedule.h"
#include "nn/optim/sgd.h"
#include "nn/safetensors.h"
#include "test_util.h"

namespace tg {
namespace {

Tensor initial(const Shape& shape, double salt) {
  Tensor t = empty(shape, DType::f64);
  for (int64_t i = 0; i < t.numel(); ++i) t.data<double>()[i] = std::cos(0.7 * double(i) + salt);
  return t.requires_grad_();
}

Tensor grad_at(const Shape& shape, int step, double salt) {
  Tensor t = empty(shape, DType::f64);
  for (int64_t i = 0; i < t.numel(); ++i) t.data<double>()[i] = std::sin(0.3 * double(i) + 1.1 * step + salt);
  return t;
}

template <class MakeOptimizer>
void expect_trajectory(const std::string& name, MakeOptimizer make) {
  static nn::StateDict fixture =
      nn::load_safetensors(std::string(TAPEGRAD_SOURCE_DIR) + "/tests/nn/fixtures/optim.safetensors");
  std::vector<Tensor> params = {initial({3, 4}, 0.0), initial({5}, 1.0)};
  auto opt = make(params);
  for (int step = 0; step < 6; ++step) {
    for (size_t k = 0; k < params.size(); ++k) params[k].set_grad(grad_at(params[k].shape(), step, double(k)));
    opt.step();
    for (size_t k = 0; k < params.size(); ++k) {
      const Tensor& want = fixture.at(fmt::format("{}.step{}.p{}", name, step, k));
      EXPECT_LE(testing::max_abs_diff(params[k], want), 1e-12) << name << " step " << step << " param " << k;
    }
  }
}

TEST(Optim, SGDMatchesPyTorch) {
  expect_trajectory("sgd_plain", [](auto& ps) { return optim::SGD(ps, optim::SGDOptions(0.1)); });
  expect_trajectory("sgd_momentum", [](auto& ps) {
    return optim::SGD(ps, optim::SGDOptions(0.1).momentum(0.9).dampening(0.1).weight_decay(0.01));
  });
  expect_trajectory("sgd_nesterov", [](auto& ps) {
    return optim::SGD(ps, optim::SGDOptions(0.05).momentum(0.8).nesterov(true).weight_decay(0.1));
  });
}

TEST(Optim, AdamWMatchesPyTorch) {
  expect_trajectory("adamw", [](auto& ps) {
    return optim::AdamW(ps, optim::AdamWOptions(0.01).beta1(0.9).beta2(0.95).eps(1e-8).weight_decay(0.1));
  });
  expect_trajectory("adamw_groups", [](auto& ps) {
    std::vector<optim::ParamGroup> groups = {{{ps[0]}, -1, 0.1}, {{ps[1]}, -1, 0.0}};
    return optim::AdamW(groups, optim::AdamWOptions(0.003).beta1(0.8).beta2(0.99).eps(1e-6));
  });
}

TEST(Optim, StateDictResumesExactly) {
  std::vector<Tensor> a = {initial({3, 4}, 0.0)}, b = {initial({3, 4}, 0.0)};
  optim::AdamW oa(a, optim::AdamWOptions(0.01)), ob(b, optim::AdamWOptions(0.01));
  for (int step = 0; step < 3; ++step) {
    a[0].set_grad(grad_at({3, 4}, step, 0));
    oa.step();
  }
  // b resumes from a's parameters and optimizer state, then both take the same steps.
  b[0].detach().copy_(a[0]);
  ob.load_state_dict(oa.state_dict());
  for (int step = 3; step < 6; ++step) {
    a[0].set_grad(grad_at({3, 4}, step, 0));
    b[0].set_grad(grad_at({3, 4}, step, 0));
    oa.step();
    ob.step();
  }
  EXPECT_EQ(a[0].to_vector(), b[0].to_vector());
  EXPECT_TG_ERROR(ob.load_state_dict({}), "missing 'state.0.exp_avg'");
}

TEST(Optim, ValidatesOptions) {
  std::vector<Tensor> ps = {initial({2}, 0)};
  EXPECT_TG_ERROR(optim::AdamW(ps, optim::AdamWOptions(-1)), "AdamW: lr must be >= 0");
  EXPECT_TG_ERROR(optim::AdamW(ps, optim::AdamWOptions().beta1(1.0)), "betas must be in [0, 1)");
  std::vector<Tensor> twice = {ps[0], ps[0]};
  EXPECT_TG_ERROR(optim::AdamW(twice, optim::AdamWOptions()), "AdamW: a parameter (of shape");
  EXPECT_TG_ERROR(optim::SGD(ps, optim::SGDOptions().nesterov(true)), "nesterov needs momentum > 0");
  EXPECT_TG_ERROR(optim::SGD(std::vector<Tensor>{}), "got no parameters");
  Tensor not_leaf = ps[0] * 2.0;
  EXPECT_TG_ERROR(optim::SGD(std::vector<Tensor>{not_leaf}), "not a leaf that requires grad");
}

TEST(LRSchedule, WarmupCosineAsNanoGPT) {
  optim::LRSchedule s{"cosine", 1e-3, 1e-4, 100, 5000};
  s.validate();
  EXPECT_DOUBLE_EQ(s.at(0), 1e-3 * 1 / 101);
  EXPECT_DOUBLE_EQ(s.at(99), 1e-3 * 100 / 101);
  EXPECT_DOUBLE_EQ(s.at(100), 1e-3);  // cosine starts at lr
  double mid = 1e-4 + 0.5 * (1 + std::cos(std::numbers::pi * 0.5)) * (1e-3 - 1e-4);
  EXPECT_NEAR(s.at(2550), mid, 1e-15);
  EXPECT_DOUBLE_EQ(s.at(5000), 1e-4);
  EXPECT_DOUBLE_EQ(s.at(9999), 1e-4);
  optim::LRSchedule c{"constant", 3e-4, 0, 0, 0};
  EXPECT_DOUBLE_EQ(c.at(12345), 3e-4);
  optim::LRSchedule linear{"linear", 1e-4, 0, 1000, 5000};  // LRA's recipe (Nystromformer's config)
  linear.validate();
  EXPECT_DOUBLE_EQ(linear.at(999), 1e-4 * 1000 / 1001);
  EXPECT_DOUBLE_EQ(linear.at(1000), 1e-4);
  EXPECT_NEAR(linear.at(3000), 0.5e-4, 1e-18);
  EXPECT_DOUBLE_EQ(linear.at(5000), 0.0);
  optim::LRSchedule bad{"step", 1e-3, 0, 0, 0};
  EXPECT_TG_ERROR(bad.validate(), "unknown kind 'step'");
  optim::LRSchedule inverted{"cosine", 1e-3, 1e-2, 0, 10};
  EXPECT_TG_ERROR(inverted.validate(), "min_lr must be in [0, lr=");
}

TEST(ClipGrad, ScalesToMaxNormAndReportsTotal) {
  Tensor a = initial({2}, 0), b = initial({2}, 1);
  a.set_grad(tensor({3.0, 0.0}, {}, DType::f64));
  b.set_grad(tensor({0.0, 4.0}, {}, DType::f64));
  double total = optim::clip_grad_norm_({a, b}, 1.0);
  EXPECT_DOUBLE_EQ(total, 5.0);
  EXPECT_NEAR(a.grad().at({0}), 3.0 / (5.0 + 1e-6), 1e-12);
  EXPECT_NEAR(b.grad().at({1}), 4.0 / (5.0 + 1e-6), 1e-12);
  double again = optim::clip_grad_norm_({a, b}, 10.0);  // below the limit: unchanged
  EXPECT_NEAR(again, 1.0, 1e-6);
  EXPECT_NEAR(a.grad().at({0}), 3.0 / (5.0 + 1e-6), 1e-12);
  EXPECT_TG_ERROR(optim::clip_grad_norm_({a}, 0.0), "max_norm must be positive");
}

}  // namespace
}  // namespace tg
