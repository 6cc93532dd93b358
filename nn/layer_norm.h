#pragma once
// LayerNorm over the trailing normalized_shape axes, as torch.nn.LayerNorm (weight 1, bias 0).
#include "nn/module.h"
#include "nn/options.h"

namespace tg::nn {

struct LayerNormOptions {
  explicit LayerNormOptions(Shape normalized_shape) : normalized_shape_(std::move(normalized_shape)) {}
  TG_ARG(Shape, normalized_shape, {});
  TG_ARG(double, eps, 1e-5);
  TG_ARG(bool, elementwise_affine, true);
  TG_ARG(bool, bias, true);
  TG_ARG(DType, dtype, DType::f32);
};

class LayerNorm : public Module {
 public:
  explicit LayerNorm(const LayerNormOptions& options);
  /// x [..., *normalized_shape] -> same shape.
  Tensor forward(const Tensor& x) override;

  LayerNormOptions options;
  Tensor weight;  ///< normalized_shape, undefined without elementwise_affine
  Tensor bias;    ///< normalized_shape, undefined without elementwise_affine or bias

 protected:
  std::string extra_repr() const override;
};

}  // namespace tg::nn
