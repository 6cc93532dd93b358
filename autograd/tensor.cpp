#include "autograd/tensor.h"

#include <algorithm>
#include <cmath>
#include <functional>
#include <cstring>
#include <ostream>

#include "autograd/checked_size.h"
#include "autograd/tape.h"
#include "ops/kernels/parallel.h"
#include "ops/kernels/philox.h"

namespace tg {
namespace {

std::shared_ptr<detail::TensorImpl> new_impl(const Shape& shape, DType dtype) {
  auto impl = std::make_shared<detail::TensorImpl>();
  // Overflow-checked: a shape from a file or a flag must not wrap around to a small allocation.
  const int64_t bytes = shape_bytes(shape, int64_t(element_size(dtype)), "empty");
  impl->storage = std::make_shared<Storage>(static_cast<size_t>(bytes));
  impl->shape = shape;
  impl->dtype = dtype;
  return impl;
}

// Converts n values between any two dtypes.
void convert(const void* src, DType from, void* dst, DType to, int64_t n) {
  dispatch_all(from, [&]<class S>() {
    dispatch_all(to, [&]<class D>() {
      const S* s = static_cast<const S*>(src);
      D* d = static_cast<D*>(dst);
      kernels::parallel_for(0, n, kernels::kElementwiseGrain, [&](int64_t lo, int64_t hi) {
        for (int64_t i = lo; i < hi; ++i) d[i] = static_cast<D>(s[i]);
      });
    });
  });
}

int64_t flat_index(const Shape& shape, const std::vector<int64_t>& index, const char* op) {
  TG_CHECK(index.size() == shape.size(), "{}: index of rank {} for a tensor of shape {}", op,
           index.size(), shape_str(shape));
  int64_t flat = 0;
  for (size_t i = 0; i < shape.size(); ++i) {
    int64_t k = index[i] < 0 ? index[i] + shape[i] : index[i];
    TG_CHECK(k >= 0 && k < shape[i], "{}: index {} out of range for axis {} of shape {}", op,
             index[i], i, shape_str(shape));
    flat = flat * shape[i] + k;
  }
  return flat;
}

}  // namespace

detail::TensorImpl& Tensor::checked(const char* what) const {
  if (!impl_) fail("{}: the tensor is undefined", what);
  return *impl_;
}

const Shape& Tensor::shape() const { return checked("shape").shape; }
DType Tensor::dtype() const { return checked("dtype").dtype; }

int64_t Tensor::size(int64_t axis) const {
  return shape()[normalize_axis(axis, dim(), "size")];
}

void* Tensor::raw_data() {
  auto& i = checked("data");
  return static_cast<char*>(i.storage->data) + i.offset * element_size(i.dtype);
}
const void* Tensor::raw_data() const { return const_cast<Tensor*>(this)->raw_data(); }

bool Tensor::requires_grad() const {
  return impl_ && (impl_->requires_grad || impl_->grad_fn != nullptr);
}

Tensor& Tensor::requires_grad_(bool flag) {
  auto& i = checked("requires_grad_");
  TG_CHECK(!flag || is_floating(i.dtype), "requires_grad_: only f32 and f64 tensors can require "
           "grad; this one is {}", i.dtype);
  TG_CHECK(!i.grad_fn,
           "requires_grad_: only a leaf can be marked; this tensor of shape {} was produced by {} "
           "(use detach() to get a leaf)",
           shape_str(i.shape), i.grad_fn->name());
  i.requires_grad = flag;
  return *this;
}

bool Tensor::is_leaf() const { return !checked("is_leaf").grad_fn; }

Tensor Tensor::grad() const { return checked("grad").grad ? Tensor(impl_->grad) : Tensor(); }

void Tensor::set_grad(const Tensor& g) {
  auto& i = checked("set_grad");
  if (g.defined())
    TG_CHECK(g.shape() == i.shape && g.dtype() == i.dtype,
             "set_grad: gradient of shape {} {} for a tensor of shape {} {}", shape_str(g.shape()),
             g.dtype(), shape_str(i.shape), i.dtype);
  i.grad = g.impl_ptr();
}

void Tensor::zero_grad() {
  if (impl_ && impl_->grad) Tensor(impl_->grad).fill_(0.0);
}

Tensor Tensor::detach() const {
  auto& i = checked("detach");
  auto impl = std::make_shared<detail::TensorImpl>();
  impl->storage = i.storage;
  impl->offset = i.offset;
  impl->shape = i.shape;
  impl->dtype = i.dtype;
  return Tensor(std::move(impl));
}

const std::shared_ptr<Node>& Tensor::grad_fn() const { return checked("grad_fn").grad_fn; }

double Tensor::item() const {
  TG_CHECK(numel() == 1, "item: the tensor has {} elements (shape {}); item() needs exactly one",
           numel(), shape_str(shape()));
  return dispatch_all(dtype(), [&]<class T>() { return static_cast<double>(data<T>()[0]); });
}

double Tensor::at(const std::vector<int64_t>& index) const {
  int64_t k = flat_index(shape(), index, "at");
  return dispatch_all(dtype(), [&]<class T>() { return static_cast<double>(data<T>()[k]); });
}

void Tensor::set(const std::vector<int64_t>& index, double value) {
  int64_t k = flat_index(shape(), index, "set");
  dispatch_all(dtype(), [&]<class T>() { data<T>()[k] = static_cast<T>(value); });
  bump_version();
}

Tensor& Tensor::fill_(double value) {
  dispatch_all(dtype(), [&]<class T>() {
    T* p = data<T>();
    T v = static_cast<T>(value);
    kernels::parallel_for(0, numel(), kernels::kElementwiseGrain,
                          [&](int64_t lo, int64_t hi) { std::fill(p + lo, p + hi, v); });
  });
  bump_version();
  return *this;
}

Tensor& Tensor::copy_(const Tensor& src) {
  TG_CHECK(src.shape() == shape(), "copy_: source of shape {} for a tensor of shape {}",
           shape_str(src.shape()), shape_str(shape()));
  convert(src.raw_data(), src.dtype(), raw_data(), dtype(), numel());
  bump_version();
  return *this;
}

Tensor Tensor::clone() const {
  Tensor out = empty(shape(), dtype());
  std::memcpy(out.raw_data(), raw_data(), nbytes());
  record("clone", out, {this}, [](Node& n, const Tensor& dout) { n.accumulate(0, dout); });
  return out;
}

Tensor Tensor::to(DType target) const {
  if (target == dtype()) return *this;
  Tensor out = empty(shape(), target);
  convert(raw_data(), dtype(), out.raw_data(), target, numel());
  DType source = dtype();
  if (!is_floating(target) || !is_floating(source)) return out;
  record("to", out, {this}, [source](Node& n, const Tensor& dout) { n.accumulate(0, dout.to(source)); });
  return out;
}

std::vector<double> Tensor::to_vector() const {
  std::vector<double> v(static_cast<size_t>(numel()));
  convert(raw_data(), dtype(), v.data(), DType::f64, numel());
  return v;
}

uint64_t Tensor::version() const { return checked("version").storage->version; }
void Tensor::bump_version() { ++checked("bump_version").storage->version; }

Tensor Tensor::view_of(const Shape& shape, int64_t offset) const {
  auto& i = checked("view");
  // The view's last byte, overflow-checked: a wrapped sum must not pass for a small one.
  std::optional<int64_t> end = checked_add(i.offset, offset);
  if (end) end = checked_add(*end, tg::numel(shape));
  if (end) end = checked_mul(*end, int64_t(element_size(i.dtype)));
  TG_CHECK(offset >= 0 && end && *end <= int64_t(i.storage->nbytes),
           "view: a view of shape {} at offset {} does not fit in the storage", shape_str(shape),
           offset);
  auto impl = std::make_shared<detail::TensorImpl>();
  impl->storage = i.storage;
  impl->offset = i.offset + offset;
  impl->shape = shape;
  impl->dtype = i.dtype;
  return Tensor(std::move(impl));
}

bool Tensor::shares_storage(const Tensor& other) const {
  return impl_ && other.impl_ && impl_->storage == other.impl_->storage;
}

long Tensor::storage_use_count() const { return impl_ ? impl_->storage.use_count() : 0; }

std::string Tensor::to_string() const {
  if (!impl_) return "tensor(undefined)";
  std::string s;
  std::vector<double> v = to_vector();
  const Shape& sh = shape();
  // Nested brackets, row-major; at most 6 values shown per axis.
  std::function<void(size_t, int64_t)> rec = [&](size_t axis, int64_t base) {
    if (axis == sh.size()) {
      s += fmt::format("{:.6g}", v[static_cast<size_t>(base)]);
      return;
    }
    int64_t stride = 1;
    for (size_t j = axis + 1; j < sh.size(); ++j) stride *= sh[j];
    s += "[";
    for (int64_t k = 0; k < sh[axis]; ++k) {
      if (k > 0) s += axis + 1 == sh.size() ? ", " : ",\n" + std::string(axis + 8, ' ');
      if (sh[axis] > 6 && k == 3) {
        s += "...";
        k = sh[axis] - 3;
        s += axis + 1 == sh.size() ? ", " : ",\n" + std::string(axis + 8, ' ');
      }
      rec(axis + 1, base + k * stride);
    }
    s += "]";
  };
  rec(0, 0);
  return fmt::format("tensor({}, shape={}, dtype={}{})", s, shape_str(sh), dtype(),
                     requires_grad() ? ", requires_grad" : "");
}

std::ostream& operator<<(std::ostream& os, const Tensor& t) { return os << t.to_string(); }

// --- factories ------------------------------------------------------------------------------

Tensor empty(const Shape& shape, DType dtype) {
  check_sizes(shape, "empty");
  return Tensor(new_impl(shape, dtype));
}

Tensor full(const Shape& shape, double value, DType dtype) {
  check_sizes(shape, "full");
  Tensor t(new_impl(shape, dtype));
  t.fill_(value);
  return t;
}

Tensor zeros(const Shape& shape, DType dtype) { return full(shape, 0.0, dtype); }
Tensor ones(const Shape& shape, DType dtype) { return full(shape, 1.0, dtype); }
Tensor zeros_like(const Tensor& t) { return zeros(t.shape(), t.dtype()); }
Tensor ones_like(const Tensor& t) { return ones(t.shape(), t.dtype()); }

Tensor arange(int64_t end, DType dtype) { return arange(0.0, static_cast<double>(end), 1.0, dtype); }

Tensor arange(double start, double end, double step, DType dtype) {
  TG_CHECK(step != 0.0, "arange: step must be non-zero");
  double span = (end - start) / step;
  int64_t n = span > 0 ? static_cast<int64_t>(std::ceil(span)) : 0;
  Tensor t = empty({n}, dtype);
  dispatch(dtype, [&]<class T>() {
    T* p = t.data<T>();
    for (int64_t i = 0; i < n; ++i) p[i] = static_cast<T>(start + step * static_cast<double>(i));
  });
  return t;
}

Tensor rand(const Shape& shape, Generator& gen, DType dtype) {
  Tensor t = empty(shape, dtype);
  int64_t n = t.numel();
  uint64_t seed = gen.seed(), offset = gen.advance(kernels::philox_uniform_blocks(n));
  dispatch(dtype, [&]<class T>() {
    T* p = t.data<T>();
    kernels::parallel_for(0, n, 4096, [&](int64_t lo, int64_t hi) {
      for (int64_t i = lo; i < hi; ++i) p[i] = kernels::philox_uniform<T>(seed, offset, i);
    });
  });
  return t;
}

Tensor randn(const Shape& shape, Generator& gen, DType dtype) {
  Tensor t = empty(shape, dtype);
  int64_t n = t.numel();
  uint64_t seed = gen.seed(), offset = gen.advance(static_cast<uint64_t>(n));
  dispatch(dtype, [&]<class T>() {
    T* p = t.data<T>();
    kernels::parallel_for(0, n, 4096, [&](int64_t lo, int64_t hi) {
      for (int64_t i = lo; i < hi; ++i) p[i] = kernels::philox_normal<T>(seed, offset, i);
    });
  });
  return t;
}

Tensor tensor(const std::vector<double>& values, const Shape& shape, DType dtype) {
  Shape s = shape.empty() && values.size() != 1 ? Shape{int64_t(values.size())} : shape;
  TG_CHECK(tg::numel(s) == int64_t(values.size()), "tensor: {} values for shape {} ({} elements)",
           values.size(), shape_str(s), tg::numel(s));
  Tensor t = empty(s, dtype);
  convert(values.data(), DType::f64, t.raw_data(), dtype, t.numel());
  return t;
}

Tensor copy_from(const float* data, const Shape& shape) {
  Tensor t = empty(shape, DType::f32);
  if (t.numel() > 0) std::memcpy(t.raw_data(), data, t.nbytes());
  return t;
}

Tensor copy_from(const double* data, const Shape& shape) {
  Tensor t = empty(shape, DType::f64);
  if (t.numel() > 0) std::memcpy(t.raw_data(), data, t.nbytes());
  return t;
}

}  // namespace tg
