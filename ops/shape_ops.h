#pragma once
// Shape ops. reshape/view, unsqueeze/squeeze and contiguous narrows (axis 0) return views of
// the same storage; the others copy. Each op's gradient rule sits beside its forward
// (ops/shape_ops.cpp; index_select and embedding in ops/index_ops.cpp).
#include <vector>

#include "autograd/tensor.h"

namespace tg {

/// Same data, new shape (one size may be -1). A view (contiguous storage).
Tensor reshape(const Tensor& x, const Shape& shape);
/// Alias of reshape, as torch.Tensor.view.
Tensor view(const Tensor& x, const Shape& shape);
/// Adds a size-1 axis at `axis` (a view).
Tensor unsqueeze(const Tensor& x, int64_t axis);
/// Removes axis `axis` if its size is 1 (a view).
Tensor squeeze(const Tensor& x, int64_t axis);
/// Swaps two axes (copies).
Tensor transpose(const Tensor& x, int64_t axis0, int64_t axis1);
/// Reorders axes: output axis i is input axis dims[i] (copies).
Tensor permute(const Tensor& x, const std::vector<int64_t>& dims);
/// Elements [start, start + length) along `axis` (a negative start counts from the end). A view
/// when the piece is one contiguous block of x (axis 0, only size-1 axes before `axis`, or the
/// whole axis), else a copy.
Tensor narrow(const Tensor& x, int64_t axis, int64_t start, int64_t length);
/// Elements [start, end) along `axis` with `step` > 0 (Python slicing: negative start/end count
/// from the end, out-of-range bounds are clamped). With step 1, the same as narrow.
Tensor slice(const Tensor& x, int64_t axis, int64_t start, int64_t end, int64_t step = 1);
/// Joins tensors along an existing axis.
Tensor cat(const std::vector<Tensor>& xs, int64_t axis = 0);
/// Joins tensors along a new axis.
Tensor stack(const std::vector<Tensor>& xs, int64_t axis = 0);
/// Pieces of `split_size` along `axis` (the last may be smaller), as torch.split; each piece
/// is a narrow() of x.
std::vector<Tensor> split(const Tensor& x, int64_t split_size, int64_t axis = 0);
/// `chunks` pieces along `axis`, as torch.chunk.
std::vector<Tensor> chunk(const Tensor& x, int64_t chunks, int64_t axis = 0);
/// Broadcasts x to `shape` (copies; -1 keeps a size). The gradient is summed back.
Tensor expand(const Tensor& x, const Shape& shape);
/// Rows of x along `axis` picked by `index` (i64, rank 1), as torch.index_select.
Tensor index_select(const Tensor& x, int64_t axis, const Tensor& index);
/// weight[V, C] rows for each id of `indices` (i64, any shape) -> [..., C]; the gradient is
/// scatter-added (ids that repeat add up), as torch.nn.functional.embedding.
Tensor embedding(const Tensor& weight, const Tensor& indices);

}  // namespace tg
