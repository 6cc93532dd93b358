#pragma once
// Softmax and log-softmax along one axis, fused and numerically stable (max subtracted).
#include "autograd/tensor.h"

namespace tg {

Tensor softmax(const Tensor& x, int64_t axis = -1);
Tensor log_softmax(const Tensor& x, int64_t axis = -1);

}  // namespace tg
