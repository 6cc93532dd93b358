// Binary elementwise ops: forward against a naive broadcast loop, f32 against f64, scalar
// overloads, the operators, gradients by hand (broadcast and empty), errors, and thread-count
// independence. Finite-difference gradchecks live in tools/gradcheck/cases_elementwise.cpp.
#include <cstring>
#include <functional>

#include "test_util.h"

namespace tg {
namespace {

using testing::expect_close;
using testing::max_abs_diff;
using testing::uniform;

// Flat index into a tensor of shape `in` (which broadcasts to `out`) read by output element i.
int64_t source_index(const Shape& in, const Shape& out, int64_t i) {
  int64_t idx = 0, stride = 1;
  size_t lead = out.size() - in.size();
  for (size_t d = out.size(); d-- > 0;) {
    int64_t k = i % out[d];
    i /= out[d];
    if (d < lead) continue;
    int64_t s = in[d - lead];
    if (s != 1) idx += k * stride;
    stride *= s;
  }
  return idx;
}

// out[i] = f(a at i, b at i) by plain loops over to_vector().
Tensor naive(const Tensor& a, const Tensor& b, const Shape& out,
             const std::function<double(double, double)>& f) {
  std::vector<double> va = a.to_vector(), vb = b.to_vector(), r(size_t(numel(out)));
  for (int64_t i = 0; i < numel(out); ++i)
    r[size_t(i)] = f(va[size_t(source_index(a.shape(), out, i))], vb[size_t(source_index(b.shape(), out, i))]);
  return tensor(r, out, DType::f64);
}

struct Op {
  const char* name;
  Tensor (*fn)(const Tensor&, const Tensor&);
  std::function<double(double, double)> ref;
};

const std::vector<Op>& ops() {
  static const std::vector<Op> o = {
      {"add", &add, [](double x, double y) { return x + y; }},
      {"sub", &sub, [](double x, double y) { return x - y; }},
      {"mul", &mul, [](double x, double y) { return x * y; }},
      {"div", &div, [](double x, double y) { return x / y; }},
  };
  return o;
}

struct Case {
  Shape a, b, out;
};

// Equal shapes, scalars, rows, size-1 axes, empty axes, general N-d, and sizes past the
// parallel grain whose chunks start in the middle of a row.
const std::vector<Case> kCases = {
    {{2, 3}, {2, 3}, {2, 3}},
    {{3, 1}, {1, 4}, {3, 4}},
    {{2, 3, 4}, {4}, {2, 3, 4}},
    {{4}, {2, 3, 4}, {2, 3, 4}},
    {{2, 3}, {}, {2, 3}},
    {{}, {2, 3}, {2, 3}},
    {{}, {}, {}},
    {{1}, {}, {1}},
    {{1, 1}, {1, 3}, {1, 3}},
    {{2, 1, 4}, {3, 1}, {2, 3, 4}},
    {{5, 1, 1, 3}, {1, 2, 7, 1}, {5, 2, 7, 3}},
    {{3, 1, 5, 1}, {1, 4, 1, 6}, {3, 4, 5, 6}},
    {{0, 3}, {3}, {0, 3}},
    {{2, 0}, {1}, {2, 0}},
    {{300, 257}, {257}, {300, 257}},
    {{40, 1, 300}, {7, 300}, {40, 7, 300}},
    {{70001}, {1}, {70001}},
    {{70001}, {70001}, {70001}},
    {{2, 3, 7001}, {2, 1, 1}, {2, 3, 7001}},
};

TEST(Binary, ForwardMatchesNaiveBroadcast) {
  uint64_t seed = 1;
  for (const Case& c : kCases) {
    Tensor a = uniform(c.a, seed++);
    Tensor b = uniform(c.b, seed++, 0.5, 2.0);  // away from 0 for div
    for (const Op& op : ops()) {
      SCOPED_TRACE(std::string(op.name) + " " + shape_str(c.a) + " " + shape_str(c.b));
      Tensor y = op.fn(a, b);
      ASSERT_EQ(y.shape(), c.out);
      EXPECT_EQ(y.dtype(), DType::f64);
      expect_close(y, naive(a, b, c.out, op.ref), 0, 0);  // one IEEE operation: exact
    }
  }
}

TEST(Binary, F32MatchesF64) {
  for (const Case& c : {kCases[1], kCases[2], kCases[4], kCases[10], kCases[14]}) {
    Tensor a = uniform(c.a, 7), b = uniform(c.b, 8, 0.5, 2.0);
    for (const Op& op : ops()) {
      SCOPED_TRACE(op.name);
      Tensor y32 = op.fn(a.to(DType::f32), b.to(DType::f32));
      EXPECT_EQ(y32.dtype(), DType::f32);
      expect_close(y32.to(DType::f64), op.fn(a, b), 1e-6, 1e-6);
    }
  }
}

TEST(Binary, ScalarOverloads) {
  Tensor x = uniform({3, 5}, 3, 0.5, 2.0);
  auto ref = [&](const std::function<double(double)>& f) {
    std::vector<double> v = x.to_vector();
    for (double& e : v) e = f(e);
    return tensor(v, x.shape(), DType::f64);
  };
  expect_close(add(x, 1.5), ref([](double v) { return v + 1.5; }), 0, 0);
  expect_close(sub(x, 0.25), ref([](double v) { return v - 0.25; }), 0, 0);
  expect_close(rsub(x, 2.0), ref([](double v) { return 2.0 - v; }), 0, 0);
  expect_close(mul(x, -3.0), ref([](double v) { return v * -3.0; }), 0, 0);
  expect_close(div(x, 3.0), ref([](double v) { return v / 3.0; }), 0, 0);
  expect_close(rdiv(x, 2.0), ref([](double v) { return 2.0 / v; }), 0, 0);
  // f32 keeps its dtype and agrees with f64.
  Tensor x32 = x.to(DType::f32);
  EXPECT_EQ(rdiv(x32, 2.0).dtype(), DType::f32);
  expect_close(rdiv(x32, 2.0).to(DType::f64), rdiv(x, 2.0), 1e-6, 1e-6);
  expect_close(sub(x32, 0.1).to(DType::f64), sub(x, 0.1), 1e-6, 1e-6);
}

TEST(Binary, OperatorsMatchNamedFunctions) {
  Tensor a = uniform({2, 3}, 11), b = uniform({3}, 12, 0.5, 2.0);
  auto same = [](const Tensor& x, const Tensor& y) { EXPECT_EQ(max_abs_diff(x, y), 0.0); };
  same(a + b, add(a, b));
  same(a - b, sub(a, b));
  same(a * b, mul(a, b));
  same(a / b, div(a, b));
  same(a + 2.0, add(a, 2.0));
  same(2.0 + a, add(a, 2.0));
  same(a - 2.0, sub(a, 2.0));
  same(2.0 - a, rsub(a, 2.0));
  same(a * 2.0, mul(a, 2.0));
  same(2.0 * a, mul(a, 2.0));
  same(a / 2.0, div(a, 2.0));
  same(2.0 / b, rdiv(b, 2.0));
  same(-a, neg(a));
  same(-a, mul(a, -1.0));
}

Tensor leaf(const Shape& shape, uint64_t seed, double lo = -1, double hi = 1) {
  Tensor t = uniform(shape, seed, lo, hi);
  t.requires_grad_();
  return t;
}

TEST(Binary, BroadcastGradientsByHand) {
  // [3, 1] op [1, 4] with a random dout: each input's gradient sums over the other's axis.
  Tensor a = leaf({3, 1}, 21), b = leaf({1, 4}, 22, 0.5, 2.0);
  Tensor g = uniform({3, 4}, 23);
  auto A = [&](int i) { return a.at({i, 0}); };
  auto B = [&](int j) { return b.at({0, j}); };
  auto G = [&](int i, int j) { return g.at({i, j}); };

  backward(mul(a, b), g);
  for (int i = 0; i < 3; ++i) {
    double s = 0;
    for (int j = 0; j < 4; ++j) s += G(i, j) * B(j);
    EXPECT_NEAR(a.grad().at({i, 0}), s, 1e-14);
  }
  for (int j = 0; j < 4; ++j) {
    double s = 0;
    for (int i = 0; i < 3; ++i) s += G(i, j) * A(i);
    EXPECT_NEAR(b.grad().at({0, j}), s, 1e-14);
  }

  a.set_grad(Tensor());
  b.set_grad(Tensor());
  backward(div(a, b), g);
  for (int j = 0; j < 4; ++j) {
    double s = 0;
    for (int i = 0; i < 3; ++i) s += -G(i, j) * A(i) / (B(j) * B(j));
    EXPECT_NEAR(b.grad().at({0, j}), s, 1e-13);
  }
  for (int i = 0; i < 3; ++i) {
    double s = 0;
    for (int j = 0; j < 4; ++j) s += G(i, j) / B(j);
    EXPECT_NEAR(a.grad().at({i, 0}), s, 1e-13);
  }

  a.set_grad(Tensor());
  b.set_grad(Tensor());
  backward(sub(a, b), ones({3, 4}, DType::f64));
  for (int i = 0; i < 3; ++i) EXPECT_DOUBLE_EQ(a.grad().at({i, 0}), 4.0);
  for (int j = 0; j < 4; ++j) EXPECT_DOUBLE_EQ(b.grad().at({0, j}), -3.0);
}

TEST(Binary, ScalarShapedOperandGetsSummedGradient) {
  Tensor a = leaf({2, 3}, 31), s = leaf({}, 32);
  backward(add(a, s), ones({2, 3}, DType::f64));
  EXPECT_EQ(s.grad().shape(), Shape{});
  EXPECT_DOUBLE_EQ(s.grad().item(), 6.0);
}

TEST(Binary, EmptyAxis) {
  Tensor a = leaf({0, 3}, 41), b = leaf({3}, 42);
  Tensor y = mul(a, b);
  EXPECT_EQ(y.shape(), Shape({0, 3}));
  backward(y, zeros({0, 3}, DType::f64));
  EXPECT_EQ(a.grad().shape(), Shape({0, 3}));
  ASSERT_EQ(b.grad().shape(), Shape({3}));
  for (double v : b.grad().to_vector()) EXPECT_EQ(v, 0.0);
  EXPECT_EQ(add(zeros({2, 0}), zeros({1})).shape(), Shape({2, 0}));
}

TEST(Binary, OnlyRequestedGradients) {
  Tensor a = leaf({2, 3}, 51);
  Tensor b = uniform({3}, 52);
  backward(mul(a, b), ones({2, 3}, DType::f64));
  EXPECT_TRUE(a.grad().defined());
  EXPECT_FALSE(b.grad().defined());
  EXPECT_FALSE(mul(b, b).requires_grad());
}

TEST(Binary, SavedOperandModifiedInPlaceThrows) {
  Tensor a = leaf({2, 3}, 61), b = uniform({2, 3}, 62);
  Tensor y = mul(a, b);
  b.fill_(1.0);
  EXPECT_TG_ERROR(backward(y, ones({2, 3}, DType::f64)), "modified in place after mul saved it");
}

TEST(Binary, Errors) {
  Tensor f32 = zeros({2, 3}), f64 = zeros({2, 3}, DType::f64), i64 = zeros({2, 3}, DType::i64);
  EXPECT_TG_ERROR(add(f32, f64), "add: dtypes f32 and f64 differ (shapes [2, 3] and [2, 3])");
  EXPECT_TG_ERROR(mul(f64, f32), "mul: dtypes f64 and f32 differ");
  EXPECT_TG_ERROR(div(i64, i64), "div: expected a floating tensor (f32 or f64), got i64 of shape [2, 3]");
  EXPECT_TG_ERROR(sub(f32, zeros({4})), "sub: shapes [2, 3] and [4] do not broadcast");
  EXPECT_TG_ERROR(add(zeros({2, 3}), zeros({3, 3})), "add: shapes [2, 3] and [3, 3] do not broadcast");
  EXPECT_TG_ERROR(mul(i64, 2.0), "mul: expected a floating tensor");
  EXPECT_TG_ERROR(rdiv(zeros({2}, DType::b8), 1.0), "rdiv: expected a floating tensor");
  EXPECT_TG_ERROR(add(Tensor(), f32), "add: the input tensor is undefined");
}

// Bitwise equality of two tensors' bytes.
bool bitwise_equal(const Tensor& x, const Tensor& y) {
  return x.shape() == y.shape() && x.dtype() == y.dtype() &&
         std::memcmp(x.raw_data(), y.raw_data(), x.nbytes()) == 0;
}

TEST(Binary, ResultsDoNotDependOnThreadCount) {
  int saved = get_num_threads();
  struct Pair {
    Tensor a, b;
  };
  std::vector<Pair> pairs = {
      {uniform({1024, 1024}, 71, -1, 1, DType::f32), uniform({1024}, 72, -1, 1, DType::f32)},  // bias add
      {uniform({1 << 20}, 73, -1, 1, DType::f32), uniform({}, 74, -1, 1, DType::f32)},         // scalar
      {uniform({64, 128, 128}, 75, -1, 1, DType::f32), uniform({64, 1, 128}, 76, -1, 1, DType::f32)},
  };
  for (const Pair& p : pairs) {
    set_num_threads(1);
    Tensor one = add(p.a, p.b), one_mul = mul(p.a, p.b);
    set_num_threads(2);
    Tensor two = add(p.a, p.b), two_mul = mul(p.a, p.b);
    EXPECT_TRUE(bitwise_equal(one, two)) << shape_str(p.a.shape()) << " + " << shape_str(p.b.shape());
    EXPECT_TRUE(bitwise_equal(one_mul, two_mul));
    expect_close(two, naive(p.a, p.b, p.a.shape(), [](double x, double y) {
                   return double(float(x) + float(y));
                 }), 0, 0);
  }
  set_num_threads(saved);
}

}  // namespace
}  // namespace tg
