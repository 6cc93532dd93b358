// Gradcheck cases of the reductions: all axes, one axis, non-adjacent and negative axes,
// keepdim, size-1 axes. max samples distinct values (spaced far beyond the finite-difference
// step) so no tie makes it non-differentiable; ties are tested directly in test_reduce.cpp.
#include <algorithm>

#include "ops/reduce.h"
#include "tools/gradcheck/catalogue.h"

namespace tg {
namespace {

using catalogue::uniform;

// A permutation of n evenly spaced values in [-1, 1) (n not a multiple of 37).
Tensor distinct(const Shape& shape, int64_t seed) {
  Tensor t = empty(shape, DType::f64);
  int64_t n = t.numel();
  for (int64_t i = 0; i < n; ++i) t.data<double>()[i] = double((i * 37 + seed) % n) * 2.0 / double(n) - 1;
  return t;
}

std::string describe(const Shape& shape, const Axes& axes, bool keepdim, const std::string& extra = "") {
  return shape_str(shape) + " axes " + shape_str(axes) + (keepdim ? " keepdim" : "") + extra;
}

std::vector<catalogue::OpCase> reduce_cases() {
  std::vector<catalogue::OpCase> cases;
  struct Spec {
    Shape shape;
    Axes axes;
    bool keepdim;
  };
  const std::vector<Spec> specs = {{{3, 4}, {}, false},       {{2, 3, 4}, {1}, true},
                                   {{2, 3, 4}, {0, 2}, false}, {{2, 3, 4}, {-1}, false},
                                   {{3, 1, 4}, {1}, false},    {{4, 1, 3}, {0, 1}, true}};
  uint64_t seed = 1;
  for (const Spec& s : specs) {
    auto axes = s.axes;
    bool keepdim = s.keepdim;
    std::string d = describe(s.shape, axes, keepdim);
    cases.push_back({"sum", d, [=](const std::vector<Tensor>& in) { return sum(in[0], axes, keepdim); },
                     {uniform(s.shape, seed++)}});
    cases.push_back({"mean", d, [=](const std::vector<Tensor>& in) { return mean(in[0], axes, keepdim); },
                     {uniform(s.shape, seed++)}});
    cases.push_back({"max", d, [=](const std::vector<Tensor>& in) { return max(in[0], axes, keepdim); },
                     {distinct(s.shape, int64_t(seed++))}});
    cases.push_back({"logsumexp", d,
                     [=](const std::vector<Tensor>& in) { return logsumexp(in[0], axes, keepdim); },
                     {uniform(s.shape, seed++)}});
    int64_t n = 1;  // elements per output; var needs n > correction
    for (size_t i = 0; i < s.shape.size(); ++i)
      if (axes.empty() || std::find(axes.begin(), axes.end(), int64_t(i)) != axes.end() ||
          std::find(axes.begin(), axes.end(), int64_t(i) - int64_t(s.shape.size())) != axes.end())
        n *= s.shape[i];
    for (int64_t c : {0, 1}) {
      if (n <= c) continue;
      cases.push_back({"var", describe(s.shape, axes, keepdim, " correction " + std::to_string(c)),
                       [=](const std::vector<Tensor>& in) { return var(in[0], axes, c, keepdim); },
                       {uniform(s.shape, seed++)}});
    }
  }
  cases.push_back({"var", describe({2, 5}, {1}, false, " correction 2"),
                   [](const std::vector<Tensor>& in) { return var(in[0], {1}, 2); }, {uniform({2, 5}, seed++)}});
  return cases;
}

}  // namespace
}  // namespace tg

static const bool registered = tg::catalogue::register_family("reduce", &tg::reduce_cases);
