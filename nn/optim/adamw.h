#pragma once
// AdamW (Loshchilov & Hutter 2019) with PyTorch's semantics: decoupled weight decay
// p -= lr·wd·p, bias-corrected moments, eps added outside the square root.
#include "nn/optim/optimizer.h"
#include "nn/options.h"

namespace tg::optim {

struct AdamWOptions {
  explicit AdamWOptions(double lr = 1e-3) : lr_(lr) {}
  TG_ARG(double, lr, 1e-3);
  TG_ARG(double, beta1, 0.9);
  TG_ARG(double, beta2, 0.999);
  TG_ARG(double, eps, 1e-8);
  TG_ARG(double, weight_decay, 1e-2);
};

class AdamW : public Optimizer {
 public:
  AdamW(std::vector<ParamGroup> groups, const AdamWOptions& options = AdamWOptions());
  AdamW(const std::vector<Tensor>& params, const AdamWOptions& options = AdamWOptions());
  void step() override;
  nn::StateDict state_dict() const override;
  void load_state_dict(const nn::StateDict& state) override;
  AdamWOptions options;

 private:
  struct State {
    Tensor exp_avg, exp_avg_sq;  // same shape as the parameter
    int64_t step = 0;
  };
  std::vector<State> state_;  // one per parameter, across groups in order
};

}  // namespace tg::optim
