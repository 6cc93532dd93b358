#pragma once
// Losses. cross_entropy is fused with log-softmax.
#include <string_view>

#include "autograd/tensor.h"

namespace tg {

/// Cross-entropy of logits [N, C] (or [C]) against class ids target [N] (or []) of dtype i64,
/// as torch.nn.functional.cross_entropy: targets equal to ignore_index add nothing; reduction
/// "mean" (over the targets not ignored), "sum" or "none" ([N]).
Tensor cross_entropy(const Tensor& logits, const Tensor& target, int64_t ignore_index = -100,
                     std::string_view reduction = "mean");

}  // namespace tg
