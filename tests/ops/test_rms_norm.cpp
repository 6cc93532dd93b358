// rms_norm: plain-loop reference with and without weight and over several trailing axes; the
// saved rstd; PyTorch's default eps; f32 against f64; gradients (gradcheck, and the weight's
// over more rows than one block); errors; the same bits for one and two threads.
#include <cmath>
#include <limits>

#include "ops/rms_norm.h"
#include "test_util.h"

namespace tg {
namespace {

using testing::expect_close;
using testing::uniform;

// y = x / sqrt(mean(x²) + eps) · w, row by row in f64.
Tensor rms_reference(const Tensor& x, int64_t C, const Tensor& w, double eps) {
  std::vector<double> v = x.to_vector(), y(v.size());
  std::vector<double> wv = w.defined() ? w.to_vector() : std::vector<double>(size_t(C), 1.0);
  for (int64_t r = 0; r < x.numel() / C; ++r) {
    double ms = 0;
    for (int64_t c = 0; c < C; ++c) ms += v[size_t(r * C + c)] * v[size_t(r * C + c)] / double(C);
    for (int64_t c = 0; c < C; ++c) y[size_t(r * C + c)] = v[size_t(r * C + c)] / std::sqrt(ms + eps) * wv[size_t(c)];
  }
  return tensor(y, x.shape(), DType::f64);
}

TEST(RmsNorm, ForwardMatchesReference) {
  Tensor x = uniform({2, 3, 4}, 31, -2, 3);
  for (bool with_w : {false, true})
    for (const Shape& ns : std::vector<Shape>{{4}, {3, 4}, {2, 3, 4}}) {
      SCOPED_TRACE(shape_str(ns) + (with_w ? " weight" : ""));
      Tensor w = with_w ? uniform(ns, 32, 0.5, 1.5) : Tensor();
      expect_close(rms_norm(x, ns, w, 1e-3), rms_reference(x, numel(ns), w, 1e-3), 1e-12, 1e-12);
    }
}

TEST(RmsNorm, DefaultEpsIsTheDtypesEpsilonAsPyTorch) {
  // A row of zeros divides by sqrt(eps): the output stays 0, finite.
  Tensor x = tensor({1e-9, -2e-9, 0, 3e-9}, {1, 4}, DType::f64);
  expect_close(rms_norm(x, {4}), rms_reference(x, 4, Tensor(), std::numeric_limits<double>::epsilon()), 1e-12, 0);
  Tensor x32 = x.to(DType::f32);
  expect_close(rms_norm(x32, {4}).to(DType::f64),
               rms_reference(x32.to(DType::f64), 4, Tensor(), double(std::numeric_limits<float>::epsilon())), 1e-5, 0);
}

TEST(RmsNorm, SavesRstdPerRow) {
  Tensor x = uniform({5, 6}, 33, -1, 2);
  Tensor w = uniform({6}, 34);
  w.requires_grad_();
  Tensor y = rms_norm(x, {6}, w, 1e-6);
  ASSERT_TRUE(y.grad_fn());
  EXPECT_STREQ(y.grad_fn()->name(), "rms_norm");
  Tensor rstd = y.grad_fn()->saved("rstd");
  ASSERT_EQ(rstd.shape(), Shape({5}));
  std::vector<double> v = x.to_vector();
  for (int r = 0; r < 5; ++r) {
    double ms = 0;
    for (int c = 0; c < 6; ++c) ms += v[size_t(r * 6 + c)] * v[size_t(r * 6 + c)] / 6;
    EXPECT_NEAR(rstd.at({r}), 1 / std::sqrt(ms + 1e-6), 1e-12);
  }
}

TEST(RmsNorm, Float32MatchesFloat64) {
  Tensor x = uniform({7, 33}, 35, -3, 3), w = uniform({33}, 36);
  Tensor y32 = rms_norm(x.to(DType::f32), {33}, w.to(DType::f32), 1e-6);
  EXPECT_EQ(y32.dtype(), DType::f32);
  expect_close(y32.to(DType::f64), rms_norm(x, {33}, w, 1e-6), 1e-5, 1e-5);
}

TEST(RmsNorm, Gradcheck) {
  testing::expect_gradcheck([](const std::vector<Tensor>& in) { return rms_norm(in[0], {2, 4}, in[1], 1e-5); },
                            {uniform({3, 2, 4}, 37), uniform({2, 4}, 38)});
  testing::expect_gradcheck([](const std::vector<Tensor>& in) { return rms_norm(in[0], {4}); }, {uniform({3, 4}, 39)});
}

TEST(RmsNorm, WeightGradientOverManyRowsWithoutInputGradient) {
  // dweight = Σ over rows of dy · x · rstd; 70 rows span three blocks.
  Tensor x = uniform({70, 5}, 40), w = uniform({5}, 41), dy = uniform({70, 5}, 42);
  w.requires_grad_();
  backward(rms_norm(x, {5}, w, 1e-5), dy);
  std::vector<double> h = rms_reference(x, 5, Tensor(), 1e-5).to_vector(), g = dy.to_vector(), dw(5, 0.0);
  for (int r = 0; r < 70; ++r)
    for (int c = 0; c < 5; ++c) dw[size_t(c)] += g[size_t(r * 5 + c)] * h[size_t(r * 5 + c)];
  expect_close(w.grad(), tensor(dw, {5}, DType::f64), 1e-12, 1e-12);
  EXPECT_FALSE(x.grad().defined());
}

TEST(RmsNorm, Errors) {
  Tensor x = zeros({2, 3});
  EXPECT_TG_ERROR(rms_norm(x, {4}), "rms_norm: normalized_shape [4] does not match the last axes of the input of shape [2, 3]");
  EXPECT_TG_ERROR(rms_norm(x, {3}, zeros({4})), "rms_norm: weight of shape [4] does not match normalized_shape [3]");
  EXPECT_TG_ERROR(rms_norm(x, {3}, zeros({3}, DType::f64)), "rms_norm: weight is f64 but the input is f32");
  EXPECT_TG_ERROR(rms_norm(zeros({2, 3}, DType::i64), {3}), "rms_norm: expected a floating tensor (f32 or f64), got i64");
  EXPECT_TG_ERROR(rms_norm(x, {3}, Tensor(), -1.0), "rms_norm: eps must be finite and >= 0, got -1");
}

TEST(RmsNorm, SameBitsForOneAndTwoThreads) {
  const int saved = get_num_threads();
  Tensor x = uniform({1000, 300}, 43, -2, 2, DType::f32), w = uniform({300}, 44, -1, 1, DType::f32);
  Tensor dy = uniform({1000, 300}, 45, -1, 1, DType::f32);
  auto compute = [&] {
    Tensor xl = x.detach().clone(), wl = w.detach().clone();
    xl.requires_grad_();
    wl.requires_grad_();
    Tensor y = rms_norm(xl, {300}, wl, 1e-6);
    backward(y, dy);
    return std::vector<std::vector<double>>{y.detach().to_vector(), xl.grad().to_vector(), wl.grad().to_vector()};
  };
  set_num_threads(1);
  auto one = compute();
  set_num_threads(2);
  auto two = compute();
  set_num_threads(saved);
  for (size_t i = 0; i < one.size(); ++i) EXPECT_TRUE(one[i] == two[i]) << "result " << i;
}

}  // namespace
}  // namespace tg
