#pragma once
// Tensor: a cheap handle to shared storage (like torch::Tensor). Contiguous row-major data
// starting at an element offset into the storage; reshape and first-axis slices are views.
// A tensor produced by a recorded op points at the tape node that produced it (grad_fn).
#include <cstdint>
#include <functional>
#include <initializer_list>
#include <memory>
#include <string>
#include <vector>

#include "autograd/dtype.h"
#include "autograd/random.h"
#include "autograd/shape.h"
#include "autograd/storage.h"

namespace tg {

class Node;
class Tensor;

namespace detail {
/// A hook run by backward() once a leaf's gradient is final (autograd/grad_hooks.h).
struct PostAccumulateGradHook {
  uint64_t id;
  std::function<void(const Tensor& leaf)> fn;
};

struct TensorImpl {
  std::shared_ptr<Storage> storage;
  int64_t offset = 0;  // in elements
  Shape shape;
  DType dtype = DType::f32;
  bool requires_grad = false;       // set on leaves by the user
  std::shared_ptr<Node> grad_fn;    // the node that produced this tensor, if recorded
  std::shared_ptr<TensorImpl> grad; // accumulated gradient (leaves)
  std::vector<PostAccumulateGradHook> post_accumulate_grad_hooks;  // leaves; usually none
};
}  // namespace detail

class Tensor {
 public:
  /// An undefined tensor (defined() is false), like a default torch::Tensor.
  Tensor() = default;
  explicit Tensor(std::shared_ptr<detail::TensorImpl> impl) : impl_(std::move(impl)) {}

  bool defined() const { return impl_ != nullptr; }
  const Shape& shape() const;
  int64_t dim() const { return static_cast<int64_t>(shape().size()); }
  /// Size along `axis` (negative counts from the end).
  int64_t size(int64_t axis) const;
  int64_t numel() const { return tg::numel(shape()); }
  DType dtype() const;
  size_t nbytes() const { return static_cast<size_t>(numel()) * element_size(dtype()); }

  /// Typed pointer to the first element; throws when T does not match dtype().
  template <class T> T* data();
  template <class T> const T* data() const;
  void* raw_data();
  const void* raw_data() const;

  // --- autograd ------------------------------------------------------------------------------
  /// True for a leaf the user marked, or for the output of a recorded op.
  bool requires_grad() const;
  /// Marks a leaf as needing its gradient (f32/f64 leaves only). Returns *this.
  Tensor& requires_grad_(bool flag = true);
  /// True when no recorded op produced this tensor.
  bool is_leaf() const;
  /// The accumulated gradient of a leaf (undefined before the first backward).
  Tensor grad() const;
  /// Sets the stored gradient (an undefined tensor clears it).
  void set_grad(const Tensor& g);
  /// Fills the stored gradient with zeros in place (keeps its buffer); no-op when undefined.
  void zero_grad();
  /// Shares the data, drops the link to the tape and requires_grad (as torch.Tensor.detach).
  Tensor detach() const;
  /// The node that produced this tensor, or null.
  const std::shared_ptr<Node>& grad_fn() const;

  // --- values --------------------------------------------------------------------------------
  /// The single value of a one-element tensor, as double.
  double item() const;
  /// Element at a full index, as double (for tests and inspection).
  double at(const std::vector<int64_t>& index) const;
  /// Writes one element in place (bumps the version).
  void set(const std::vector<int64_t>& index, double value);
  /// Fills every element in place (bumps the version).
  Tensor& fill_(double value);
  /// Copies values from `src` (same shape; any dtype) in place (bumps the version).
  Tensor& copy_(const Tensor& src);
  /// A new tensor with its own storage and the same values; recorded (the gradient flows back).
  Tensor clone() const;
  /// Cast to another dtype; recorded (the gradient is cast back). Returns *this when equal.
  Tensor to(DType dtype) const;
  /// All values flattened, as doubles.
  std::vector<double> to_vector() const;

  // --- versions and views (used by ops) ------------------------------------------------------
  /// Version of the shared storage; in-place ops bump it.
  uint64_t version() const;
  void bump_version();
  /// A view sharing storage: `shape` starting `offset` elements after this tensor's start.
  /// Not recorded; ops that return views record their own node.
  Tensor view_of(const Shape& shape, int64_t offset = 0) const;
  /// True when both share the same storage.
  bool shares_storage(const Tensor& other) const;
  /// Number of handles to this tensor's storage (1 when nothing else can see the data).
  long storage_use_count() const;

  std::string to_string() const;
  detail::TensorImpl* impl() const { return impl_.get(); }
  const std::shared_ptr<detail::TensorImpl>& impl_ptr() const { return impl_; }

 private:
  detail::TensorImpl& checked(const char* what) const;
  std::shared_ptr<detail::TensorImpl> impl_;
};

// --- factories (dtype f32 unless given) -----------------------------------------------------
/// Uninitialised values.
Tensor empty(const Shape& shape, DType dtype = DType::f32);
Tensor zeros(const Shape& shape, DType dtype = DType::f32);
Tensor ones(const Shape& shape, DType dtype = DType::f32);
Tensor full(const Shape& shape, double value, DType dtype = DType::f32);
Tensor zeros_like(const Tensor& t);
Tensor ones_like(const Tensor& t);
/// [0, 1, ..., end-1].
Tensor arange(int64_t end, DType dtype = DType::f32);
/// start, start+step, ... below end (above end for negative step).
Tensor arange(double start, double end, double step = 1.0, DType dtype = DType::f32);
/// Uniform in [0, 1), drawn from `gen` (as torch.rand with a generator).
Tensor rand(const Shape& shape, Generator& gen, DType dtype = DType::f32);
/// Standard normal, drawn from `gen`.
Tensor randn(const Shape& shape, Generator& gen, DType dtype = DType::f32);
/// Values from a vector, laid out row-major in `shape` ({n} when shape is empty and n != 1).
Tensor tensor(const std::vector<double>& values, const Shape& shape = {}, DType dtype = DType::f32);
/// Copies numel(shape) values from a raw buffer (the tensor owns its copy).
Tensor copy_from(const float* data, const Shape& shape);
Tensor copy_from(const double* data, const Shape& shape);

std::ostream& operator<<(std::ostream& os, const Tensor& t);

// --- template definitions ---------------------------------------------------------------------
template <class T>
T* Tensor::data() {
  auto& i = checked("data");
  if (dtype_of<T> != i.dtype) fail("data: tensor is {}, asked for {}", i.dtype, dtype_of<T>);
  return static_cast<T*>(i.storage->data) + i.offset;
}
template <class T>
const T* Tensor::data() const {
  return const_cast<Tensor*>(this)->data<T>();
}

}  // namespace tg

template <>
struct fmt::formatter<tg::Tensor> : fmt::formatter<std::string_view> {
  auto format(const tg::Tensor& t, format_context& ctx) const {
    return fmt::formatter<std::string_view>::format(t.to_string(), ctx);
  }
};
