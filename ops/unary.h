#pragma once
// Unary elementwise ops and activations, each with its gradient rule beside its forward.
#include <optional>
#include <string_view>

#include "autograd/tensor.h"

namespace tg {

Tensor neg(const Tensor& x);
/// x ** exponent (scalar exponent), as torch.pow(x, float).
Tensor pow(const Tensor& x, double exponent);
Tensor exp(const Tensor& x);
Tensor log(const Tensor& x);
Tensor sqrt(const Tensor& x);
/// 1 / sqrt(x).
Tensor rsqrt(const Tensor& x);
Tensor tanh(const Tensor& x);
Tensor sigmoid(const Tensor& x);
/// max(x, 0); the gradient at 0 is 0, as PyTorch.
Tensor relu(const Tensor& x);
/// GELU as torch.nn.functional.gelu: approximate "none" (exact, erf) or "tanh".
Tensor gelu(const Tensor& x, std::string_view approximate = "none");
/// x · sigmoid(x), as torch.nn.functional.silu.
Tensor silu(const Tensor& x);
/// Limits values to [min, max] (either bound optional); the gradient passes where
/// min <= x <= max, as torch.clamp.
Tensor clamp(const Tensor& x, std::optional<double> min, std::optional<double> max);

}  // namespace tg
