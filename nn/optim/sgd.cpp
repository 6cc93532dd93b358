#include "nn/optim/sgd.h"

#include "autograd/error.h"
#include "ops/kernels/parallel.h"

namespace tg::optim {
namespace {

// d = g + wd·p; with momentum: b = μ·b + (1 - dampening)·d (b = d on the first step), then
// d = nesterov ? d + μ·b : b; p -= lr·d.
template <class T>
void sgd_update(T* p, const T* g, T* buf, bool first, int64_t n, double lr, double wd, double mu, double damp,
                bool nesterov) {
  const T tlr = T(lr), twd = T(wd), tmu = T(mu), tdamp = T(1 - damp);
  kernels::parallel_for(0, n, kernels::kElementwiseGrain, [&](int64_t lo, int64_t hi) {
    for (int64_t i = lo; i < hi; ++i) {
      T d = g[i] + twd * p[i];
      if (buf) {
        buf[i] = first ? d : tmu * buf[i] + tdamp * d;
        d = nesterov ? d + tmu * buf[i] : buf[i];
      }
      p[i] -= tlr * d;
    }
  });
}

}  // namespace

SGD::SGD(std::vector<ParamGroup> groups, const SGDOptions& o)
    : Optimizer(std::move(groups), o.lr(), o.weight_decay(), "SGD"), options(o) {
  TG_CHECK(o.momentum() >= 0, "SGD: momentum must be >= 0, got {}", o.momentum());
  TG_CHECK(!o.nesterov() || (o.momentum() > 0 && o.dampening() == 0),
           "SGD: nesterov needs momentum > 0 and dampening 0");
  for (const ParamGroup& g : groups_) momentum_.resize(momentum_.size() + g.params.size());
}

SGD::SGD(const std::vector<Tensor>& params, const SGDOptions& o) : SGD({ParamGroup{params}}, o) {}

void SGD::step() {
  size_t i = 0;
  for (ParamGroup& g : groups_) {
    for (Tensor& p : g.params) {
      Tensor& buf = momentum_[i++];
      Tensor grad = p.grad();
      if (!grad.defined()) continue;
      bool first = false;
      if (options.momentum() > 0 && !buf.defined()) {
        buf = empty(p.shape(), p.dtype());
        first = true;
      }
      dispatch(p.dtype(), [&]<class T>() {
        sgd_update<T>(p.data<T>(), grad.data<T>(), buf.defined() ? buf.data<T>() : nullptr, first, p.numel(), g.lr,
                      g.weight_decay, options.momentum(), options.dampening(), options.nesterov());
      });
      p.bump_version();
    }
  }
}

nn::StateDict SGD::state_dict() const {
  nn::StateDict out;
  for (size_t i = 0; i < momentum_.size(); ++i)
    if (momentum_[i].defined()) out[fmt::format("state.{}.momentum_buffer", i)] = momentum_[i];
  return out;
}

void SGD::load_state_dict(const nn::StateDict& state) {
  size_t i = 0;
  for (const ParamGroup& g : groups_)
    for (const Tensor& p : g.params) {
      auto it = state.find(fmt::format("state.{}.momentum_buffer", i));
      if (it != state.end()) {
        TG_CHECK(it->second.shape() == p.shape(), "SGD: load_state_dict: momentum buffer {} has shape {}, the parameter {}",
                 i, shape_str(it->second.shape()), shape_str(p.shape()));
        momentum_[i] = empty(p.shape(), p.dtype());
        momentum_[i].copy_(it->second);
      }
      ++i;
    }
}

}  // namespace tg::optim
