// Reductions: sum, mean, max, var, logsumexp against plain-loop references, over single, several
// (non-adjacent), negative and all axes, with and without keepdim; f32 against f64; gradients
// of ties, keepdim and empty axes; errors; thread-count independence.
#include <algorithm>
#include <cmath>
#include <functional>
#include <limits>

#include "test_util.h"

namespace tg {
namespace {

using testing::expect_close;
using testing::uniform;

constexpr double kInf = std::numeric_limits<double>::infinity();

// x's values grouped by the output element they reduce into (row-major order within a group),
// with each value's flat input index.
struct Groups {
  Shape keep;  // x's shape with reduced axes of size 1
  std::vector<std::vector<std::pair<int64_t, double>>> of;
};

Groups group(const Tensor& x, const Axes& axes) {
  Shape s = x.shape();
  std::vector<bool> red(s.size(), axes.empty());
  for (int64_t a : axes) red[a < 0 ? a + int64_t(s.size()) : a] = true;
  Groups g;
  g.keep = s;
  for (size_t d = 0; d < s.size(); ++d)
    if (red[d]) g.keep[d] = 1;
  g.of.resize(size_t(numel(g.keep)));
  std::vector<double> v = x.to_vector();
  for (int64_t i = 0; i < int64_t(v.size()); ++i) {
    int64_t rest = i, j = 0, stride = 1;
    for (size_t d = s.size(); d-- > 0;) {
      int64_t k = rest % s[d];
      rest /= s[d];
      if (!red[d]) j += k * stride;
      stride *= g.keep[d];
    }
    g.of[size_t(j)].push_back({i, v[size_t(i)]});
  }
  return g;
}

double ref_sum(const std::vector<std::pair<int64_t, double>>& g) {
  double s = 0;
  for (auto& [i, v] : g) s += v;
  return s;
}

double reference(const std::string& op, const std::vector<std::pair<int64_t, double>>& g, int64_t correction) {
  double n = double(g.size());
  if (op == "sum") return ref_sum(g);
  if (op == "mean") return ref_sum(g) / n;
  if (op == "max") {
    double m = -kInf;
    for (auto& [i, v] : g) m = std::max(m, v);
    return m;
  }
  if (op == "var") {
    double mu = ref_sum(g) / n, ss = 0;
    for (auto& [i, v] : g) ss += (v - mu) * (v - mu);
    return ss / (n - double(correction));
  }
  double s = 0;  // logsumexp, inputs are small
  for (auto& [i, v] : g) s += std::exp(v);
  return std::log(s);
}

Tensor run(const std::string& op, const Tensor& x, const Axes& axes, bool keepdim, int64_t correction = 1) {
  if (op == "sum") return sum(x, axes, keepdim);
  if (op == "mean") return mean(x, axes, keepdim);
  if (op == "max") return max(x, axes, keepdim);
  if (op == "var") return var(x, axes, correction, keepdim);
  return logsumexp(x, axes, keepdim);
}

Shape expected_shape(const Tensor& x, const Axes& axes, bool keepdim) {
  Groups g = group(x, axes);
  if (keepdim) return g.keep;
  Shape out;
  std::vector<bool> red(x.shape().size(), axes.empty());
  for (int64_t a : axes) red[a < 0 ? a + x.dim() : a] = true;
  for (size_t d = 0; d < red.size(); ++d)
    if (!red[d]) out.push_back(x.shape()[d]);
  return out;
}

const std::vector<std::string> kOps = {"sum", "mean", "max", "var", "logsumexp"};
const std::vector<Axes> kAxes = {{}, {0}, {1}, {2}, {-1}, {0, 2}, {2, 0}, {1, 2}, {-3, 1}, {0, 1, 2}};

TEST(Reduce, ForwardMatchesReferenceOverAxes) {
  Tensor x = uniform({3, 4, 5}, 1, -2, 2);
  for (const std::string& op : kOps)
    for (const Axes& axes : kAxes)
      for (bool keepdim : {false, true}) {
        SCOPED_TRACE(op + " axes " + shape_str(axes) + (keepdim ? " keepdim" : ""));
        Tensor y = run(op, x, axes, keepdim);
        ASSERT_EQ(y.shape(), expected_shape(x, axes, keepdim));
        Groups g = group(x, axes);
        std::vector<double> want;
        for (auto& grp : g.of) want.push_back(reference(op, grp, 1));
        expect_close(y, tensor(want, y.shape(), DType::f64), 1e-12, 1e-12);
      }
}

TEST(Reduce, VarCorrections) {
  Tensor x = uniform({4, 6}, 2);
  for (int64_t c : {0, 1, 2})
    for (const Axes& axes : std::vector<Axes>{{}, {0}, {1}}) {
      Tensor y = var(x, axes, c);
      std::vector<double> want;
      for (auto& grp : group(x, axes).of) want.push_back(reference("var", grp, c));
      expect_close(y, tensor(want, y.shape(), DType::f64), 1e-12, 1e-12);
    }
  // Two passes: an offset of 1e8 does not swamp a spread of 1.
  Tensor big = tensor({1e8 + 1, 1e8 + 2, 1e8 + 3, 1e8 + 4}, {4}, DType::f64);
  EXPECT_NEAR(var(big).item(), 5.0 / 3.0, 1e-9);
}

TEST(Reduce, Float32MatchesFloat64) {
  Tensor x = uniform({6, 7, 8}, 3, -3, 3);
  Tensor x32 = x.to(DType::f32);
  for (const std::string& op : kOps)
    for (const Axes& axes : std::vector<Axes>{{}, {1}, {0, 2}}) {
      SCOPED_TRACE(op + " axes " + shape_str(axes));
      Tensor y32 = run(op, x32, axes, false);
      EXPECT_EQ(y32.dtype(), DType::f32);
      expect_close(y32.to(DType::f64), run(op, x, axes, false), 1e-5, 1e-5);
    }
}

TEST(Reduce, ScalarAndSizeOneAxes) {
  Tensor s = tensor({2.5}, {}, DType::f64);
  EXPECT_EQ(sum(s).shape(), Shape{});
  EXPECT_DOUBLE_EQ(sum(s, {0}).item(), 2.5);
  EXPECT_DOUBLE_EQ(max(s, {-1}, true).item(), 2.5);
  Tensor x = uniform({3, 1, 4}, 4);
  Tensor y = sum(x, {1});
  ASSERT_EQ(y.shape(), Shape({3, 4}));
  expect_close(y, tensor(x.to_vector(), {3, 4}, DType::f64), 0, 0);
}

TEST(Reduce, EmptyAxes) {
  Tensor x = zeros({2, 0, 3}, DType::f64);
  Tensor s = sum(x, {1});
  ASSERT_EQ(s.shape(), Shape({2, 3}));
  for (double v : s.to_vector()) EXPECT_EQ(v, 0.0);
  for (double v : mean(x, {1}).to_vector()) EXPECT_TRUE(std::isnan(v));
  for (double v : var(x, {1}).to_vector()) EXPECT_TRUE(std::isnan(v));
  for (double v : logsumexp(x, {1}).to_vector()) EXPECT_EQ(v, -kInf);
  EXPECT_DOUBLE_EQ(sum(x).item(), 0.0);
  EXPECT_TG_ERROR(max(x, {1}), "max: cannot reduce over axis 1 of size 0 (input of shape [2, 0, 3])");
  EXPECT_TG_ERROR(max(x), "axis 1 of size 0");
  // An empty kept axis is fine: no outputs.
  EXPECT_EQ(max(zeros({0, 3}, DType::f64), {1}).shape(), Shape({0}));
  // The gradient of an empty input is an empty gradient.
  x.requires_grad_();
  backward(sum(x));
  ASSERT_TRUE(x.grad().defined());
  EXPECT_EQ(x.grad().shape(), Shape({2, 0, 3}));
}

// x.grad() after backward(op(x), seed) for a fresh leaf x.
Tensor grad_of(const std::function<Tensor(const Tensor&)>& f, Tensor x, const Tensor& seed) {
  x = x.detach().clone();
  x.requires_grad_();
  backward(f(x), seed);
  return x.grad();
}

TEST(Reduce, MaxGradientGoesToFirstArgmax) {
  Tensor x = tensor({1, 3, 3, 2, 2, 0}, {2, 3}, DType::f64);
  // Along the last axis (reduced inner loop).
  Tensor g = grad_of([](const Tensor& t) { return max(t, {1}); }, x, tensor({10, 20}, {2}, DType::f64));
  EXPECT_EQ(g.to_vector(), (std::vector<double>{0, 10, 0, 20, 0, 0}));
  // Along the first axis (kept inner loop): every column ties.
  Tensor y = tensor({4, 1, 5, 4, 1, 5}, {2, 3}, DType::f64);
  g = grad_of([](const Tensor& t) { return max(t, {0}); }, y, tensor({1, 2, 3}, {3}, DType::f64));
  EXPECT_EQ(g.to_vector(), (std::vector<double>{1, 2, 3, 0, 0, 0}));
  // Over all axes and over non-adjacent axes: the first in row-major order.
  Tensor z = tensor({5, 1, 5, 5, 2, 5, 5, 0}, {2, 2, 2}, DType::f64);
  g = grad_of([](const Tensor& t) { return max(t); }, z, tensor({1.0}, {}, DType::f64));
  EXPECT_EQ(g.to_vector(), (std::vector<double>{1, 0, 0, 0, 0, 0, 0, 0}));
  g = grad_of([](const Tensor& t) { return max(t, {0, 2}); }, z, tensor({1, 2}, {2}, DType::f64));
  EXPECT_EQ(g.to_vector(), (std::vector<double>{1, 0, 2, 0, 0, 0, 0, 0}));
  // All -inf: still one arg-max, the first.
  Tensor m = full({3}, -kInf, DType::f64);
  EXPECT_EQ(max(m).item(), -kInf);
  g = grad_of([](const Tensor& t) { return max(t); }, m, tensor({1.0}, {}, DType::f64));
  EXPECT_EQ(g.to_vector(), (std::vector<double>{1, 0, 0}));
}

TEST(Reduce, MaxPropagatesNaN) {
  Tensor x = tensor({1, NAN, 3, 2}, {4}, DType::f64);
  EXPECT_TRUE(std::isnan(max(x).item()));
  Tensor g = grad_of([](const Tensor& t) { return max(t); }, x, tensor({1.0}, {}, DType::f64));
  EXPECT_EQ(g.to_vector(), (std::vector<double>{0, 1, 0, 0}));
}

TEST(Reduce, KeepdimGradientsSpreadDout) {
  Tensor x = uniform({2, 3, 4}, 5);
  Tensor seed = uniform({2, 1, 4}, 6);
  Tensor g = grad_of([](const Tensor& t) { return sum(t, {1}, true); }, x, seed);
  Tensor gm = grad_of([](const Tensor& t) { return mean(t, {-2}, true); }, x, seed);
  std::vector<double> s = seed.to_vector(), gv = g.to_vector(), gmv = gm.to_vector();
  for (int64_t i = 0; i < 2; ++i)
    for (int64_t j = 0; j < 3; ++j)
      for (int64_t k = 0; k < 4; ++k) {
        EXPECT_DOUBLE_EQ(gv[size_t(i * 12 + j * 4 + k)], s[size_t(i * 4 + k)]);
        EXPECT_DOUBLE_EQ(gmv[size_t(i * 12 + j * 4 + k)], s[size_t(i * 4 + k)] / 3);
      }
}

TEST(Reduce, VarGradientFormula) {
  Tensor x = uniform({3, 5}, 7);
  Tensor seed = uniform({3}, 8);
  for (int64_t c : {0, 1, 2}) {
    Tensor g = grad_of([c](const Tensor& t) { return var(t, {1}, c); }, x, seed);
    std::vector<double> xv = x.to_vector(), sv = seed.to_vector(), want(15);
    for (int i = 0; i < 3; ++i) {
      double mu = 0;
      for (int j = 0; j < 5; ++j) mu += xv[size_t(i * 5 + j)] / 5;
      for (int j = 0; j < 5; ++j) want[size_t(i * 5 + j)] = sv[size_t(i)] * 2 * (xv[size_t(i * 5 + j)] - mu) / double(5 - c);
    }
    expect_close(g, tensor(want, {3, 5}, DType::f64), 1e-12, 1e-12);
  }
}

TEST(Reduce, LogsumexpIsStable) {
  Tensor x = tensor({1000, 1000, 999, -1000}, {2, 2}, DType::f64);
  std::vector<double> y = logsumexp(x, {1}).to_vector();
  EXPECT_NEAR(y[0], 1000 + std::log(2.0), 1e-12);
  EXPECT_NEAR(y[1], 999, 1e-12);
  Tensor x32 = tensor({1000, 1001, 1002}, {3}, DType::f32);
  EXPECT_NEAR(logsumexp(x32, {0}).item(), 1002 + std::log(1 + std::exp(-1.0) + std::exp(-2.0)), 1e-3);
  // A row of -inf gives -inf with a zero gradient, and no NaN.
  Tensor m = tensor({-kInf, -kInf, -kInf, 0.5}, {2, 2}, DType::f64);
  y = logsumexp(m, {1}).to_vector();
  EXPECT_EQ(y[0], -kInf);
  EXPECT_NEAR(y[1], 0.5, 1e-15);
  Tensor g = grad_of([](const Tensor& t) { return logsumexp(t, {1}); }, m, ones({2}, DType::f64));
  EXPECT_EQ(g.to_vector(), (std::vector<double>{0, 0, 0, 1}));
  EXPECT_EQ(logsumexp(tensor({kInf, 1.0}, {2}, DType::f64), {0}).item(), kInf);
}

TEST(Reduce, LogsumexpGradientIsSoftmax) {
  Tensor x = uniform({2, 3}, 9);
  Tensor g = grad_of([](const Tensor& t) { return logsumexp(t, {1}); }, x, ones({2}, DType::f64));
  std::vector<double> xv = x.to_vector(), want(6);
  for (int i = 0; i < 2; ++i) {
    double s = 0;
    for (int j = 0; j < 3; ++j) s += std::exp(xv[size_t(i * 3 + j)]);
    for (int j = 0; j < 3; ++j) want[size_t(i * 3 + j)] = std::exp(xv[size_t(i * 3 + j)]) / s;
  }
  expect_close(g, tensor(want, {2, 3}, DType::f64), 1e-12, 1e-14);
}

TEST(Reduce, Errors) {
  Tensor x = zeros({2, 3});
  EXPECT_TG_ERROR(sum(x, {1, -1}), "sum: axis 1 appears twice in axes [1, -1] (tensor of shape [2, 3])");
  EXPECT_TG_ERROR(mean(x, {2}), "mean: axis 2 is out of range for a tensor of shape [2, 3] (rank 2)");
  EXPECT_TG_ERROR(max(x, {-3}), "max: axis -3 is out of range");
  EXPECT_TG_ERROR(var(x, {0, 0}), "var: axis 0 appears twice");
  EXPECT_TG_ERROR(logsumexp(x, {5}), "logsumexp: axis 5 is out of range");
  EXPECT_TG_ERROR(sum(zeros({2}, DType::i64)), "sum: expected a floating tensor (f32 or f64), got i64 of shape [2]");
  EXPECT_TG_ERROR(sum(Tensor()), "sum: the input tensor is undefined");
  EXPECT_TG_ERROR(sum(zeros({}), {1}), "sum: axis 1 is out of range for a tensor of shape [] (rank 0)");
}

// Restores the thread setting when a test ends.
struct ThreadGuard {
  int saved = get_num_threads();
  ~ThreadGuard() { set_num_threads(saved); }
};

TEST(Reduce, SameBitsForOneAndTwoThreads) {
  ThreadGuard guard;
  Tensor x = uniform({256, 64, 33}, 10, -1, 1, DType::f32);
  Tensor seed = uniform({256, 33}, 11, -1, 1, DType::f32);
  auto compute = [&] {
    std::vector<std::vector<double>> r;
    for (const std::string& op : kOps)
      for (const Axes& axes : std::vector<Axes>{{}, {1}, {2}, {0}, {0, 2}}) r.push_back(run(op, x, axes, false).to_vector());
    r.push_back(grad_of([](const Tensor& t) { return var(t, {1}); }, x, seed).to_vector());
    return r;
  };
  set_num_threads(1);
  auto one = compute();
  set_num_threads(2);
  auto two = compute();
  ASSERT_EQ(one.size(), two.size());
  for (size_t i = 0; i < one.size(); ++i) EXPECT_TRUE(one[i] == two[i]) << "result " << i;
}

}  // namespace
}  // namespace tg
