#pragma once
// Hooks into backward(), as PyTorch's: a leaf's post-accumulate-grad hook runs once its gradient
// is final for the current backward (what DistributedDataParallel uses to start all-reducing a
// bucket while backward is still running), and a queued callback runs when backward ends.
#include <cstdint>
#include <functional>
#include <memory>
#include <vector>

#include "autograd/node.h"
#include "autograd/tensor.h"

namespace tg {

/// Removes the hook it was returned for (as torch.utils.hooks.RemovableHandle). Safe to call
/// twice or after the tensor is gone.
class RemovableHandle {
 public:
  RemovableHandle() = default;
  RemovableHandle(std::weak_ptr<detail::TensorImpl> leaf, uint64_t id) : leaf_(std::move(leaf)), id_(id) {}
  void remove();

 private:
  std::weak_ptr<detail::TensorImpl> leaf_;
  uint64_t id_ = 0;
};

/// Registers `hook(leaf)` on a leaf that requires grad, as
/// torch.Tensor.register_post_accumulate_grad_hook: during backward(), once every node that
/// sends a gradient to `leaf` has run (on the tape, the earliest-recorded node that uses it),
/// the hook runs with leaf.grad() final for this backward. It runs only in a backward that
/// reached the leaf. Hooks run in registration order on the thread running backward. tg::Error
/// for an undefined tensor, a non-leaf or a leaf that does not require grad.
RemovableHandle register_post_accumulate_grad_hook(const Tensor& leaf, std::function<void(const Tensor& leaf)> hook);

/// Runs `callback` when the backward() now running ends, after every hook, as PyTorch's
/// Variable._execution_engine.queue_callback. Only valid while a backward() runs (from a hook
/// or a gradient rule); tg::Error otherwise. Callbacks queued by callbacks run too, in order.
void queue_callback(std::function<void()> callback);

namespace detail {

/// One backward()'s view of the hooks: which leaves with hooks each node feeds, and when each
/// leaf's gradient is final. Construct before replaying `nodes` (recording order), call
/// node_ran(i) after node i ran and node_passed(i) after visiting it, finish() at the end.
class BackwardHooks {
 public:
  explicit BackwardHooks(const std::vector<std::shared_ptr<Node>>& nodes);
  ~BackwardHooks();
  BackwardHooks(const BackwardHooks&) = delete;
  BackwardHooks& operator=(const BackwardHooks&) = delete;

  void node_ran(size_t i);
  void node_passed(size_t i);
  /// A leaf root's own gradient was set: runs its hooks.
  static void run_hooks(const std::shared_ptr<TensorImpl>& leaf);
  /// Runs the queued callbacks.
  void finish();

 private:
  struct HookedLeaf {
    std::shared_ptr<TensorImpl> impl;
    size_t earliest;  // index of the earliest node that uses it
    bool reached = false;
  };
  std::vector<HookedLeaf> leaves_;
  std::vector<std::vector<size_t>> leaves_of_node_;  // node index -> indices into leaves_
  std::vector<std::function<void()>>* outer_callbacks_;  // of an enclosing backward (nested)
  std::vector<std::function<void()>> callbacks_;
};

}  // namespace detail
}  // namespace tg
