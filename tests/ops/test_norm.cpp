// layer_norm: plain-loop reference with and without weight/bias and over several trailing axes;
// the saved mean/rstd; f32 against f64; gradients (gradcheck of x, weight, bias); errors; the
// weight/bias gradients and dx bit-identical for one and two threads.
#include <cmath>

#include "test_util.h"

namespace tg {
namespace {

using testing::expect_close;
using testing::uniform;

struct Ref {
  Tensor y, mean, rstd;
};

Ref reference(const Tensor& x, int64_t C, const Tensor& w, const Tensor& b, double eps) {
  std::vector<double> v = x.to_vector(), y(v.size());
  std::vector<double> wv = w.defined() ? w.to_vector() : std::vector<double>(size_t(C), 1.0);
  std::vector<double> bv = b.defined() ? b.to_vector() : std::vector<double>(size_t(C), 0.0);
  int64_t rows = x.numel() / C;
  std::vector<double> mean(static_cast<size_t>(rows)), rstd(static_cast<size_t>(rows));
  for (int64_t r = 0; r < rows; ++r) {
    double m = 0, var = 0;
    for (int64_t c = 0; c < C; ++c) m += v[size_t(r * C + c)] / double(C);
    for (int64_t c = 0; c < C; ++c) var += (v[size_t(r * C + c)] - m) * (v[size_t(r * C + c)] - m) / double(C);
    double rs = 1 / std::sqrt(var + eps);
    for (int64_t c = 0; c < C; ++c)
      y[size_t(r * C + c)] = (v[size_t(r * C + c)] - m) * rs * wv[size_t(c)] + bv[size_t(c)];
    mean[size_t(r)] = m;
    rstd[size_t(r)] = rs;
  }
  return {tensor(y, x.shape(), DType::f64), tensor(mean, {rows}, DType::f64), tensor(rstd, {rows}, DType::f64)};
}

TEST(LayerNorm, ForwardMatchesReference) {
  Tensor x = uniform({2, 3, 4}, 1, -2, 3);
  for (bool with_w : {false, true})
    for (bool with_b : {false, true})
      for (const Shape& ns : std::vector<Shape>{{4}, {3, 4}, {2, 3, 4}}) {
        SCOPED_TRACE(shape_str(ns) + (with_w ? " weight" : "") + (with_b ? " bias" : ""));
        Tensor w = with_w ? uniform(ns, 2, 0.5, 1.5) : Tensor();
        Tensor b = with_b ? uniform(ns, 3) : Tensor();
        Tensor y = layer_norm(x, ns, w, b, 1e-3);
        expect_close(y, reference(x, numel(ns), w, b, 1e-3).y, 1e-12, 1e-12);
      }
}

TEST(LayerNorm, SavesMeanAndRstdPerRow) {
  Tensor x = uniform({5, 6}, 4, -1, 2);
  Tensor w = uniform({6}, 5);
  w.requires_grad_();
  Tensor y = layer_norm(x, {6}, w);
  ASSERT_TRUE(y.grad_fn());
  EXPECT_STREQ(y.grad_fn()->name(), "layer_norm");
  Ref r = reference(x, 6, w, Tensor(), 1e-5);
  Tensor mean = y.grad_fn()->saved("mean"), rstd = y.grad_fn()->saved("rstd");
  EXPECT_EQ(mean.shape(), Shape({5}));
  expect_close(mean, r.mean, 1e-12, 1e-14);
  expect_close(rstd, r.rstd, 1e-12, 1e-14);
}

TEST(LayerNorm, LargeOffsetUsesTwoPasses) {
  // Mean 1e8, spread ~2: a one-pass E[x^2] - E[x]^2 would lose every digit of the variance.
  Tensor x = tensor({1e8 + 1, 1e8 + 2, 1e8 + 3, 1e8 + 6}, {1, 4}, DType::f64);
  Tensor y = layer_norm(x, {4}, Tensor(), Tensor(), 0.0);
  expect_close(y, reference(tensor({1, 2, 3, 6}, {1, 4}, DType::f64), 4, Tensor(), Tensor(), 0.0).y, 1e-8, 1e-8);
}

TEST(LayerNorm, Float32MatchesFloat64) {
  Tensor x = uniform({7, 33}, 6, -3, 3);
  Tensor w = uniform({33}, 7), b = uniform({33}, 8);
  Tensor y32 = layer_norm(x.to(DType::f32), {33}, w.to(DType::f32), b.to(DType::f32));
  EXPECT_EQ(y32.dtype(), DType::f32);
  expect_close(y32.to(DType::f64), layer_norm(x, {33}, w, b), 1e-5, 1e-5);
}

TEST(LayerNorm, Gradcheck) {
  Tensor x = uniform({3, 2, 4}, 9), w = uniform({2, 4}, 10), b = uniform({2, 4}, 11);
  testing::expect_gradcheck(
      [](const std::vector<Tensor>& in) { return layer_norm(in[0], {2, 4}, in[1], in[2]); }, {x, w, b});
  testing::expect_gradcheck([](const std::vector<Tensor>& in) { return layer_norm(in[0], {4}); }, {uniform({3, 4}, 12)});
  // Only the bias given.
  testing::expect_gradcheck(
      [](const std::vector<Tensor>& in) { return layer_norm(in[0], {4}, Tensor(), in[1]); },
      {uniform({3, 4}, 13), uniform({4}, 14)});
}

TEST(LayerNorm, ParametersGetGradientsWithoutInputGradient) {
  // x needs no gradient: dweight = sum over rows of dy * xhat, dbias = sum of dy.
  Tensor x = uniform({70, 5}, 15);  // more rows than one block
  Tensor w = uniform({5}, 16), b = uniform({5}, 17), dy = uniform({70, 5}, 18);
  w.requires_grad_();
  b.requires_grad_();
  backward(layer_norm(x, {5}, w, b), dy);
  Tensor xhat = reference(x, 5, Tensor(), Tensor(), 1e-5).y;
  std::vector<double> h = xhat.to_vector(), g = dy.to_vector(), dw(5, 0.0), db(5, 0.0);
  for (int r = 0; r < 70; ++r)
    for (int c = 0; c < 5; ++c) {
      dw[size_t(c)] += g[size_t(r * 5 + c)] * h[size_t(r * 5 + c)];
      db[size_t(c)] += g[size_t(r * 5 + c)];
    }
  expect_close(w.grad(), tensor(dw, {5}, DType::f64), 1e-12, 1e-12);
  expect_close(b.grad(), tensor(db, {5}, DType::f64), 1e-12, 1e-12);
  EXPECT_FALSE(x.grad().defined());
}

TEST(LayerNorm, Errors) {
  Tensor x = zeros({2, 3});
  EXPECT_TG_ERROR(layer_norm(x, {4}), "layer_norm: normalized_shape [4] does not match the last axes of the input of shape [2, 3]");
  EXPECT_TG_ERROR(layer_norm(x, {1, 2, 3}), "normalized_shape [1, 2, 3] does not match");
  EXPECT_TG_ERROR(layer_norm(x, {3}, zeros({4})), "layer_norm: weight of shape [4] does not match normalized_shape [3] (input of shape [2, 3])");
  EXPECT_TG_ERROR(layer_norm(x, {3}, Tensor(), zeros({3}, DType::f64)), "layer_norm: bias is f64 but the input is f32");
  EXPECT_TG_ERROR(layer_norm(zeros({2, 3}, DType::i64), {3}), "layer_norm: expected a floating tensor (f32 or f64), got i64 of shape [2, 3]");
}

struct ThreadGuard {
  int saved = get_num_threads();
  ~ThreadGuard() { set_num_threads(saved); }
};

TEST(LayerNorm, SameBitsForOneAndTwoThreads) {
  ThreadGuard guard;
  // 1000 rows: not a multiple of the row block.
  Tensor x = uniform({1000, 300}, 19, -2, 2, DType::f32);
  Tensor w = uniform({300}, 20, -1, 1, DType::f32), b = uniform({300}, 21, -1, 1, DType::f32);
  Tensor dy = uniform({1000, 300}, 22, -1, 1, DType::f32);
  auto compute = [&] {
    Tensor xl = x.detach().clone(), wl = w.detach().clone(), bl = b.detach().clone();
    xl.requires_grad_();
    wl.requires_grad_();
    bl.requires_grad_();
    Tensor y = layer_norm(xl, {300}, wl, bl);
    backward(y, dy);
    return std::vector<std::vector<double>>{y.detach().to_vector(), xl.grad().to_vector(),
                                            wl.grad().to_vector(), bl.grad().to_vector()};
  };
  set_num_threads(1);
  auto one = compute();
  set_num_threads(2);
  auto two = compute();
  for (size_t i = 0; i < one.size(); ++i) EXPECT_TRUE(one[i] == two[i]) << "result " << i;
}

}  // namespace
}  // namespace tg
