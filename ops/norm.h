#pragma once
// Layer normalisation over the last axes, as torch.nn.functional.layer_norm. Saves mean and rstd.
#include "autograd/tensor.h"

namespace tg {

/// Normalises x over its trailing `normalized_shape` axes, then y * weight + bias (each
/// undefined for none, else of shape normalized_shape).
Tensor layer_norm(const Tensor& x, const Shape& normalized_shape, const Tensor& weight = Tensor(),
                  const Tensor& bias = Tensor(), double eps = 1e-5);

}  // namespace tg
