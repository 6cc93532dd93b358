#include "nn/optim/optimizer.h"

#include "autograd/error.h"

namespace tg::optim {

Optimizer::Optimizer(std::vector<ParamGroup> groups, double lr, double weight_decay, const char* name)
    : groups_(std::move(groups)), name_(name) {
  TG_CHECK(lr >= 0, "{}: lr must be >= 0, got {}", name, lr);
  TG_CHECK(weight_decay >= 0, "{}: weight_decay must be >= 0, got {}", name, weight_decay);
  size_t n = 0;
  for (ParamGroup& g : groups_) {
    if (g.lr < 0) g.lr = lr;
    if (g.weight_decay < 0) g.weight_decay = weight_decay;
    for (const Tensor& p : g.params) {
      TG_CHECK(p.defined() && p.is_leaf() && p.requires_grad(),
               "{}: parameter {} of its group is not a leaf that requires grad", name, n);
      ++n;
    }
  }
  TG_CHECK(n > 0, "{}: got no parameters", name);
}

void Optimizer::zero_grad(bool set_to_none) {
  for (ParamGroup& g : groups_)
    for (Tensor& p : g.params) {
      if (set_to_none)
        p.set_grad(Tensor());
      else
        p.zero_grad();
    }
}

void Optimizer::set_lr(double lr) {
  for (ParamGroup& g : groups_) g.lr = lr;
}

std::vector<ParamGroup> decay_groups(const nn::Module& model, double weight_decay) {
  ParamGroup decay{{}, -1, weight_decay}, no_decay{{}, -1, 0.0};
  for (auto& [name, p] : model.named_parameters())
    if (p.requires_grad()) (p.dim() >= 2 ? decay : no_decay).params.push_back(p);
  std::vector<ParamGroup> groups;
  if (!decay.params.empty()) groups.push_back(decay);
  if (!no_decay.params.empty()) groups.push_back(no_decay);
  return groups;
}

}  // namespace tg::optim
