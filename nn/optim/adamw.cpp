#include "nn/optim/adamw.h"

#include <cmath>

#include "autograd/error.h"
#include "ops/kernels/parallel.h"

namespace tg::optim {
namespace {

// One parameter's update in a single pass: decay, both moments, the step.
template <class T>
void adamw_update(T* p, const T* g, T* m, T* v, int64_t n, double lr, double wd, double b1, double b2,
                  double eps, int64_t step) {
  const T decay = T(1 - lr * wd);
  const T bc1 = T(1 - std::pow(b1, double(step))), bc2_sqrt = T(std::sqrt(1 - std::pow(b2, double(step))));
  const T step_size = T(lr) / bc1, tb1 = T(b1), tb2 = T(b2), te = T(eps);
  kernels::parallel_for(0, n, kernels::kElementwiseGrain, [&](int64_t lo, int64_t hi) {
    for (int64_t i = lo; i < hi; ++i) {
      m[i] = tb1 * m[i] + (1 - tb1) * g[i];
      v[i] = tb2 * v[i] + (1 - tb2) * g[i] * g[i];
      p[i] = p[i] * decay - step_size * m[i] / (std::sqrt(v[i]) / bc2_sqrt + te);
    }
  });
}

}  // namespace

AdamW::AdamW(std::vector<ParamGroup> groups, const AdamWOptions& o)
    : Optimizer(std::move(groups), o.lr(), o.weight_decay(), "AdamW"), options(o) {
  TG_CHECK(o.beta1() >= 0 && o.beta1() < 1 && o.beta2() >= 0 && o.beta2() < 1,
           "AdamW: betas must be in [0, 1), got ({}, {})", o.beta1(), o.beta2());
  TG_CHECK(o.eps() >= 0, "AdamW: eps must be >= 0, got {}", o.eps());
  for (const ParamGroup& g : groups_)
    for (const Tensor& p : g.params) state_.push_back({zeros_like(p), zeros_like(p), 0});
}

AdamW::AdamW(const std::vector<Tensor>& params, const AdamWOptions& o) : AdamW({ParamGroup{params}}, o) {}

void AdamW::step() {
  size_t i = 0;
  for (ParamGroup& g : groups_) {
    for (Tensor& p : g.params) {
      State& s = state_[i++];
      Tensor grad = p.grad();
      if (!grad.defined()) continue;
      ++s.step;
      dispatch(p.dtype(), [&]<class T>() {
        adamw_update<T>(p.data<T>(), grad.data<T>(), s.exp_avg.data<T>(), s.exp_avg_sq.data<T>(), p.numel(), g.lr,
                        g.weight_decay, options.beta1(), options.beta2(), options.eps(), s.step);
      });
      p.bump_version();
    }
  }
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
