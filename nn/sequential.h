#pragma once
// Sequential: one-input modules applied in order; children are named "0", "1", ...
#include <initializer_list>
#include <memory>

#include "nn/module.h"

namespace tg::nn {

class Sequential : public Module {
 public:
  Sequential() : Module("Sequential") {}
  Sequential(std::initializer_list<std::shared_ptr<Module>> modules);
  /// Appends a module (named by its position).
  void push_back(std::shared_ptr<Module> module);
  size_t size() const { return layers_.size(); }
  std::shared_ptr<Module> operator[](size_t i) const { return layers_.at(i); }
  Tensor forward(const Tensor& x) override;

 private:
  std::vector<std::shared_ptr<Module>> layers_;
};

}  // namespace tg::nn
