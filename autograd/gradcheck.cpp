#include "autograd/gradcheck.h"

#include <cmath>
#include <cstdio>

#include "autograd/backward.h"
#include "autograd/tape.h"

namespace tg {
namespace {

// Row-major [n_in, n_out] Jacobian of one input.
struct Jacobian {
  int64_t n_in = 0, n_out = 0;
  std::vector<double> v;
  double& at(int64_t i, int64_t j) { return v[static_cast<size_t>(i * n_out + j)]; }
};

std::string where(const GradcheckWorst& w) {
  return fmt::format("input {} element {}, output element {}: analytic {:.6g} numeric {:.6g}", w.input,
                     w.element, w.output, w.analytic, w.numeric);
}

}  // namespace

std::string GradcheckResult::summary() const {
  return fmt::format("{}: max abs error {:.3g} ({}); max rel error {:.3g} ({}); {} entries",
                     passed ? "passed" : "FAILED", max_abs.error, where(max_abs), max_rel.error,
                     where(max_rel), checked);
}

GradcheckResult gradcheck(const GradcheckFn& f, const std::vector<Tensor>& inputs,
                          const GradcheckOptions& opt) {
  bool any_marked = false;
  for (const Tensor& t : inputs) any_marked |= t.defined() && t.requires_grad();
  std::vector<Tensor> xs;
  std::vector<bool> check;
  for (const Tensor& t : inputs) {
    bool c = t.defined() && is_floating(t.dtype()) && (t.requires_grad() || !any_marked);
    Tensor x = !t.defined() ? t : is_floating(t.dtype()) ? t.detach().to(DType::f64).detach().clone()
                                                           : t;
    if (c) x.requires_grad_(true);
    xs.push_back(x);
    check.push_back(c);
  }

  Tensor out = f(xs);
  TG_CHECK(out.defined() && out.dtype() == DType::f64,
           "gradcheck: the function must return an f64 tensor computed from its (f64) inputs");
  const int64_t n_out = out.numel();

  // Analytic Jacobian, one backward per output element.
  std::vector<Jacobian> analytic(xs.size());
  for (size_t i = 0; i < xs.size(); ++i)
    if (check[i]) analytic[i] = {xs[i].numel(), n_out, std::vector<double>(size_t(xs[i].numel() * n_out))};
  if (out.requires_grad()) {
    for (int64_t j = 0; j < n_out; ++j) {
      for (size_t i = 0; i < xs.size(); ++i)
        if (check[i]) xs[i].set_grad(Tensor());
      Tensor seed = zeros(out.shape(), DType::f64);
      seed.data<double>()[j] = 1.0;
      backward(out, seed, /*retain_graph=*/true);
      for (size_t i = 0; i < xs.size(); ++i) {
        if (!check[i] || !xs[i].grad().defined()) continue;
        const double* g = xs[i].grad().data<double>();
        for (int64_t k = 0; k < xs[i].numel(); ++k) analytic[i].at(k, j) = g[k];
      }
    }
  }
  out = Tensor();  // frees the graph

  // Numeric Jacobian, central differences, and the comparison.
  GradcheckResult r;
  NoGradGuard no_grad;
  for (size_t i = 0; i < xs.size(); ++i) {
    if (!check[i]) continue;
    double* x = xs[i].data<double>();
    for (int64_t k = 0; k < xs[i].numel(); ++k) {
      double orig = x[k];
      x[k] = orig + opt.eps;
      std::vector<double> plus = f(xs).to_vector();
      x[k] = orig - opt.eps;
      std::vector<double> minus = f(xs).to_vector();
      x[k] = orig;
      for (int64_t j = 0; j < n_out; ++j) {
        double num = (plus[size_t(j)] - minus[size_t(j)]) / (2 * opt.eps);
        double ana = analytic[i].at(k, j);
        double err = std::fabs(ana - num);
        double scale = std::max(std::fabs(ana), std::fabs(num));
        double rel = scale > opt.atol ? err / scale : 0.0;
        if (!(err <= opt.atol + opt.rtol * std::fabs(num))) r.passed = false;  // NaN fails
        if (err > r.max_abs.error || std::isnan(err)) r.max_abs = {err, i, k, j, ana, num};
        if (rel > r.max_rel.error || std::isnan(rel)) r.max_rel = {rel, i, k, j, ana, num};
        ++r.checked;
      }
    }
    xs[i].bump_version();
  }
  if (opt.verbose) std::printf("gradcheck %s\n", r.summary().c_str());
  return r;
}

}  // namespace tg
