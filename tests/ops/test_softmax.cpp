// softmax and log_softmax: plain-loop references along every axis (the last-axis fast path and
// the column-block path, including a partial block), gradients against their formulas, f32
// against f64, stability for inputs near 1000, errors, thread-count independence.
#include <cmath>
#include <limits>

#include "ops/kernels/reduce_row.h"
#include "test_util.h"

namespace tg {
namespace {

using testing::expect_close;
using testing::uniform;

// The flat indices of x's elements along `axis`, one list per slice.
std::vector<std::vector<int64_t>> slices(const Shape& s, int64_t axis) {
  int64_t outer = 1, n = s[axis], inner = 1;
  for (int64_t i = 0; i < axis; ++i) outer *= s[i];
  for (size_t i = axis + 1; i < s.size(); ++i) inner *= s[i];
  std::vector<std::vector<int64_t>> out;
  for (int64_t o = 0; o < outer; ++o)
    for (int64_t c = 0; c < inner; ++c) {
      std::vector<int64_t> idx;
      for (int64_t r = 0; r < n; ++r) idx.push_back((o * n + r) * inner + c);
      out.push_back(idx);
    }
  return out;
}

Tensor reference(const Tensor& x, int64_t axis, bool log) {
  std::vector<double> v = x.to_vector(), y(v.size());
  for (auto& idx : slices(x.shape(), axis)) {
    double m = -INFINITY, s = 0;
    for (int64_t i : idx) m = std::max(m, v[size_t(i)]);
    for (int64_t i : idx) s += std::exp(v[size_t(i)] - m);
    for (int64_t i : idx) y[size_t(i)] = log ? v[size_t(i)] - m - std::log(s) : std::exp(v[size_t(i)] - m) / s;
  }
  return tensor(y, x.shape(), DType::f64);
}

// dx from the formulas, with p = softmax(x): softmax dx = p (dy - sum(dy p)); log_softmax
// dx = dy - p sum(dy).
Tensor reference_grad(const Tensor& x, const Tensor& dy, int64_t axis, bool log) {
  std::vector<double> p = reference(x, axis, false).to_vector(), g = dy.to_vector(), dx(p.size());
  for (auto& idx : slices(x.shape(), axis)) {
    double s = 0;
    for (int64_t i : idx) s += log ? g[size_t(i)] : g[size_t(i)] * p[size_t(i)];
    for (int64_t i : idx)
      dx[size_t(i)] = log ? g[size_t(i)] - p[size_t(i)] * s : p[size_t(i)] * (g[size_t(i)] - s);
  }
  return tensor(dx, x.shape(), DType::f64);
}

Tensor run(const Tensor& x, int64_t axis, bool log) { return log ? log_softmax(x, axis) : softmax(x, axis); }

struct Case {
  Shape shape;
  int64_t axis;
};
// Last axis (rows of 37: two full 16-lane blocks and a tail); first and middle axes; inner of
// 130 = two full column blocks and a partial one.
const std::vector<Case> kCases = {{{3, 5}, -1},   {{3, 37}, -1},  {{3, 5}, 0},      {{2, 3, 4}, 0},
                                  {{2, 3, 4}, 1}, {{2, 3, 4}, 2}, {{2, 3, 4}, -2},  {{3, 4, 130}, 1},
                                  {{7}, 0}};

TEST(Softmax, ForwardMatchesReference) {
  for (bool log : {false, true})
    for (const Case& c : kCases) {
      SCOPED_TRACE(shape_str(c.shape) + " axis " + std::to_string(c.axis) + (log ? " log" : ""));
      Tensor x = uniform(c.shape, 1, -3, 3);
      Tensor y = run(x, c.axis, log);
      int64_t axis = c.axis < 0 ? c.axis + int64_t(c.shape.size()) : c.axis;
      expect_close(y, reference(x, axis, log), 1e-12, 1e-14);
    }
}

TEST(Softmax, BackwardMatchesFormula) {
  for (bool log : {false, true})
    for (const Case& c : kCases) {
      SCOPED_TRACE(shape_str(c.shape) + " axis " + std::to_string(c.axis) + (log ? " log" : ""));
      Tensor x = uniform(c.shape, 2, -3, 3);
      Tensor dy = uniform(c.shape, 3);
      x.requires_grad_();
      backward(run(x, c.axis, log), dy);
      int64_t axis = c.axis < 0 ? c.axis + int64_t(c.shape.size()) : c.axis;
      expect_close(x.grad(), reference_grad(x, dy, axis, log), 1e-12, 1e-14);
    }
}

TEST(Softmax, Float32MatchesFloat64) {
  for (bool log : {false, true})
    for (const Case& c : kCases) {
      Tensor x = uniform(c.shape, 4, -5, 5);
      Tensor y32 = run(x.to(DType::f32), c.axis, log);
      EXPECT_EQ(y32.dtype(), DType::f32);
      expect_close(y32.to(DType::f64), run(x, c.axis, log), 1e-5, 1e-6);
    }
}

// f32 last-axis rows run eight lanes at a time: widths below, at and past multiples of 8.
TEST(Softmax, Float32GradientMatchesFloat64AtEveryWidth) {
  for (int64_t n : {3, 8, 19, 256}) {
    SCOPED_TRACE(n);
    Tensor x = uniform({3, n}, uint64_t(n), -5, 5), dy = uniform({3, n}, uint64_t(n) + 1);
    Tensor x64 = x.detach().clone().requires_grad_(), x32 = x.to(DType::f32).requires_grad_();
    backward(softmax(x64, -1), dy);
    backward(softmax(x32, -1), dy.to(DType::f32));
    expect_close(x32.grad().to(DType::f64), x64.grad(), 1e-6, 1e-6);
  }
}

TEST(Softmax, StableForLargeInputs) {
  for (DType dt : {DType::f32, DType::f64}) {
    Tensor x = tensor({1000, 1001, 1002, -1000, 999, 1000}, {2, 3}, dt);
    Tensor shifted = tensor({0, 1, 2, -2000, -1, 0}, {2, 3}, DType::f64);
    expect_close(softmax(x).to(DType::f64), reference(shifted, 1, false), 1e-6, 1e-7);
    expect_close(log_softmax(x).to(DType::f64), reference(shifted, 1, true), 1e-6, 1e-4);
    // Along the first axis too (column path).
    Tensor xt = tensor({1000, -1000, 1001, 999, 1002, 1000}, {3, 2}, dt);
    Tensor st = tensor({0, -2000, 1, -1, 2, 0}, {3, 2}, DType::f64);
    expect_close(softmax(xt, 0).to(DType::f64), reference(st, 0, false), 1e-6, 1e-7);
    expect_close(log_softmax(xt, 0).to(DType::f64), reference(st, 0, true), 1e-6, 1e-4);
  }
}

TEST(Softmax, RowsSumToOneAndScalar) {
  Tensor y = softmax(uniform({4, 9}, 5, -10, 10));
  std::vector<double> v = y.to_vector();
  for (int i = 0; i < 4; ++i) {
    double s = 0;
    for (int j = 0; j < 9; ++j) s += v[size_t(i * 9 + j)];
    EXPECT_NEAR(s, 1.0, 1e-14);
  }
  EXPECT_DOUBLE_EQ(softmax(tensor({3.0}, {}, DType::f64)).item(), 1.0);
  EXPECT_DOUBLE_EQ(log_softmax(tensor({3.0}, {}, DType::f64), 0).item(), 0.0);
  EXPECT_EQ(softmax(zeros({2, 0})).shape(), Shape({2, 0}));
}

TEST(Softmax, Errors) {
  EXPECT_TG_ERROR(softmax(zeros({2, 3}), 2), "softmax: axis 2 is out of range for a tensor of shape [2, 3] (rank 2)");
  EXPECT_TG_ERROR(log_softmax(zeros({2, 3}), -3), "log_softmax: axis -3 is out of range");
  EXPECT_TG_ERROR(softmax(zeros({2}, DType::i64)), "softmax: expected a floating tensor (f32 or f64), got i64 of shape [2]");
}

struct ThreadGuard {
  int saved = get_num_threads();
  ~ThreadGuard() { set_num_threads(saved); }
};

TEST(Softmax, SameBitsForOneAndTwoThreads) {
  ThreadGuard guard;
  Tensor x = uniform({8, 4, 64, 64}, 6, -4, 4, DType::f32);
  Tensor dy = uniform({8, 4, 64, 64}, 7, -1, 1, DType::f32);
  auto compute = [&] {
    std::vector<std::vector<double>> r;
    for (bool log : {false, true})
      for (int64_t axis : {-1, 1}) {
        Tensor xl = x.detach().clone();
        xl.requires_grad_();
        Tensor y = run(xl, axis, log);
        backward(y, dy);
        r.push_back(y.detach().to_vector());
        r.push_back(xl.grad().to_vector());
      }
    return r;
  };
  set_num_threads(1);
  auto one = compute();
  set_num_threads(2);
  auto two = compute();
  for (size_t i = 0; i < one.size(); ++i) EXPECT_TRUE(one[i] == two[i]) << "result " << i;
}

}  // namespace
}  // namespace tg
