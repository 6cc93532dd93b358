#include "nn/optim/adamw.h"

#include <algorithm>
#include <cmath>
#include <tuple>
#include <unordered_set>
#include <vector>

#include "autograd/error.h"
#include "ops/kernels/parallel.h"

namespace tg::optim {
namespace {

// One parameter's share of a step: its buffers and the constants of its own step count and
// group, computed once per step (not per element).
template <class T>
struct Span {
  T* p;
  const T* g;
  T* m;
  T* v;
  int64_t n;
  T decay, step_size, inv_bc2_sqrt;  // 1 - lr·wd, lr / (1 - b1^t), 1 / sqrt(1 - b2^t)
};

// Below this many elements in all (about 7 MB of traffic) the loop runs on the calling thread:
// a split's task overhead (~10 us) would be a large part of the step. The baby GPT's 0.81M
// parameters run 0.30 ms on 1 thread, 0.34 ms on 2 on a machine whose second core was busy
// with other work; on a quiet one the second core's share of the L3 bandwidth should win.
constexpr int64_t kSerialElements = 1 << 18;
// Elements per task: 7 streams of 4-8 bytes each, a few hundred KB per task.
constexpr int64_t kStepGrain = 1 << 15;

// The update of elements [lo, hi) of one span, in PyTorch's order (torch._fused_adamw_):
// decay, both moments, then p -= step_size · m / (sqrt(v) / sqrt(bc2) + eps).
template <class T>
void update(const Span<T>& s, int64_t lo, int64_t hi, T b1, T b2, T eps) {
  T* __restrict p = s.p;
  const T* __restrict g = s.g;
  T* __restrict m = s.m;
  T* __restrict v = s.v;
  const T decay = s.decay, step_size = s.step_size, inv_bc2_sqrt = s.inv_bc2_sqrt;
  const T a1 = T(1) - b1, a2 = T(1) - b2;
  for (int64_t i = lo; i < hi; ++i) {
    T gi = g[i];
    T mi = b1 * m[i] + a1 * gi;
    T vi = b2 * v[i] + a2 * gi * gi;
    m[i] = mi;
    v[i] = vi;
    p[i] = p[i] * decay - step_size * mi / (std::sqrt(vi) * inv_bc2_sqrt + eps);
  }
}

// Every span in one pass: one parallel loop over their concatenation, so small parameters
// share tasks instead of each paying for its own loop. Each element is computed the same way
// whatever the split.
template <class T>
void update_all(const std::vector<Span<T>>& spans, double b1, double b2, double eps) {
  if (spans.empty()) return;
  std::vector<int64_t> start(spans.size() + 1, 0);  // start[k] = first flat index of span k
  for (size_t k = 0; k < spans.size(); ++k) start[k + 1] = start[k] + spans[k].n;
  const int64_t total = start.back();
  auto run = [&](int64_t lo, int64_t hi) {
    size_t k = size_t(std::upper_bound(start.begin(), start.end(), lo) - start.begin()) - 1;
    for (; lo < hi; ++k) {
      int64_t end = std::min(hi, start[k + 1]);
      update(spans[k], lo - start[k], end - start[k], T(b1), T(b2), T(eps));
      lo = end;
    }
  };
  if (total <= kSerialElements)
    run(0, total);
  else
    kernels::parallel_for(0, total, kStepGrain, run);
}

// The constants follow PyTorch's: bias corrections in double, cast once.
template <class T>
Span<T> span_of(Tensor& p, const Tensor& grad, Tensor& exp_avg, Tensor& exp_avg_sq, int64_t step,
                double lr, double wd, double b1, double b2) {
  const double bc1 = 1 - std::pow(b1, double(step)), bc2 = 1 - std::pow(b2, double(step));
  return {p.data<T>(), grad.data<T>(), exp_avg.data<T>(), exp_avg_sq.data<T>(), p.numel(),
          T(1 - lr * wd), T(lr / bc1), T(1 / std::sqrt(bc2))};
}

}  // namespace

AdamW::AdamW(std::vector<ParamGroup> groups, const AdamWOptions& o)
    : Optimizer(std::move(groups), o.lr(), o.weight_decay(), "AdamW"), options(o) {
  TG_CHECK(o.beta1() >= 0 && o.beta1() < 1 && o.beta2() >= 0 && o.beta2() < 1,
           "AdamW: betas must be in [0, 1), got ({}, {})", o.beta1(), o.beta2());
  TG_CHECK(o.eps() >= 0, "AdamW: eps must be >= 0, got {}", o.eps());
  // step() updates every parameter in one parallel pass, so a tensor listed twice would be
  // written by two tasks at once; PyTorch rejects it too.
  std::unordered_set<const void*> seen;
  for (const ParamGroup& g : groups_)
    for (const Tensor& p : g.params) {
      TG_CHECK(seen.insert(p.impl_ptr().get()).second,
               "AdamW: a parameter (of shape {}) appears more than once in the parameter groups",
               shape_str(p.shape()));
      state_.push_back({zeros_like(p), zeros_like(p), 0});
    }
}

AdamW::AdamW(const std::vector<Tensor>& params, const AdamWOptions& o) : AdamW({ParamGroup{params}}, o) {}

void AdamW::step() {
  const double b1 = options.beta1(), b2 = options.beta2();
  std::tuple<std::vector<Span<float>>, std::vector<Span<double>>> spans;
  std::vector<Tensor*> updated;
  size_t i = 0;
  for (ParamGroup& g : groups_) {
    for (Tensor& p : g.params) {
      State& s = state_[i++];
      Tensor grad = p.grad();
      if (!grad.defined()) continue;
      ++s.step;
      dispatch(p.dtype(), [&]<class T>() {
        std::get<std::vector<Span<T>>>(spans).push_back(
            span_of<T>(p, grad, s.exp_avg, s.exp_avg_sq, s.step, g.lr, g.weight_decay, b1, b2));
      });
      updated.push_back(&p);
    }
  }
  update_all(std::get<0>(spans), b1, b2, options.eps());
  update_all(std::get<1>(spans), b1, b2, options.eps());
  for (Tensor* p : updated) p->bump_version();
}

nn::StateDict AdamW::state_dict() const {
  nn::StateDict out;
  for (size_t i = 0; i < state_.size(); ++i) {
    out[fmt::format("state.{}.exp_avg", i)] = state_[i].exp_avg;
    out[fmt::format("state.{}.exp_avg_sq", i)] = state_[i].exp_avg_sq;
    out[fmt::format("state.{}.step", i)] = full({}, double(state_[i].step), DType::f64);
  }
  return out;
}

void AdamW::load_state_dict(const nn::StateDict& state) {
  for (size_t i = 0; i < state_.size(); ++i) {
    for (const char* key : {"exp_avg", "exp_avg_sq", "step"}) {
      std::string name = fmt::format("state.{}.{}", i, key);
      auto it = state.find(name);
      TG_CHECK(it != state.end(), "AdamW: load_state_dict: missing '{}'", name);
      if (std::string(key) == "step") {
        state_[i].step = static_cast<int64_t>(it->second.item());
        continue;
      }
      Tensor& dst = std::string(key) == "exp_avg" ? state_[i].exp_avg : state_[i].exp_avg_sq;
      TG_CHECK(it->second.shape() == dst.shape(), "AdamW: load_state_dict: '{}' has shape {}, the parameter {}",
               name, shape_str(it->second.shape()), shape_str(dst.shape()));
      dst.copy_(it->second);
    }
  }
}

}  // namespace tg::optim
