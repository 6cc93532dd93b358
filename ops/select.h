#pragma once
// Selection by a boolean (b8) mask, with broadcasting.
#include "autograd/tensor.h"

namespace tg {

/// condition ? a : b elementwise; condition is b8; the three shapes broadcast (torch.where).
Tensor where(const Tensor& condition, const Tensor& a, const Tensor& b);
/// x with `value` where mask is true; mask (b8) broadcasts to x's shape (torch.masked_fill).
Tensor masked_fill(const Tensor& x, const Tensor& mask, double value);

}  // namespace tg
