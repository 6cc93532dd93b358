#pragma once
// Activation checkpointing, as torch.utils.checkpoint.checkpoint: run `fn` without keeping its
// intermediate activations, and run it again during backward to get them back. Memory for a
// stack of blocks drops from every block's activations to one block's at a time (plus each
// block's input); the price is a second forward of every checkpointed block.
#include <functional>
#include <vector>

#include "autograd/random.h"
#include "autograd/tensor.h"

namespace tg {

/// fn(inputs) -> one tensor. It may use tensors it captures (a module's parameters): their
/// gradients are accumulated when the recomputation runs backward, as for any leaf.
using CheckpointFn = std::function<Tensor(const std::vector<Tensor>& inputs)>;

/// Returns fn(inputs), recording one node "checkpoint" instead of fn's graph. In backward the
/// node re-runs fn on its saved inputs with `gen` (default_generator() when null) put back to
/// the state it had at the forward, so dropout draws the same masks (PyTorch's
/// preserve_rng_state; `gen` must outlive the backward), then back-propagates through that
/// recomputed graph. fn must compute the
/// same function both times (no side effects that change what it returns). When grad mode is
/// off, or nothing in fn needs a gradient, this is fn(inputs).
Tensor checkpoint(const CheckpointFn& fn, const std::vector<Tensor>& inputs, Generator* gen = nullptr);

}  // namespace tg
