#pragma once
// RMS normalisation over the last axes, as torch.nn.functional.rms_norm (Llama's RMSNorm).
// Saves x, weight and the per-row rstd.
#include <optional>

#include "autograd/tensor.h"

namespace tg {

/// Divides x by its root mean square over its trailing `normalized_shape` axes, then multiplies
/// by weight (undefined for none, else of shape normalized_shape):
///   y = x / sqrt(mean(x²) + eps) · weight.
/// eps defaults to the dtype's machine epsilon, as PyTorch's.
Tensor rms_norm(const Tensor& x, const Shape& normalized_shape, const Tensor& weight = Tensor(),
                std::optional<double> eps = std::nullopt);

}  // namespace tg
