#pragma once
// The tape: per thread, the recorded nodes in execution order. backward() replays it in
// reverse, so it needs no graph sort and no recursion. Grad mode turns recording on and off.
#include <initializer_list>
#include <memory>

#include "autograd/node.h"

namespace tg {

/// True while ops are recorded on this thread (the default).
bool is_grad_enabled();
void set_grad_enabled(bool enabled);

/// Sets grad mode for its scope, then puts back the previous one, as c10::AutoGradMode.
class AutoGradMode {
 public:
  explicit AutoGradMode(bool enabled) : prev_(is_grad_enabled()) { set_grad_enabled(enabled); }
  ~AutoGradMode() { set_grad_enabled(prev_); }
  AutoGradMode(const AutoGradMode&) = delete;
  AutoGradMode& operator=(const AutoGradMode&) = delete;

 private:
  bool prev_;
};

/// Turns recording off for its scope (evaluation, generation), as torch::NoGradGuard.
struct NoGradGuard : AutoGradMode {
  NoGradGuard() : AutoGradMode(false) {}
};

/// True when an op over these inputs would be recorded: grad mode is on and some input
/// requires a gradient.
bool should_record(std::initializer_list<const Tensor*> inputs);

/// Records op `name` that produced `out` from `inputs`, if should_record(inputs): creates its
/// node with `backward` as gradient rule, links `out` to it and returns it so the op can save()
/// what its rule needs. Returns null when nothing is recorded. Usage:
///   if (Node* n = record("mul", out, {&a, &b}, [](Node& n, const Tensor& dout) {...}))
///     n->save("a", a), n->save("b", b);
Node* record(const char* name, Tensor& out, std::initializer_list<const Tensor*> inputs,
             BackwardFn backward);
/// Same, for ops with a variable number of inputs (cat, stack).
Node* record(const char* name, Tensor& out, const std::vector<Tensor>& inputs, BackwardFn backward);

namespace detail {
/// Live nodes on this thread's tape with first <= seq <= last, oldest first (for backward).
std::vector<std::shared_ptr<Node>> tape_nodes_between(uint64_t first, uint64_t last);
/// The seq the next node recorded on this thread will get.
uint64_t next_seq();
/// record() even when no input needs a gradient (checkpoint: its parameters may need one).
Node* record_always(const char* name, Tensor& out, const std::vector<Tensor>& inputs, BackwardFn backward);
/// Number of entries on this thread's tape (expired ones may still count until pruned).
size_t tape_size();
}  // namespace detail

}  // namespace tg
