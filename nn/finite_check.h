#pragma once
// Finds weights that hold NaN or Inf: a checkpoint written by a run that diverged (or damaged on
// disk) loads without error, and would give a loss of nan or print noise; this names the tensor.
#include <optional>
#include <string>

#include "nn/module.h"

namespace tg::nn {

/// What is wrong with the first parameter (in named_parameters order) holding a value that is not
/// finite: "h.0.attn.c_attn.weight holds NaN (element 17 of [16, 48])"; nothing when all are finite.
std::optional<std::string> first_non_finite_parameter(const Module& module);
/// The same over the floating tensors of a state dict (optimizer moments, say), in name order.
std::optional<std::string> first_non_finite(const StateDict& tensors);

}  // namespace tg::nn
