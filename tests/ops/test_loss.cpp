// cross_entropy: plain-loop reference for each reduction, with ignored targets and a custom
// ignore_index, [C] logits; the saved softmax; gradients against softmax - onehot; f32 against
// f64; stability for logits near 1000; errors.
#include <cmath>

#include "test_util.h"

namespace tg {
namespace {

using testing::expect_close;
using testing::uniform;

Tensor ids(const std::vector<double>& v) { return tensor(v, {int64_t(v.size())}, DType::i64); }

double row_lse(const std::vector<double>& x, int64_t i, int64_t C) {
  double m = -INFINITY, s = 0;
  for (int64_t c = 0; c < C; ++c) m = std::max(m, x[size_t(i * C + c)]);
  for (int64_t c = 0; c < C; ++c) s += std::exp(x[size_t(i * C + c)] - m);
  return m + std::log(s);
}

// Per-row losses (0 where ignored) and the number of rows not ignored.
std::vector<double> row_losses(const Tensor& logits, const std::vector<int64_t>& t, int64_t ignore, int64_t* count) {
  int64_t C = logits.shape().back(), N = int64_t(t.size());
  std::vector<double> x = logits.to_vector(), loss(size_t(N), 0.0);
  *count = 0;
  for (int64_t i = 0; i < N; ++i) {
    if (t[size_t(i)] == ignore) continue;
    loss[size_t(i)] = row_lse(x, i, C) - x[size_t(i * C + t[size_t(i)])];
    ++*count;
  }
  return loss;
}

TEST(CrossEntropy, ForwardMatchesReference) {
  Tensor logits = uniform({6, 37}, 1, -3, 3);  // rows of 37: two 16-lane blocks and a tail
  std::vector<int64_t> t = {0, 4, -100, 2, 2, 1};
  Tensor target = ids({0, 4, -100, 2, 2, 1});
  int64_t count = 0;
  std::vector<double> loss = row_losses(logits, t, -100, &count);
  double total = 0;
  for (double l : loss) total += l;
  expect_close(cross_entropy(logits, target, -100, "none"), tensor(loss, {6}, DType::f64), 1e-12, 1e-12);
  EXPECT_NEAR(cross_entropy(logits, target, -100, "sum").item(), total, 1e-12);
  Tensor m = cross_entropy(logits, target);
  EXPECT_EQ(m.shape(), Shape{});
  EXPECT_NEAR(m.item(), total / 5, 1e-12);  // one target ignored
  // A custom ignore_index inside [0, C) ignores that class.
  std::vector<double> l2 = row_losses(logits, {0, 4, 2, 2, 2, 1}, 2, &count);
  EXPECT_EQ(count, 3);
  EXPECT_NEAR(cross_entropy(logits, ids({0, 4, 2, 2, 2, 1}), 2).item(), (l2[0] + l2[1] + l2[5]) / 3, 1e-12);
}

TEST(CrossEntropy, SingleRowLogits) {
  Tensor logits = uniform({7}, 2);
  Tensor target = tensor({3.0}, {}, DType::i64);
  int64_t count = 0;
  double want = row_losses(logits, {3}, -100, &count)[0];
  Tensor none = cross_entropy(logits, target, -100, "none");
  EXPECT_EQ(none.shape(), Shape{});
  EXPECT_NEAR(none.item(), want, 1e-12);
  EXPECT_NEAR(cross_entropy(logits, target).item(), want, 1e-12);
  testing::expect_gradcheck([&](const std::vector<Tensor>& in) { return cross_entropy(in[0], target); }, {logits});
}

// The forward saves each row's softmax (what the backward scales), not the logits.
TEST(CrossEntropy, SavesSoftmaxPerRow) {
  Tensor logits = uniform({4, 3}, 3);
  logits.requires_grad_();
  Tensor loss = cross_entropy(logits, ids({0, 1, 2, 0}));
  Tensor probs = loss.grad_fn()->saved("probs");
  ASSERT_EQ(probs.shape(), Shape({4, 3}));
  std::vector<double> x = logits.to_vector();
  for (int64_t i = 0; i < 4; ++i)
    for (int64_t c = 0; c < 3; ++c)
      EXPECT_NEAR(probs.at({i, c}), std::exp(x[i * 3 + c] - row_lse(x, i, 3)), 1e-12);
}

TEST(CrossEntropy, GradientIsSoftmaxMinusOnehot) {
  Tensor logits = uniform({5, 4}, 4);
  std::vector<int64_t> t = {1, -100, 3, 0, -100};
  Tensor target = ids({1, -100, 3, 0, -100});
  Tensor dnone = uniform({5}, 5);
  for (std::string red : {"mean", "sum", "none"}) {
    SCOPED_TRACE(red);
    Tensor x = logits.detach().clone();
    x.requires_grad_();
    Tensor loss = cross_entropy(x, target, -100, red);
    backward(loss, red == "none" ? dnone : tensor({1.0}, {}, DType::f64));
    std::vector<double> xv = logits.to_vector(), want(20, 0.0), g = dnone.to_vector();
    for (int64_t i = 0; i < 5; ++i) {
      if (t[size_t(i)] == -100) continue;  // ignored rows get no gradient
      double scale = red == "mean" ? 1.0 / 3 : red == "sum" ? 1.0 : g[size_t(i)];
      double lse = row_lse(xv, i, 4);
      for (int64_t c = 0; c < 4; ++c)
        want[size_t(i * 4 + c)] = scale * (std::exp(xv[size_t(i * 4 + c)] - lse) - (c == t[size_t(i)] ? 1 : 0));
    }
    expect_close(x.grad(), tensor(want, {5, 4}, DType::f64), 1e-12, 1e-14);
  }
}

TEST(CrossEntropy, Gradcheck) {
  Tensor target = ids({2, -100, 0, 3});
  for (std::string red : {"mean", "sum", "none"})
    testing::expect_gradcheck(
        [&](const std::vector<Tensor>& in) { return cross_entropy(in[0], in[1], -100, red); },
        {uniform({4, 5}, 6), target});
}

TEST(CrossEntropy, AllIgnored) {
  Tensor logits = uniform({3, 4}, 7);
  Tensor target = ids({-100, -100, -100});
  EXPECT_TRUE(std::isnan(cross_entropy(logits, target).item()));  // 0/0, as PyTorch
  logits.requires_grad_();
  Tensor s = cross_entropy(logits, target, -100, "sum");
  EXPECT_EQ(s.item(), 0.0);
  backward(s);
  for (double g : logits.grad().to_vector()) EXPECT_EQ(g, 0.0);
  // No rows at all.
  EXPECT_TRUE(std::isnan(cross_entropy(zeros({0, 4}, DType::f64), ids({})).item()));
  EXPECT_EQ(cross_entropy(zeros({0, 4}, DType::f64), ids({}), -100, "sum").item(), 0.0);
}

TEST(CrossEntropy, Float32MatchesFloat64) {
  Tensor logits = uniform({9, 11}, 8, -4, 4);
  Tensor target = ids({0, 10, 5, -100, 3, 3, 7, 1, 2});
  for (std::string red : {"mean", "sum", "none"}) {
    Tensor l32 = cross_entropy(logits.to(DType::f32), target, -100, red);
    EXPECT_EQ(l32.dtype(), DType::f32);
    expect_close(l32.to(DType::f64), cross_entropy(logits, target, -100, red), 1e-5, 1e-5);
  }
}

// f32 rows run eight lanes at a time: widths below, at and just past a multiple of 8, a -inf
// logit (probability 0) and an ignored row; loss and gradient against f64.
TEST(CrossEntropy, Float32GradientMatchesFloat64AtEveryWidth) {
  for (int64_t C : {5, 8, 16, 65}) {
    SCOPED_TRACE(C);
    Tensor logits = uniform({4, C}, uint64_t(C), -4, 4);
    logits.data<double>()[C + 1] = -INFINITY;
    Tensor target = ids({0, double(C - 1), -100, double(C / 2)});
    Tensor x64 = logits.detach().clone().requires_grad_();
    Tensor x32 = logits.to(DType::f32).requires_grad_();
    Tensor l64 = cross_entropy(x64, target), l32 = cross_entropy(x32, target);
    EXPECT_NEAR(l32.item(), l64.item(), 1e-5);
    backward(l64);
    backward(l32);
    expect_close(x32.grad().to(DType::f64), x64.grad(), 1e-6, 1e-5);
    EXPECT_EQ(x32.grad().at({1, 1}), 0.0);
  }
}

TEST(CrossEntropy, StableForLargeLogits) {
  Tensor shifted = tensor({0, 1, 2, -1, 0, -2000}, {2, 3}, DType::f64);
  int64_t count = 0;
  std::vector<double> want = row_losses(shifted, {2, 0}, -100, &count);
  for (DType dt : {DType::f32, DType::f64}) {
    Tensor logits = tensor({1000, 1001, 1002, 999, 1000, -1000}, {2, 3}, dt);
    Tensor loss = cross_entropy(logits, ids({2, 0}), -100, "none");
    EXPECT_NEAR(loss.at({0}), want[0], 1e-4);
    EXPECT_NEAR(loss.at({1}), want[1], 1e-4);
  }
}

TEST(CrossEntropy, Errors) {
  Tensor logits = zeros({4, 5});
  EXPECT_TG_ERROR(cross_entropy(logits, ids({0, 1, 7, 2})),
                  "cross_entropy: target 7 at position 2 is out of range for 5 classes (logits of shape [4, 5], ignore_index -100)");
  EXPECT_TG_ERROR(cross_entropy(logits, ids({0, -1, 1, 2})), "cross_entropy: target -1 at position 1");
  EXPECT_TG_ERROR(cross_entropy(logits, ids({0, 1, 2, 3}), -100, "avg"),
                  "cross_entropy: unknown reduction 'avg' (expected 'mean', 'sum' or 'none')");
  EXPECT_TG_ERROR(cross_entropy(logits, ids({0, 1, 2})),
                  "cross_entropy: target of shape [3] does not match logits of shape [4, 5] (expected [4])");
  EXPECT_TG_ERROR(cross_entropy(logits, zeros({4})), "cross_entropy: target must hold i64 class ids, got f32 of shape [4]");
  EXPECT_TG_ERROR(cross_entropy(zeros({2, 3, 4}), ids({0, 1})), "cross_entropy: logits must be [N, C] or [C], got shape [2, 3, 4]");
  EXPECT_TG_ERROR(cross_entropy(zeros({2, 3}, DType::i64), ids({0, 1})), "cross_entropy: logits must be floating");
}

}  // namespace
}  // namespace tg
