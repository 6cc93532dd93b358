#pragma once
// Node: one recorded op on the tape. It holds what backward needs and nothing more: an edge per
// input (where that input's gradient goes), the tensors it saved by name, and its gradient rule.
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "autograd/tensor.h"

namespace tg {

class Node;

/// Where the gradient of one op input goes: the node that produced it, or a leaf that wants it.
/// Empty (needs no gradient) otherwise. Holds no data of the input itself.
struct Edge {
  std::shared_ptr<Node> fn;
  std::shared_ptr<detail::TensorImpl> leaf;
  Shape shape;
  DType dtype = DType::f32;
  bool needed() const { return fn || leaf; }
};

/// The gradient rule of a node: given d(loss)/d(output), calls node.accumulate(i, dinput_i)
/// for each input i that node.needs_grad(i).
using BackwardFn = std::function<void(Node& node, const Tensor& dout)>;

class Node {
 public:
  Node(const char* name, uint64_t seq) : name_(name), seq_(seq) {}
  ~Node();
  Node(const Node&) = delete;
  Node& operator=(const Node&) = delete;

  /// The op's name, e.g. "layer_norm".
  const char* name() const { return name_; }
  /// Position in recording order on its tape.
  uint64_t seq() const { return seq_; }

  /// Saves a tensor for backward under `key` (its data is shared, its version remembered).
  void save(const char* key, const Tensor& t);
  /// A saved tensor; throws tg::Error naming the op if it was modified in place since saved.
  Tensor saved(const char* key) const;

  size_t num_inputs() const { return inputs_.size(); }
  bool needs_grad(size_t input) const { return inputs_[input].needed(); }
  /// Shape of input `input` as it was at the forward pass.
  const Shape& input_shape(size_t input) const { return inputs_[input].shape; }
  DType input_dtype(size_t input) const { return inputs_[input].dtype; }
  /// Adds `g` to the gradient of input `input`. A gradient in a broadcast shape is summed back
  /// to the input's shape; a shape or dtype that cannot match throws tg::Error naming the op.
  /// Pass a fresh gradient by value (a temporary) and its buffer is adopted without a copy.
  void accumulate(size_t input, Tensor g);

  // --- used by the engine ---------------------------------------------------------------------
  void set_inputs(std::vector<Edge> inputs) { inputs_ = std::move(inputs); }
  const Edge& input_edge(size_t input) const { return inputs_[input]; }
  void set_backward(BackwardFn fn) { backward_ = std::move(fn); }
  void set_output(const Shape& shape, DType dtype) {
    out_shape_ = shape;
    out_dtype_ = dtype;
  }
  const Shape& output_shape() const { return out_shape_; }
  DType output_dtype() const { return out_dtype_; }
  /// Adds to the gradient of this node's output.
  void add_output_grad(Tensor g);
  bool has_output_grad() const { return grad_.defined(); }
  /// Runs the gradient rule on the accumulated output gradient, then drops that gradient.
  void run_backward();
  /// Drops saved tensors, edges and the rule: a later backward through this node throws.
  void release();
  bool released() const { return released_; }

 private:
  struct SavedTensor {
    const char* key;
    Tensor value;
    uint64_t version;
  };
  const char* name_;
  uint64_t seq_;
  std::vector<Edge> inputs_;
  std::vector<SavedTensor> saved_;
  Shape out_shape_;
  DType out_dtype_ = DType::f32;
  Tensor grad_;
  BackwardFn backward_;
  bool released_ = false;
};

}  // namespace tg
