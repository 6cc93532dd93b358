#include "autograd/grad_hooks.h"

#include <algorithm>
#include <atomic>
#include <unordered_map>

#include "autograd/error.h"

namespace tg {
namespace {

// The callback queue of the backward() running on this thread (null outside backward).
thread_local std::vector<std::function<void()>>* current_callbacks = nullptr;
std::atomic<uint64_t> next_hook_id{1};  // only a label: uniqueness per tensor is all that matters

}  // namespace

void RemovableHandle::remove() {
  if (auto impl = leaf_.lock())
    std::erase_if(impl->post_accumulate_grad_hooks, [&](const detail::PostAccumulateGradHook& h) { return h.id == id_; });
  leaf_.reset();
}

RemovableHandle register_post_accumulate_grad_hook(const Tensor& leaf, std::function<void(const Tensor& leaf)> hook) {
  TG_CHECK(leaf.defined(), "register_post_accumulate_grad_hook: the tensor is undefined");
  TG_CHECK(leaf.is_leaf() && leaf.requires_grad(),
           "register_post_accumulate_grad_hook: only a leaf that requires grad has its gradient accumulated (the "
           "tensor of shape {} is {})",
           shape_str(leaf.shape()), leaf.is_leaf() ? "a leaf that does not require grad" : "the output of an op");
  TG_CHECK(hook, "register_post_accumulate_grad_hook: the hook is empty");
  uint64_t id = next_hook_id.fetch_add(1, std::memory_order_relaxed);
  leaf.impl()->post_accumulate_grad_hooks.push_back({id, std::move(hook)});
  return RemovableHandle(leaf.impl_ptr(), id);
}

void queue_callback(std::function<void()> callback) {
  TG_CHECK(current_callbacks, "queue_callback: only valid while backward() runs (call it from a hook)");
  current_callbacks->push_back(std::move(callback));
}

namespace detail {

BackwardHooks::BackwardHooks(const std::vector<std::shared_ptr<Node>>& nodes) : outer_callbacks_(current_callbacks) {
  // A backward inside a gradient rule (checkpoint's recomputation) is part of the enclosing
  // one: what it queues runs when the outermost backward ends.
  if (!outer_callbacks_) current_callbacks = &callbacks_;
  std::unordered_map<const TensorImpl*, size_t> slot;
  // Walking forward in recording order, the first node seen using a leaf is its earliest user.
  for (size_t i = 0; i < nodes.size(); ++i) {
    const Node& n = *nodes[i];
    for (size_t k = 0; k < n.num_inputs(); ++k) {
      const std::shared_ptr<TensorImpl>& leaf = n.input_edge(k).leaf;
      if (!leaf || leaf->post_accumulate_grad_hooks.empty()) continue;
      auto [it, fresh] = slot.try_emplace(leaf.get(), leaves_.size());
      if (fresh) leaves_.push_back({leaf, i});
      if (leaves_of_node_.empty()) leaves_of_node_.resize(nodes.size());
      std::vector<size_t>& of = leaves_of_node_[i];
      if (std::find(of.begin(), of.end(), it->second) == of.end()) of.push_back(it->second);
    }
  }
}

BackwardHooks::~BackwardHooks() { current_callbacks = outer_callbacks_; }

void BackwardHooks::node_ran(size_t i) {
  if (leaves_of_node_.empty()) return;
  for (size_t l : leaves_of_node_[i]) leaves_[l].reached = true;
}

void BackwardHooks::node_passed(size_t i) {
  if (leaves_of_node_.empty()) return;
  for (size_t l : leaves_of_node_[i])
    if (leaves_[l].earliest == i && leaves_[l].reached) run_hooks(leaves_[l].impl);
}

void BackwardHooks::run_hooks(const std::shared_ptr<TensorImpl>& leaf) {
  // A copy: a hook may remove itself.
  std::vector<PostAccumulateGradHook> hooks = leaf->post_accumulate_grad_hooks;
  Tensor t(leaf);
  for (const PostAccumulateGradHook& h : hooks) h.fn(t);
}

void BackwardHooks::finish() {
  if (outer_callbacks_) return;  // nested: the enclosing backward runs the callbacks
  for (size_t i = 0; i < callbacks_.size(); ++i) {
    std::function<void()> cb = std::move(callbacks_[i]);  // callbacks_ may grow meanwhile
    cb();
  }
  callbacks_.clear();
}

}  // namespace detail
}  // namespace tg
