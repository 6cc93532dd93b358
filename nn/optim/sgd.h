#pragma once
// SGD with momentum, dampening, Nesterov and (coupled) weight decay, as torch.optim.SGD.
#include "nn/optim/optimizer.h"
#include "nn/options.h"

namespace tg::optim {

struct SGDOptions {
  explicit SGDOptions(double lr = 1e-2) : lr_(lr) {}
  TG_ARG(double, lr, 1e-2);
  TG_ARG(double, momentum, 0.0);
  TG_ARG(double, dampening, 0.0);
  TG_ARG(double, weight_decay, 0.0);
  TG_ARG(bool, nesterov, false);
};

class SGD : public Optimizer {
 public:
  SGD(std::vector<ParamGroup> groups, const SGDOptions& options = SGDOptions());
  SGD(const std::vector<Tensor>& params, const SGDOptions& options = SGDOptions());
  void step() override;
  nn::StateDict state_dict() const override;
  void load_state_dict(const nn::StateDict& state) override;
  SGDOptions options;

 private:
  std::vector<Tensor> momentum_;  // per parameter; undefined until the first step with momentum
};

}  // namespace tg::optim
