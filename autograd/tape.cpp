#include "autograd/tape.h"

#include <algorithm>

#include "autograd/anomaly.h"

namespace tg {
namespace {

thread_local bool grad_enabled = true;

// This thread's tape: recording order. Entries are weak: a graph lives as long as the tensors
// that reach it (as in PyTorch); dead and released entries are pruned as the tape grows.
struct Tape {
  std::vector<std::weak_ptr<Node>> nodes;
  uint64_t next_seq = 0;
  size_t prune_at = 1024;

  void push(const std::shared_ptr<Node>& n) {
    if (nodes.size() >= prune_at) prune();
    nodes.push_back(n);
  }
  void prune() {
    std::erase_if(nodes, [](const std::weak_ptr<Node>& w) {
      auto n = w.lock();
      return !n || n->released();
    });
    prune_at = std::max<size_t>(1024, 2 * nodes.size());
  }
};

Tape& tape() {
  thread_local Tape t;
  return t;
}

bool wants_grad(const Tensor* t) { return t && t->defined() && t->requires_grad(); }

Edge edge_for(const Tensor& t) {
  Edge e;
  e.shape = t.shape();
  e.dtype = t.dtype();
  if (!t.requires_grad()) return e;
  if (t.grad_fn())
    e.fn = t.grad_fn();
  else
    e.leaf = t.impl_ptr();
  return e;
}

Node* record_edges(const char* name, Tensor& out, std::vector<Edge> edges, BackwardFn backward) {
  Tape& tp = tape();
  auto node = std::make_shared<Node>(name, tp.next_seq++);
  node->set_inputs(std::move(edges));
  node->set_backward(std::move(backward));
  node->set_output(out.shape(), out.dtype());
  out.impl()->grad_fn = node;
  out.impl()->requires_grad = false;  // requires_grad() is true through grad_fn
  tp.push(node);
  return node.get();
}

}  // namespace

bool is_grad_enabled() { return grad_enabled; }
void set_grad_enabled(bool enabled) { grad_enabled = enabled; }

bool should_record(std::initializer_list<const Tensor*> inputs) {
  if (!grad_enabled) return false;
  return std::any_of(inputs.begin(), inputs.end(), wants_grad);
}

Node* record(const char* name, Tensor& out, std::initializer_list<const Tensor*> inputs,
             BackwardFn backward) {
  // Every op calls record() right after its forward, recorded or not: anomaly mode checks here.
  if (is_anomaly_enabled()) detail::check_forward_anomaly(name, out);
  if (!should_record(inputs)) return nullptr;
  std::vector<Edge> edges;
  edges.reserve(inputs.size());
  for (const Tensor* t : inputs) edges.push_back(t && t->defined() ? edge_for(*t) : Edge{});
  return record_edges(name, out, std::move(edges), std::move(backward));
}

Node* record(const char* name, Tensor& out, const std::vector<Tensor>& inputs,
             BackwardFn backward) {
  if (std::any_of(inputs.begin(), inputs.end(), [](const Tensor& t) { return wants_grad(&t); }))
    return detail::record_always(name, out, inputs, std::move(backward));
  if (is_anomaly_enabled()) detail::check_forward_anomaly(name, out);
  return nullptr;
}

namespace detail {

std::vector<std::shared_ptr<Node>> tape_nodes_between(uint64_t first, uint64_t last) {
  std::vector<std::shared_ptr<Node>> live;
  for (auto& w : tape().nodes)
    if (auto n = w.lock(); n && n->seq() >= first && n->seq() <= last && !n->released())
      live.push_back(std::move(n));
  return live;
}

uint64_t next_seq() { return tape().next_seq; }

Node* record_always(const char* name, Tensor& out, const std::vector<Tensor>& inputs, BackwardFn backward) {
  if (is_anomaly_enabled()) check_forward_anomaly(name, out);
  if (!grad_enabled) return nullptr;
  std::vector<Edge> edges;
  edges.reserve(inputs.size());
  for (const Tensor& t : inputs) edges.push_back(t.defined() ? edge_for(t) : Edge{});
  return record_edges(name, out, std::move(edges), std::move(backward));
}

size_t tape_size() { return tape().nodes.size(); }

}  // namespace detail
}  // namespace tg
