#include "autograd/node.h"

#include <cstring>

#include "autograd/anomaly.h"
#include "autograd/grad_accumulate.h"

namespace tg {

Node::~Node() {
  // Destroying a long chain of nodes recursively would overflow the stack: the first node to die
  // on a thread drains its predecessors in a loop instead.
  thread_local bool draining = false;
  thread_local std::vector<std::shared_ptr<Node>> pending;
  for (auto& e : inputs_)
    if (e.fn) pending.push_back(std::move(e.fn));
  if (draining) return;
  draining = true;
  while (!pending.empty()) {
    std::shared_ptr<Node> n = std::move(pending.back());
    pending.pop_back();
    n.reset();  // may push more onto `pending`
  }
  draining = false;
}

void Node::save(const char* key, const Tensor& t) {
  // Saved data only: never the link to the tape (an op saving its own output would otherwise
  // form a cycle node -> output -> node).
  saved_.push_back({key, t.defined() ? t.detach() : Tensor(), t.defined() ? t.version() : 0});
}

Tensor Node::saved(const char* key) const {
  for (const auto& s : saved_) {
    if (std::strcmp(s.key, key) != 0) continue;
    if (s.value.defined() && s.value.version() != s.version)
      fail("{} backward: the tensor saved as '{}' (shape {}) was modified in place after {} "
           "saved it (version {} now, {} when saved)",
           name_, key, shape_str(s.value.shape()), name_, s.value.version(), s.version);
    return s.value;
  }
  if (released_) fail("{} backward: the tape was already released", name_);
  fail("{} backward: nothing was saved as '{}'", name_, key);
}

void Node::accumulate(size_t input, Tensor g) {
  if (input >= inputs_.size() || !inputs_[input].needed()) return;
  Edge& e = inputs_[input];
  if (is_anomaly_enabled()) detail::check_backward_anomaly(name_, input, g);
  if (g.dtype() != e.dtype)
    fail("{} backward: gradient for input {} is {}, the input is {}", name_, input, g.dtype(),
         e.dtype);
  Tensor reduced = g.shape() == e.shape ? std::move(g) : detail::sum_to(g, e.shape, name_);
  g = Tensor();
  if (e.fn) {
    if (e.fn->released())
      fail("{} backward: it reaches {}, whose tape was released by an earlier backward(); pass "
           "retain_graph=true to the first backward to go through it twice",
           name_, e.fn->name());
    e.fn->add_output_grad(std::move(reduced));
  } else {
    Tensor leaf_grad = e.leaf->grad ? Tensor(e.leaf->grad) : Tensor();
    detail::add_grad(leaf_grad, std::move(reduced), name_, /*in_place=*/true);
    e.leaf->grad = leaf_grad.impl_ptr();
  }
}

void Node::add_output_grad(Tensor g) {
  if (g.shape() != out_shape_)
    fail("{} backward: gradient of shape {} for an output of shape {}", name_,
         shape_str(g.shape()), shape_str(out_shape_));
  detail::add_grad(grad_, std::move(g), name_);
}

void Node::run_backward() {
  if (released_)
    fail("{} backward: its tape was released by an earlier backward(); pass retain_graph=true "
         "to the first backward to go through it twice",
         name_);
  Tensor dout = std::move(grad_);
  grad_ = Tensor();
  backward_(*this, dout);
}

void Node::release() {
  released_ = true;
  saved_.clear();
  grad_ = Tensor();
  backward_ = nullptr;
  std::vector<Edge> inputs = std::move(inputs_);
  inputs_.clear();
  // `inputs` dies here; the destructor logic above does not apply, but edges of a released node
  // are released nodes themselves (backward visits inputs after their users) or leaves.
}

}  // namespace tg
