#pragma once
// Linear: y = x Wᵀ + b, as torch.nn.Linear, initialised as PyTorch does
// (U(-1/sqrt(in), 1/sqrt(in)) for weight and bias).
#include "nn/module.h"
#include "nn/options.h"

namespace tg::nn {

struct LinearOptions {
  LinearOptions(int64_t in_features, int64_t out_features)
      : in_features_(in_features), out_features_(out_features) {}
  TG_ARG(int64_t, in_features, 0);
  TG_ARG(int64_t, out_features, 0);
  TG_ARG(bool, bias, true);
  TG_ARG(DType, dtype, DType::f32);
};

class Linear : public Module {
 public:
  explicit Linear(const LinearOptions& options);
  /// x [..., in_features] -> [..., out_features].
  Tensor forward(const Tensor& x) override;
  /// Re-draws the parameters as the constructor does.
  void reset_parameters();

  LinearOptions options;
  Tensor weight;  ///< [out_features, in_features]
  Tensor bias;    ///< [out_features], undefined when options.bias() is false

 protected:
  std::string extra_repr() const override;
};

}  // namespace tg::nn
