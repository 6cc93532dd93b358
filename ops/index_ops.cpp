// index_select and embedding (declared in ops/shape_ops.h): row gathers forward, and a
// deterministic scatter-add backward (ids that repeat add up in order, whatever the threads).
#include "autograd/tape.h"

#include <utility>
#include "ops/kernels/copy.h"
#include "ops/shape_ops.h"

namespace tg {
namespace {

// Throws naming `op` at the first id outside [0, size).
void check_ids(const char* op, const Tensor& ids, int64_t size, const std::string& what) {
  const int64_t* p = ids.data<int64_t>();
  const int64_t n = ids.numel();
  for (int64_t i = 0; i < n; ++i)
    if (p[i] < 0 || p[i] >= size) fail("{}: index {} is out of range for {}", op, p[i], what);
}

}  // namespace

Tensor index_select(const Tensor& x, int64_t axis, const Tensor& index) {
  TG_CHECK(index.dtype() == DType::i64, "index_select: index must be i64, got {} (shape {})",
           index.dtype(), shape_str(index.shape()));
  TG_CHECK(index.dim() <= 1, "index_select: index must have rank 1, got shape {}",
           shape_str(index.shape()));
  TG_CHECK(x.dim() >= 1, "index_select: cannot select from a 0-dimensional tensor");
  const int64_t a = normalize_axis(axis, x.dim(), "index_select");
  const Shape& s = x.shape();
  const int64_t size = s[a];
  check_ids("index_select", index, size,
            fmt::format("axis {} (size {}) of shape {}", a, size, shape_str(s)));

  int64_t outer = 1, inner = 1;
  for (int64_t i = 0; i < a; ++i) outer *= s[i];
  for (int64_t i = a + 1; i < x.dim(); ++i) inner *= s[i];
  const int64_t n = index.numel();
  Shape out_shape = s;
  out_shape[a] = n;
  Tensor out = empty(out_shape, x.dtype());
  dispatch_all(x.dtype(), [&]<class T>() {
    kernels::gather_rows<T>(x.data<T>(), outer, size, inner, index.data<int64_t>(), n,
                            out.data<T>());
  });
  Node* node =
      record("index_select", out, {&x}, [outer, size, inner, n](Node& nd, const Tensor& dout) {
        Tensor idx = nd.saved("index");
        Tensor dx = zeros(nd.input_shape(0), dout.dtype());
        dispatch(dout.dtype(), [&]<class T>() {
          kernels::scatter_add_rows<T>(dout.data<T>(), outer, n, inner, idx.data<int64_t>(), size,
                                       dx.data<T>());
        });
        nd.accumulate(0, std::move(dx));
      });
  if (node) node->save("index", index);
  return out;
}

Tensor embedding(const Tensor& weight, const Tensor& indices) {
  TG_CHECK(weight.dim() == 2, "embedding: weight must be [V, C], got shape {}",
           shape_str(weight.shape()));
  TG_CHECK(indices.dtype() == DType::i64, "embedding: indices must be i64, got {} (shape {})",
           indices.dtype(), shape_str(indices.shape()));
  const int64_t V = weight.size(0), C = weight.size(1), n = indices.numel();
  check_ids("embedding", indices, V,
            fmt::format("a weight of {} rows (shape {})", V, shape_str(weight.shape())));
  Shape out_shape = indices.shape();  // [..., C]
  out_shape.push_back(C);
  Tensor out = empty(out_shape, weight.dtype());
  dispatch_all(weight.dtype(), [&]<class T>() {
    kernels::gather_rows<T>(weight.data<T>(), 1, V, C, indices.data<int64_t>(), n, out.data<T>());
  });
  Node* node = record("embedding", out, {&weight}, [V, C, n](Node& nd, const Tensor& dout) {
    // dout [..., C] -> dweight [V, C], rows of repeated ids added in order.
    Tensor ids = nd.saved("indices");
    Tensor dweight = zeros({V, C}, dout.dtype());
    dispatch(dout.dtype(), [&]<class T>() {
      kernels::scatter_add_rows<T>(dout.data<T>(), 1, n, C, ids.data<int64_t>(), V,
                                   dweight.data<T>());
    });
    nd.accumulate(0, std::move(dweight));
  });
  if (node) node->save("indices", indices);
  return out;
}

}  // namespace tg
