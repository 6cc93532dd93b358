// Unary ops and activations: forward against std:: math in the test, f32 against f64, GELU
// reference values from std::erf and the tanh formula, gradients at kinks and bounds by hand,
// errors, thread-count independence. Gradchecks live in tools/gradcheck/cases_elementwise.cpp.
#include <cstring>
#include <functional>
#include <limits>

#include "test_util.h"

namespace tg {
namespace {

using testing::expect_close;
using testing::uniform;

// Elementwise reference by a plain loop over to_vector().
Tensor ref(const Tensor& x, const std::function<double(double)>& f) {
  std::vector<double> v = x.to_vector();
  for (double& e : v) e = f(e);
  return tensor(v, x.shape(), DType::f64);
}

double gelu_erf(double v) { return 0.5 * v * (1 + std::erf(v / std::sqrt(2.0))); }
double gelu_tanh(double v) {
  const double pi = 3.14159265358979323846;
  return 0.5 * v * (1 + std::tanh(std::sqrt(2 / pi) * (v + 0.044715 * v * v * v)));
}

struct UnaryCase {
  const char* name;
  std::function<Tensor(const Tensor&)> fn;
  std::function<double(double)> ref;
  double lo, hi;  // input range
};

const std::vector<UnaryCase>& cases() {
  static const std::vector<UnaryCase> c = {
      {"neg", [](const Tensor& x) { return neg(x); }, [](double v) { return -v; }, -2, 2},
      {"exp", [](const Tensor& x) { return exp(x); }, [](double v) { return std::exp(v); }, -3, 3},
      {"log", [](const Tensor& x) { return log(x); }, [](double v) { return std::log(v); }, 0.1, 5},
      {"sqrt", [](const Tensor& x) { return sqrt(x); }, [](double v) { return std::sqrt(v); }, 0.1, 5},
      {"rsqrt", [](const Tensor& x) { return rsqrt(x); }, [](double v) { return 1 / std::sqrt(v); }, 0.1, 5},
      {"tanh", [](const Tensor& x) { return tanh(x); }, [](double v) { return std::tanh(v); }, -3, 3},
      {"sigmoid", [](const Tensor& x) { return sigmoid(x); },
       [](double v) { return 1 / (1 + std::exp(-v)); }, -6, 6},
      {"silu", [](const Tensor& x) { return silu(x); }, [](double v) { return v / (1 + std::exp(-v)); }, -8, 8},
      {"relu", [](const Tensor& x) { return relu(x); }, [](double v) { return v > 0 ? v : 0.0; }, -2, 2},
      {"gelu", [](const Tensor& x) { return gelu(x); }, gelu_erf, -4, 4},
      {"gelu_tanh", [](const Tensor& x) { return gelu(x, "tanh"); }, gelu_tanh, -4, 4},
      {"pow2", [](const Tensor& x) { return pow(x, 2.0); }, [](double v) { return v * v; }, -2, 2},
      {"pow3", [](const Tensor& x) { return pow(x, 3.0); }, [](double v) { return v * v * v; }, -2, 2},
      {"pow0.5", [](const Tensor& x) { return pow(x, 0.5); }, [](double v) { return std::sqrt(v); }, 0.1, 4},
      {"pow-1", [](const Tensor& x) { return pow(x, -1.0); }, [](double v) { return 1 / v; }, 0.1, 4},
      {"pow-2", [](const Tensor& x) { return pow(x, -2.0); }, [](double v) { return 1 / (v * v); }, 0.1, 4},
      {"pow-0.5", [](const Tensor& x) { return pow(x, -0.5); }, [](double v) { return 1 / std::sqrt(v); }, 0.1, 4},
      {"pow1.7", [](const Tensor& x) { return pow(x, 1.7); }, [](double v) { return std::pow(v, 1.7); }, 0.1, 4},
      {"pow0", [](const Tensor& x) { return pow(x, 0.0); }, [](double) { return 1.0; }, -2, 2},
      {"clamp", [](const Tensor& x) { return clamp(x, -0.5, 0.7); },
       [](double v) { return std::min(std::max(v, -0.5), 0.7); }, -2, 2},
      {"clamp_min", [](const Tensor& x) { return clamp(x, 0.1, std::nullopt); },
       [](double v) { return std::max(v, 0.1); }, -2, 2},
      {"clamp_max", [](const Tensor& x) { return clamp(x, std::nullopt, -0.3); },
       [](double v) { return std::min(v, -0.3); }, -2, 2},
  };
  return c;
}

TEST(Unary, ForwardMatchesReference) {
  uint64_t seed = 100;
  for (const UnaryCase& c : cases()) {
    SCOPED_TRACE(c.name);
    for (const Shape& shape : {Shape{}, Shape{7}, Shape{3, 1, 4}, Shape{0, 2}, Shape{50001}}) {
      Tensor x = uniform(shape, seed++, c.lo, c.hi);
      Tensor y = c.fn(x);
      EXPECT_EQ(y.dtype(), DType::f64);
      expect_close(y, ref(x, c.ref), 1e-15, 1e-15);
    }
  }
}

TEST(Unary, F32MatchesF64) {
  for (const UnaryCase& c : cases()) {
    SCOPED_TRACE(c.name);
    Tensor x = uniform({4, 33}, 200, c.lo, c.hi);
    Tensor y32 = c.fn(x.to(DType::f32));
    EXPECT_EQ(y32.dtype(), DType::f32);
    expect_close(y32.to(DType::f64), c.fn(x), 2e-6, 1e-6);
  }
}

TEST(Unary, ExpF32AccuracyAndLimits) {
  // f32 exp has its own (vectorisable) implementation: within 3 ulp of the correctly rounded
  // value over the whole range, subnormal results included.
  Tensor x = arange(-104.0, 88.72, 0.00731, DType::f32);
  std::vector<double> xs = x.to_vector(), ys = exp(x).to_vector();
  double worst_ulp = 0;
  for (size_t i = 0; i < xs.size(); ++i) {
    double want = std::exp(xs[i]);
    double ulp = std::max(double(std::nextafter(float(want), INFINITY)) - double(float(want)), 1.4e-45);
    worst_ulp = std::max(worst_ulp, std::fabs(ys[i] - want) / ulp);
  }
  EXPECT_LE(worst_ulp, 3.0);
  const float inf = std::numeric_limits<float>::infinity();
  std::vector<double> edge =
      exp(tensor(std::vector<double>{inf, -inf, 89.0, -110.0, 0.0, NAN}, {6})).to_vector();
  EXPECT_EQ(edge[0], INFINITY);
  EXPECT_EQ(edge[1], 0.0);
  EXPECT_EQ(edge[2], INFINITY);
  EXPECT_EQ(edge[3], 0.0);
  EXPECT_EQ(edge[4], 1.0);
  EXPECT_TRUE(std::isnan(edge[5]));
  // sigmoid saturates without NaN.
  EXPECT_EQ(sigmoid(tensor(std::vector<double>{-200.0, 200.0}, {2})).to_vector(), (std::vector<double>{0, 1}));
}

TEST(Unary, GeluF32Accuracy) {
  // f32 GELU computes erf and exp without library calls (so it vectorises); it stays within
  // a few 1e-7 of the f64 formulas, relative to max(1, |x|).
  Tensor x = arange(-8.0, 8.0, 0.00377, DType::f32);
  std::vector<double> xs = x.to_vector();
  for (const char* approx : {"none", "tanh"}) {
    std::vector<double> ys = gelu(x, approx).to_vector();
    double worst = 0;
    for (size_t i = 0; i < xs.size(); ++i) {
      double want = std::string(approx) == "none" ? gelu_erf(xs[i]) : gelu_tanh(xs[i]);
      worst = std::max(worst, std::fabs(ys[i] - want) / std::max(1.0, std::fabs(xs[i])));
    }
    EXPECT_LE(worst, 2e-7) << approx;
  }
}

TEST(Unary, GeluF32GradientAccuracy) {
  // f32 GELU's derivative (its own erf and exp, the exact form's exponential shared by erf and
  // the normal density) against the f64 formulas, relative to max(1, |x|).
  const double pi = 3.14159265358979323846;
  auto d_erf = [&](double v) { return 0.5 * (1 + std::erf(v / std::sqrt(2.0))) + v * std::exp(-v * v / 2) / std::sqrt(2 * pi); };
  auto d_tanh = [&](double v) {
    double u = std::sqrt(2 / pi) * (v + 0.044715 * v * v * v), t = std::tanh(u);
    return 0.5 * (1 + t) + 0.5 * v * (1 - t * t) * std::sqrt(2 / pi) * (1 + 3 * 0.044715 * v * v);
  };
  Tensor x0 = arange(-8.0, 8.0, 0.00377, DType::f32);
  std::vector<double> xs = x0.to_vector();
  for (const char* approx : {"none", "tanh"}) {
    Tensor x = x0.detach().clone();
    x.requires_grad_();
    backward(gelu(x, approx), ones(x.shape()));
    std::vector<double> gs = x.grad().to_vector();
    double worst = 0;
    for (size_t i = 0; i < xs.size(); ++i) {
      double want = std::string(approx) == "none" ? d_erf(xs[i]) : d_tanh(xs[i]);
      worst = std::max(worst, std::fabs(gs[i] - want) / std::max(1.0, std::fabs(xs[i])));
    }
    EXPECT_LE(worst, 1e-6) << approx;
  }
}

TEST(Unary, GeluReferenceValues) {
  Tensor x = tensor({-3.0, -1.0, -0.5, 0.0, 0.5, 1.0, 3.0}, {7}, DType::f64);
  expect_close(gelu(x, "none"), ref(x, gelu_erf), 1e-15, 1e-15);
  expect_close(gelu(x, "tanh"), ref(x, gelu_tanh), 1e-15, 1e-15);
  // The default is the exact form, and the two forms differ slightly (by ~1e-4 near |x| = 1.5).
  EXPECT_EQ(testing::max_abs_diff(gelu(x), gelu(x, "none")), 0.0);
  EXPECT_GT(testing::max_abs_diff(gelu(x, "none"), gelu(x, "tanh")), 1e-5);
  // f32 as well.
  expect_close(gelu(x.to(DType::f32), "tanh").to(DType::f64), ref(x, gelu_tanh), 1e-6, 1e-7);
}

Tensor grad_of(const std::function<Tensor(const Tensor&)>& f, const std::vector<double>& values) {
  Tensor x = tensor(values, {int64_t(values.size())}, DType::f64);
  x.requires_grad_();
  backward(f(x), ones(x.shape(), DType::f64));
  return x.grad();
}

TEST(Unary, GradientsByHand) {
  auto g = [](std::function<Tensor(const Tensor&)> f, std::vector<double> v) {
    return grad_of(f, v).to_vector();
  };
  // relu: 0 at the kink, as PyTorch.
  EXPECT_EQ(g([](const Tensor& x) { return relu(x); }, {-1, 0, 2}), (std::vector<double>{0, 0, 1}));
  // clamp: the gradient passes at the bounds themselves (min <= x <= max).
  EXPECT_EQ(g([](const Tensor& x) { return clamp(x, -0.5, 0.5); }, {-1, -0.5, 0, 0.5, 1}),
            (std::vector<double>{0, 1, 1, 1, 0}));
  EXPECT_EQ(g([](const Tensor& x) { return clamp(x, std::nullopt, 0.0); }, {-1, 0, 1}),
            (std::vector<double>{1, 1, 0}));
  // pow with exponent 0 has gradient 0 everywhere, x = 0 included.
  EXPECT_EQ(g([](const Tensor& x) { return pow(x, 0.0); }, {0, 2}), (std::vector<double>{0, 0}));
  std::vector<double> p = g([](const Tensor& x) { return pow(x, 2.5); }, {4});
  EXPECT_NEAR(p[0], 2.5 * std::pow(4.0, 1.5), 1e-12);
  // gelu'(0) = 0.5 in both forms; exact gelu'(x) = Phi(x) + x phi(x).
  EXPECT_NEAR(g([](const Tensor& x) { return gelu(x, "tanh"); }, {0})[0], 0.5, 1e-15);
  double x1 = 1.3, phi = std::exp(-x1 * x1 / 2) / std::sqrt(2 * 3.14159265358979323846);
  EXPECT_NEAR(g([](const Tensor& x) { return gelu(x); }, {x1})[0],
              0.5 * (1 + std::erf(x1 / std::sqrt(2.0))) + x1 * phi, 1e-14);
  // sigmoid' = s (1 - s), tanh' = 1 - t^2, rsqrt' = -x^(-3/2) / 2.
  double s = 1 / (1 + std::exp(-0.7));
  EXPECT_NEAR(g([](const Tensor& x) { return sigmoid(x); }, {0.7})[0], s * (1 - s), 1e-15);
  // silu' = s (1 + x (1 - s)).
  EXPECT_NEAR(g([](const Tensor& x) { return silu(x); }, {0.7})[0], s * (1 + 0.7 * (1 - s)), 1e-15);
  EXPECT_NEAR(g([](const Tensor& x) { return tanh(x); }, {0.7})[0], 1 - std::tanh(0.7) * std::tanh(0.7), 1e-15);
  EXPECT_NEAR(g([](const Tensor& x) { return rsqrt(x); }, {2.0})[0], -0.5 * std::pow(2.0, -1.5), 1e-15);
}

TEST(Unary, ClampEdgeCases) {
  Tensor x = tensor({-2.0, 0.0, 2.0}, {3}, DType::f64);
  // min > max: everything becomes max, as torch.clamp.
  EXPECT_EQ(clamp(x, 1.0, -1.0).to_vector(), (std::vector<double>{-1, -1, -1}));
  Tensor nan = tensor({std::numeric_limits<double>::quiet_NaN()}, {1}, DType::f64);
  EXPECT_TRUE(std::isnan(clamp(nan, 0.0, 1.0).item()));
  EXPECT_TRUE(std::isnan(relu(nan).item()));
  EXPECT_TG_ERROR(clamp(x, std::nullopt, std::nullopt),
                  "clamp: at least one of min and max must be given (input of shape [3])");
}

TEST(Unary, Errors) {
  Tensor i64 = zeros({2, 3}, DType::i64);
  EXPECT_TG_ERROR(exp(i64), "exp: expected a floating tensor (f32 or f64), got i64 of shape [2, 3]");
  EXPECT_TG_ERROR(relu(zeros({2}, DType::b8)), "relu: expected a floating tensor");
  EXPECT_TG_ERROR(pow(i64, 2.0), "pow: expected a floating tensor");
  EXPECT_TG_ERROR(clamp(i64, 0.0, 1.0), "clamp: expected a floating tensor");
  EXPECT_TG_ERROR(gelu(zeros({2}), "erf"), "gelu: approximate must be \"none\" or \"tanh\", got \"erf\"");
  EXPECT_TG_ERROR(gelu(i64), "gelu: expected a floating tensor");
  EXPECT_TG_ERROR(neg(Tensor()), "neg: the input tensor is undefined");
}

TEST(Unary, ResultsDoNotDependOnThreadCount) {
  int saved = get_num_threads();
  Tensor x = uniform({1 << 20}, 300, -4, 4, DType::f32);
  for (const char* approx : {"none", "tanh"}) {
    Tensor xs[2], ys[2], dxs[2];
    for (int t = 0; t < 2; ++t) {
      set_num_threads(t + 1);
      xs[t] = x.detach().clone();
      xs[t].requires_grad_();
      ys[t] = gelu(xs[t], approx);
      backward(ys[t], ones(x.shape()));
      dxs[t] = xs[t].grad();
    }
    EXPECT_EQ(std::memcmp(ys[0].raw_data(), ys[1].raw_data(), ys[0].nbytes()), 0) << approx;
    EXPECT_EQ(std::memcmp(dxs[0].raw_data(), dxs[1].raw_data(), dxs[0].nbytes()), 0) << approx;
  }
  set_num_threads(saved);
}

}  // namespace
}  // namespace tg
