#pragma once
// Gradient clipping by global norm, as torch.nn.utils.clip_grad_norm_.
#include <vector>

#include "autograd/tensor.h"

namespace tg::optim {

/// Scales every gradient by min(1, max_norm / (total_norm + 1e-6)), total_norm being the L2
/// norm of all gradients together; returns total_norm (before clipping). Parameters without a
/// gradient are skipped.
double clip_grad_norm_(const std::vector<Tensor>& params, double max_norm);

}  // namespace tg::optim
