// Gradcheck cases of the elementwise family: binary ops (tensor and scalar forms), unary ops and
// activations, where and masked_fill. Shapes cover equal, broadcast ([3, 1] with [1, 4],
// [2, 3, 4] with [4]), scalar [] operands, size-1 axes and empty axes; inputs stay in each op's
// domain (positive for log/sqrt/rsqrt/pow, divisors away from 0) and away from kinks (relu,
// clamp).
#include <cmath>

#include "autograd/tape.h"
#include "ops/binary.h"
#include "ops/select.h"
#include "ops/unary.h"
#include "tools/gradcheck/catalogue.h"

namespace tg::catalogue {
namespace {

// Uniform in [lo, hi), f64, from a fixed seed.
using catalogue::uniform;

// Uniform in [-1.5, 1.5) with every value at least 0.05 from each kink, so the finite
// differences (step 1e-6) never straddle one.
Tensor away_from(const Shape& shape, uint64_t seed, std::initializer_list<double> kinks) {
  Tensor t = uniform(shape, seed, -1.5, 1.5);
  double* p = t.data<double>();
  for (int64_t i = 0; i < t.numel(); ++i)
    for (double k : kinks)
      if (std::fabs(p[i] - k) < 0.05) p[i] = k + (p[i] >= k ? 0.1 : -0.1);
  return t;
}

Tensor mask(const Shape& shape, uint64_t seed) {
  Tensor u = uniform(shape, seed);
  Tensor m = empty(shape, DType::b8);
  for (int64_t i = 0; i < u.numel(); ++i) m.data<bool>()[i] = u.data<double>()[i] > 0;
  return m;
}

// Test scaffolding, not an op: sums x [N, C] (f64) over N, recorded, so that a case whose op
// output has an empty axis still has a non-empty output to compare.
Tensor sum_rows(const Tensor& x) {
  const int64_t n = x.size(0), c = x.size(1);
  Tensor out = zeros({c}, DType::f64);
  for (int64_t i = 0; i < n; ++i)
    for (int64_t j = 0; j < c; ++j) out.data<double>()[j] += x.data<double>()[i * c + j];
  record("sum_rows", out, {&x}, [n, c](Node& node, const Tensor& dout) {
    Tensor dx = empty({n, c}, DType::f64);
    for (int64_t i = 0; i < n; ++i)
      for (int64_t j = 0; j < c; ++j) dx.data<double>()[i * c + j] = dout.data<double>()[j];
    node.accumulate(0, dx);
  });
  return out;
}

using Binary = Tensor (*)(const Tensor&, const Tensor&);
using Unary = Tensor (*)(const Tensor&);

void binary_cases(std::vector<OpCase>& out, const char* name, const char* sym, Binary f,
                  double b_lo, double b_hi, uint64_t seed) {
  auto fn = [f](const std::vector<Tensor>& in) { return f(in[0], in[1]); };
  struct S {
    Shape a, b;
  };
  for (const S& s : {S{{2, 3}, {2, 3}}, S{{3, 1}, {1, 4}}, S{{2, 3, 4}, {4}}, S{{2, 3}, {}},
                     S{{}, {2, 3}}, S{{2, 1, 3}, {1, 4, 1}}, S{{1, 1}, {1}}}) {
    out.push_back({name, shape_str(s.a) + " " + sym + " " + shape_str(s.b), fn,
                   {uniform(s.a, seed++), uniform(s.b, seed++, b_lo, b_hi)}});
  }
  // Empty axis: the op's output [0, 3] is summed over rows and added to b, so the check sees
  // b's gradient through both paths (the empty one contributes zeros).
  out.push_back({name, std::string("[0, 3] ") + sym + " [3], rows summed, + [3]",
                 [f](const std::vector<Tensor>& in) { return add(sum_rows(f(in[0], in[1])), in[1]); },
                 {uniform({0, 3}, seed++), uniform({3}, seed++, b_lo, b_hi)}});
}

void unary_case(std::vector<OpCase>& out, const char* name, const std::string& shapes,
                GradcheckFn fn, Tensor x) {
  out.push_back({name, shapes, std::move(fn), {std::move(x)}});
}

std::vector<OpCase> elementwise_cases() {
  std::vector<OpCase> c;
  binary_cases(c, "add", "+", &add, -1, 1, 100);
  binary_cases(c, "sub", "-", &sub, -1, 1, 200);
  binary_cases(c, "mul", "*", &mul, -1, 1, 300);
  binary_cases(c, "div", "/", &div, 0.5, 2.0, 400);  // divisors away from 0

  // Scalar forms.
  using V = const std::vector<Tensor>&;
  unary_case(c, "add", "[2, 3] + 1.5", [](V in) { return add(in[0], 1.5); }, uniform({2, 3}, 500));
  unary_case(c, "sub", "[2, 3] - 0.5", [](V in) { return sub(in[0], 0.5); }, uniform({2, 3}, 501));
  unary_case(c, "rsub", "2 - [2, 3]", [](V in) { return rsub(in[0], 2.0); }, uniform({2, 3}, 502));
  unary_case(c, "mul", "[2, 3] * -1.5", [](V in) { return mul(in[0], -1.5); }, uniform({2, 3}, 503));
  unary_case(c, "div", "[2, 3] / 3", [](V in) { return div(in[0], 3.0); }, uniform({2, 3}, 504));
  unary_case(c, "rdiv", "2 / [2, 3]", [](V in) { return rdiv(in[0], 2.0); }, uniform({2, 3}, 505, 0.5, 2));
  c.push_back({"operators", "(a + b) * c - a / 2 + 1 / c - -a, a [2, 3] b [3] c [2, 1]",
               [](V in) { return (in[0] + in[1]) * in[2] - in[0] / 2.0 + 1.0 / in[2] - -in[0]; },
               {uniform({2, 3}, 506), uniform({3}, 507), uniform({2, 1}, 508, 0.5, 2)}});

  // Unary ops on a few shapes each: plain, scalar [], size-1 axes.
  struct U {
    const char* name;
    Unary f;
    double lo, hi;
  };
  uint64_t seed = 600;
  for (const U& u : {U{"neg", &neg, -1, 1}, U{"exp", &exp, -2, 2}, U{"log", &log, 0.2, 3},
                     U{"sqrt", &sqrt, 0.2, 3}, U{"rsqrt", &rsqrt, 0.2, 3}, U{"tanh", &tanh, -2, 2},
                     U{"sigmoid", &sigmoid, -3, 3}, U{"silu", &silu, -4, 4}}) {
    auto fn = [f = u.f](V in) { return f(in[0]); };
    for (const Shape& s : {Shape{2, 3}, Shape{}, Shape{1, 4, 1}})
      unary_case(c, u.name, shape_str(s), fn, uniform(s, seed++, u.lo, u.hi));
  }
  unary_case(c, "relu", "[3, 4], |x| >= 0.05", [](V in) { return relu(in[0]); }, away_from({3, 4}, 700, {0.0}));
  unary_case(c, "relu", "[], x < 0", [](V in) { return relu(in[0]); }, uniform({}, 701, -1, -0.1));
  for (const char* approx : {"none", "tanh"}) {
    auto fn = [approx](V in) { return gelu(in[0], approx); };
    std::string tag = std::string(", approximate=") + approx;
    unary_case(c, "gelu", "[3, 5]" + tag, fn, uniform({3, 5}, 710, -3, 3));
    unary_case(c, "gelu", "[1, 4]" + tag, fn, uniform({1, 4}, 711, -0.5, 0.5));
  }
  for (double e : {2.0, 3.0, 0.5, -0.5, -1.0, -1.5, 2.7, 0.0}) {
    auto fn = [e](V in) { return pow(in[0], e); };
    unary_case(c, "pow", fmt::format("[2, 3] ** {}", e), fn, uniform({2, 3}, 720, 0.3, 2));
  }
  unary_case(c, "pow", "[2, 1] ** 2, negative x", [](V in) { return pow(in[0], 2.0); }, uniform({2, 1}, 721, -2, -0.5));
  unary_case(c, "clamp", "[4, 5], min -0.5, max 0.5",
             [](V in) { return clamp(in[0], -0.5, 0.5); }, away_from({4, 5}, 730, {-0.5, 0.5}));
  unary_case(c, "clamp", "[3, 4], min 0.2",
             [](V in) { return clamp(in[0], 0.2, std::nullopt); }, away_from({3, 4}, 731, {0.2}));
  unary_case(c, "clamp", "[3, 4], max -0.3",
             [](V in) { return clamp(in[0], std::nullopt, -0.3); }, away_from({3, 4}, 732, {-0.3}));

  // where: three-way broadcasting; the b8 condition passes through unchecked.
  struct W {
    Shape cond, a, b;
  };
  seed = 800;
  for (const W& w : {W{{2, 3}, {2, 3}, {2, 3}}, W{{3, 1}, {1, 4}, {}}, W{{4}, {2, 3, 4}, {3, 1}},
                     W{{2, 1, 4}, {1}, {3, 1}}}) {
    c.push_back({"where",
                 shape_str(w.cond) + " ? " + shape_str(w.a) + " : " + shape_str(w.b),
                 [](V in) { return where(in[0], in[1], in[2]); },
                 {mask(w.cond, seed), uniform(w.a, seed + 1), uniform(w.b, seed + 2)}});
    seed += 3;
  }
  // masked_fill: the mask broadcasts to x.
  for (const auto& [xs, ms] : std::vector<std::pair<Shape, Shape>>{{{2, 3}, {2, 3}}, {{2, 3, 4}, {3, 1}},
                                                                   {{3, 4}, {4}}, {{}, {}}}) {
    c.push_back({"masked_fill", shape_str(xs) + " mask " + shape_str(ms) + ", value -2",
                 [](V in) { return masked_fill(in[0], in[1], -2.0); },
                 {uniform(xs, seed), mask(ms, seed + 1)}});
    seed += 2;
  }
  return c;
}

}  // namespace

static const bool registered = register_family("elementwise", &elementwise_cases);

}  // namespace tg::catalogue
