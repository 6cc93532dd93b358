#pragma once
// Dropout with inverted scaling: in training, each element is zeroed with probability p and the
// rest are scaled by 1/(1-p); in evaluation it returns x.
#include "autograd/random.h"
#include "autograd/tensor.h"

namespace tg {

/// The mask for a seed is the same whatever the thread count (counter-based generator).
Tensor dropout(const Tensor& x, double p, bool training, Generator& gen);
/// Same, drawing from default_generator().
Tensor dropout(const Tensor& x, double p, bool training = true);

}  // namespace tg
