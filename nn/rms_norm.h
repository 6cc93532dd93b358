#pragma once
// RMSNorm over the trailing normalized_shape axes, as torch.nn.RMSNorm (weight 1; eps unset =
// the dtype's machine epsilon). Llama's LlamaRMSNorm is RMSNorm with eps = rms_norm_eps.
#include <optional>

#include "nn/module.h"
#include "nn/options.h"

namespace tg::nn {

struct RMSNormOptions {
  explicit RMSNormOptions(Shape normalized_shape) : normalized_shape_(std::move(normalized_shape)) {}
  TG_ARG(Shape, normalized_shape, {});
  TG_ARG(std::optional<double>, eps, std::nullopt);
  TG_ARG(bool, elementwise_affine, true);
  TG_ARG(DType, dtype, DType::f32);
};

class RMSNorm : public Module {
 public:
  explicit RMSNorm(const RMSNormOptions& options);
  /// x [..., *normalized_shape] -> same shape.
  Tensor forward(const Tensor& x) override;

  RMSNormOptions options;
  Tensor weight;  ///< normalized_shape, undefined without elementwise_affine

 protected:
  std::string extra_repr() const override;
};

}  // namespace tg::nn
