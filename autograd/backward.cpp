#include "autograd/backward.h"

#include "autograd/grad_accumulate.h"
#include "autograd/tape.h"

namespace tg {

namespace {

void replay(const Tensor& root, const Tensor& grad, bool retain_graph, uint64_t first_seq) {
  TG_CHECK(root.defined(), "backward: the tensor is undefined");
  TG_CHECK(root.requires_grad(),
           "backward: the tensor of shape {} does not require grad (no input of the ops that "
           "made it has requires_grad set, or it was computed under NoGradGuard)",
           shape_str(root.shape()));
  Tensor seed;
  if (grad.defined()) {
    TG_CHECK(grad.shape() == root.shape() && grad.dtype() == root.dtype(),
             "backward: grad has shape {} {}, the tensor has shape {} {}", shape_str(grad.shape()),
             grad.dtype(), shape_str(root.shape()), root.dtype());
    seed = grad.detach();
  } else {
    TG_CHECK(root.numel() == 1,
             "backward: grad can be implicitly created only for a one-element output; the tensor "
             "has shape {}: pass grad explicitly",
             shape_str(root.shape()));
    seed = ones(root.shape(), root.dtype());
  }

  NoGradGuard no_grad;  // gradient rules record nothing
  if (root.is_leaf()) {
    Tensor g = root.grad();
    detail::add_grad(g, seed, "backward", /*in_place=*/true);
    root.impl()->grad = g.impl_ptr();
    return;
  }
  std::shared_ptr<Node> top = root.grad_fn();
  if (top->released())
    fail("backward: the tape of {} (which produced this tensor of shape {}) was released by an "
         "earlier backward(); pass retain_graph=true to the first backward to go through it twice",
         top->name(), shape_str(root.shape()));
  top->add_output_grad(seed);

  // Reverse recording order is a topological order: every node is recorded after its inputs.
  std::vector<std::shared_ptr<Node>> nodes = detail::tape_nodes_between(first_seq, top->seq());
  TG_CHECK(!nodes.empty() && nodes.back() == top,
           "backward: the tensor was produced by {} on another thread; call backward on the "
           "thread that recorded it",
           top->name());
  for (auto it = nodes.rbegin(); it != nodes.rend(); ++it) {
    Node& n = **it;
    if (!n.has_output_grad()) continue;
    n.run_backward();
    // Nodes recorded later never send gradients to earlier ones, so n's saved tensors can go now.
    if (!retain_graph) n.release();
  }
}

}  // namespace

void backward(const Tensor& root, const Tensor& grad, bool retain_graph) {
  replay(root, grad, retain_graph, /*first_seq=*/0);
}

void detail::backward_since(const Tensor& root, const Tensor& grad, uint64_t first_seq) {
  replay(root, grad, /*retain_graph=*/false, first_seq);
}

}  // namespace tg
