// dropout: argument checks, evaluation and p = 0 return x itself, p = 1 gives zeros, the mask
// against philox_uniform drawn in the test, statistics on 100k elements, reproducibility for a
// seed (and independence from threads and dtype), and the gradient through the same mask.
#include <cmath>

#include "ops/kernels/philox.h"
#include "test_util.h"

namespace tg {
namespace {

using testing::uniform;

TEST(Dropout, EvaluationAndZeroProbabilityReturnTheInput) {
  Tensor x = uniform({3, 4}, 1);
  Generator gen(5);
  EXPECT_EQ(dropout(x, 0.5, false, gen).impl(), x.impl());
  EXPECT_EQ(dropout(x, 0.0, true, gen).impl(), x.impl());
  EXPECT_EQ(gen.offset(), 0u);  // nothing drawn
}

TEST(Dropout, ProbabilityOneGivesZeros) {
  Tensor x = uniform({3, 4}, 2);
  x.requires_grad_();
  Generator gen(5);
  Tensor y = dropout(x, 1.0, true, gen);
  for (double v : y.to_vector()) EXPECT_EQ(v, 0.0);
  backward(y, ones({3, 4}, DType::f64));
  for (double g : x.grad().to_vector()) EXPECT_EQ(g, 0.0);
}

TEST(Dropout, MaskFollowsPhiloxUniforms) {
  const double p = 0.3;
  Tensor x = ones({1001}, DType::f64);  // odd: the last Philox block is half used
  Generator gen(42);
  gen.set_offset(7);
  Tensor y = dropout(x, p, true, gen);
  EXPECT_EQ(gen.offset(), 7u + 501u);
  std::vector<double> v = y.to_vector();
  for (int64_t i = 0; i < 1001; ++i) {
    bool keep = kernels::philox_uniform<double>(42, 7, uint64_t(i)) >= p;
    ASSERT_EQ(v[size_t(i)], keep ? 1.0 / (1.0 - p) : 0.0) << "element " << i;
  }
}

TEST(Dropout, Statistics) {
  const double p = 0.3;
  const int64_t n = 100000;
  Generator gen(123);
  Tensor y = dropout(ones({n}, DType::f64), p, true, gen);
  double zeros_seen = 0, total = 0;
  for (double v : y.to_vector()) {
    zeros_seen += v == 0.0;
    total += v;
    if (v != 0.0) {
      EXPECT_DOUBLE_EQ(v, 1.0 / (1.0 - p));
    }
  }
  // Standard deviation of the fraction: sqrt(p (1-p) / n) ~ 0.0015.
  EXPECT_NEAR(zeros_seen / double(n), p, 0.01);
  EXPECT_NEAR(total / double(n), 1.0, 0.02);  // inverted scaling keeps the mean
}

TEST(Dropout, SameSeedSameMaskWhateverThreadsOrDtype) {
  int saved = get_num_threads();
  Tensor x = uniform({300, 333}, 3, 1, 2);
  auto zero_pattern = [](const Tensor& y) {
    std::vector<bool> z;
    for (double v : y.to_vector()) z.push_back(v == 0.0);
    return z;
  };
  set_num_threads(1);
  Generator g1(9);
  Tensor a = dropout(x, 0.25, true, g1);
  set_num_threads(2);
  Generator g2(9);
  Tensor b = dropout(x, 0.25, true, g2);
  set_num_threads(saved);
  EXPECT_TRUE(a.to_vector() == b.to_vector());
  Generator g3(9);
  EXPECT_EQ(zero_pattern(dropout(x.to(DType::f32), 0.25, true, g3)), zero_pattern(a));
  // The generator moved on: the next draw differs; another seed differs.
  EXPECT_NE(zero_pattern(dropout(x, 0.25, true, g1)), zero_pattern(a));
  Generator g4(10);
  EXPECT_NE(zero_pattern(dropout(x, 0.25, true, g4)), zero_pattern(a));
  // The default generator, reseeded, repeats itself.
  manual_seed(77);
  Tensor d1 = dropout(x, 0.5);
  manual_seed(77);
  EXPECT_TRUE(dropout(x, 0.5).to_vector() == d1.to_vector());
}

TEST(Dropout, GradientUsesTheSameMask) {
  const double p = 0.4;
  Tensor x = uniform({20, 30}, 4, 1, 2);  // no zeros, so y == 0 marks a dropped element
  x.requires_grad_();
  Generator gen(11);
  Tensor y = dropout(x, p, true, gen);
  Tensor dy = uniform({20, 30}, 5);
  backward(y, dy);
  std::vector<double> yv = y.to_vector(), xv = x.to_vector(), g = dy.to_vector(), dx = x.grad().to_vector();
  for (size_t i = 0; i < yv.size(); ++i) {
    bool kept = yv[i] != 0.0;
    if (kept) {
      EXPECT_DOUBLE_EQ(yv[i], xv[i] / (1 - p));
    }
    EXPECT_DOUBLE_EQ(dx[i], kept ? g[i] / (1 - p) : 0.0);
  }
  // Gradcheck with the mask fixed by a fresh generator of the same seed on every call.
  testing::expect_gradcheck(
      [](const std::vector<Tensor>& in) {
        Generator g(3);
        return dropout(in[0], 0.5, true, g);
      },
      {uniform({4, 5}, 6)});
}

TEST(Dropout, Errors) {
  Tensor x = zeros({2, 3});
  EXPECT_TG_ERROR(dropout(x, 1.5), "dropout: probability p must be in [0, 1], got 1.5 (input of shape [2, 3])");
  EXPECT_TG_ERROR(dropout(x, -0.1), "got -0.1");
  EXPECT_TG_ERROR(dropout(x, NAN), "got nan");
  EXPECT_TG_ERROR(dropout(zeros({2}, DType::i64), 0.5), "dropout: expected a floating tensor (f32 or f64), got i64 of shape [2]");
}

}  // namespace
}  // namespace tg
