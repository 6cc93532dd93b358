#pragma once
// Optimizer: parameter groups (each with its own lr and weight decay, as torch.optim), step(),
// zero_grad(), and a state dict for resuming training.
#include <string>
#include <vector>

#include "autograd/tensor.h"
#include "nn/module.h"

namespace tg::optim {

/// Parameters that share hyper-parameters. lr and weight_decay < 0 mean "the optimizer's".
struct ParamGroup {
  std::vector<Tensor> params;
  double lr = -1;
  double weight_decay = -1;
};

class Optimizer {
 public:
  virtual ~Optimizer() = default;
  /// One update from the parameters' current gradients (parameters without one are skipped).
  virtual void step() = 0;
  /// Clears every parameter's gradient (set_to_none, as PyTorch's default) or zeroes it.
  void zero_grad(bool set_to_none = true);
  std::vector<ParamGroup>& param_groups() { return groups_; }
  const std::vector<ParamGroup>& param_groups() const { return groups_; }
  /// Sets every group's lr (what an LR schedule does each step).
  void set_lr(double lr);

  /// Per-parameter state (moment buffers, step counts) by name "state.<index>.<buffer>",
  /// indices counting parameters across groups in order.
  virtual nn::StateDict state_dict() const = 0;
  /// Restores what state_dict() gave; shapes checked, missing buffers are an error.
  virtual void load_state_dict(const nn::StateDict& state) = 0;

 protected:
  Optimizer(std::vector<ParamGroup> groups, double lr, double weight_decay, const char* name);
  std::vector<ParamGroup> groups_;
  const char* name_;
};

/// nanoGPT's grouping: weight decay on parameters of rank >= 2 (matmul weights and embeddings),
/// none on biases and norm weights.
std::vector<ParamGroup> decay_groups(const nn::Module& model, double weight_decay);

}  // namespace tg::optim
