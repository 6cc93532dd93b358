// Shape ops. Views (reshape, unsqueeze, squeeze, contiguous narrows) share x's storage and
// record a node that maps the gradient back; the others copy through kernels::strided_copy.
#include "ops/shape_ops.h"

#include <algorithm>
#include <utility>

#include "autograd/tape.h"
#include "ops/kernels/copy.h"

namespace tg {
namespace {

int64_t prod(const Shape& s, size_t from, size_t to) {
  int64_t p = 1;
  for (size_t i = from; i < to; ++i) p *= s[i];
  return p;
}

// dst[i · dst_strides] = src[i · src_strides] for each index i of `shape` (any dtype).
void copy_strided(const Tensor& src, int64_t src_offset, const std::vector<int64_t>& src_strides,
                  Tensor& dst, int64_t dst_offset, const std::vector<int64_t>& dst_strides,
                  const Shape& shape) {
  dispatch_all(src.dtype(), [&]<class T>() {
    kernels::strided_copy<T>(src.data<T>() + src_offset, src_strides, dst.data<T>() + dst_offset,
                             dst_strides, shape);
  });
}

// x's data seen with another shape of the same size, recorded as `op`.
Tensor view_as(const char* op, const Tensor& x, const Shape& shape) {
  Tensor out = x.view_of(shape);
  record(op, out, {&x}, [in_shape = x.shape()](Node& n, const Tensor& dout) {
    n.accumulate(0, dout.view_of(in_shape));
  });
  return out;
}

// reshape and view: `shape` with one -1 inferred, as a view recorded as `op`.
Tensor reshape_as(const char* op, const Tensor& x, const Shape& shape) {
  Shape out = shape;
  int64_t infer = -1, known = 1;
  for (size_t i = 0; i < shape.size(); ++i) {
    if (shape[i] == -1) {
      TG_CHECK(infer < 0, "{}: only one size may be -1, got {}", op, shape_str(shape));
      infer = int64_t(i);
    } else {
      TG_CHECK(shape[i] >= 0, "{}: invalid size {} in shape {}", op, shape[i], shape_str(shape));
      TG_CHECK(!__builtin_mul_overflow(known, shape[i], &known), "{}: the shape {} has more elements than int64 can count",
               op, shape_str(shape));
    }
  }
  if (infer >= 0) {
    TG_CHECK(known != 0 && x.numel() % known == 0,
             "{}: cannot reshape a tensor of shape {} ({} elements) to {}", op,
             shape_str(x.shape()), x.numel(), shape_str(shape));
    out[infer] = x.numel() / known;
  }
  TG_CHECK(numel(out) == x.numel(),
           "{}: cannot reshape a tensor of shape {} ({} elements) to {} ({} elements)", op,
           shape_str(x.shape()), x.numel(), shape_str(shape), numel(out));
  return view_as(op, x, out);
}

// A copy of x with axes reordered (output axis i is x's axis perm[i]); not recorded.
Tensor permuted(const Tensor& x, const std::vector<int64_t>& perm) {
  const Shape& s = x.shape();
  std::vector<int64_t> strides = contiguous_strides(s), src(perm.size());
  Shape out_shape(perm.size());
  for (size_t i = 0; i < perm.size(); ++i) {
    out_shape[i] = s[perm[i]];
    src[i] = strides[perm[i]];
  }
  Tensor out = empty(out_shape, x.dtype());
  copy_strided(x, 0, src, out, 0, contiguous_strides(out_shape), out_shape);
  return out;
}

Tensor permute_recorded(const char* op, const Tensor& x, const std::vector<int64_t>& perm) {
  Tensor out = permuted(x, perm);
  std::vector<int64_t> inverse(perm.size());
  for (size_t i = 0; i < perm.size(); ++i) inverse[perm[i]] = int64_t(i);
  record(op, out, {&x},
         [inverse](Node& n, const Tensor& dout) { n.accumulate(0, permuted(dout, inverse)); });
  return out;
}

// Elements [start, start + length) of `axis` (already checked). A view when they form one
// contiguous block of x (axis 0, leading axes of size 1, or the whole axis); else a copy. The
// gradient is written into a zero tensor of x's shape.
Tensor narrow_checked(const char* op, const Tensor& x, int64_t axis, int64_t start,
                      int64_t length) {
  const Shape& s = x.shape();
  const int64_t outer = prod(s, 0, axis), size = s[axis], inner = prod(s, axis + 1, s.size());
  Shape out_shape = s;
  out_shape[axis] = length;
  // The piece as [outer, length * inner] rows inside x's [outer, size * inner].
  const Shape rows{outer, length * inner};
  const std::vector<int64_t> x_strides{size * inner, 1}, out_strides{length * inner, 1};
  Tensor out;
  if (outer == 1 || length == size) {
    out = x.view_of(out_shape, start * inner);
  } else {
    out = empty(out_shape, x.dtype());
    copy_strided(x, start * inner, x_strides, out, 0, out_strides, rows);
  }
  record(op, out, {&x}, [=, in_shape = s](Node& n, const Tensor& dout) {
    Tensor dx = zeros(in_shape, dout.dtype());
    copy_strided(dout, 0, out_strides, dx, start * inner, x_strides, rows);
    n.accumulate(0, std::move(dx));
  });
  return out;
}

// Joins xs along `axis`, each seen with shape shapes[i] (equal except along axis).
Tensor join(const char* op, const std::vector<Tensor>& xs, const std::vector<Shape>& shapes,
            int64_t axis) {
  Shape out_shape = shapes[0];
  std::vector<int64_t> lens;
  out_shape[axis] = 0;
  for (const Shape& s : shapes) {
    lens.push_back(s[axis]);
    out_shape[axis] += s[axis];
  }
  const int64_t outer = prod(out_shape, 0, axis),
                inner = prod(out_shape, axis + 1, out_shape.size());
  const int64_t total = out_shape[axis];
  Tensor out = empty(out_shape, xs[0].dtype());
  // Piece i is [outer, lens[i] * inner] at column offset off * inner of out's
  // [outer, total * inner] rows.
  for (size_t i = 0, off = 0; i < xs.size(); off += lens[i], ++i)
    copy_strided(xs[i], 0, {lens[i] * inner, 1}, out, int64_t(off) * inner, {total * inner, 1},
                 {outer, lens[i] * inner});
  record(op, out, xs, [lens, outer, inner, total](Node& n, const Tensor& dout) {
    int64_t off = 0;
    for (size_t i = 0; i < lens.size(); off += lens[i], ++i) {
      if (!n.needs_grad(i)) continue;
      Tensor dx = empty(n.input_shape(i), dout.dtype());
      copy_strided(dout, off * inner, {total * inner, 1}, dx, 0, {lens[i] * inner, 1},
                   {outer, lens[i] * inner});
      n.accumulate(i, std::move(dx));
    }
  });
  return out;
}

void check_list(const char* op, const std::vector<Tensor>& xs) {
  TG_CHECK(!xs.empty(), "{}: expected a non-empty list of tensors", op);
  for (size_t i = 1; i < xs.size(); ++i)
    TG_CHECK(xs[i].dtype() == xs[0].dtype(),
             "{}: tensor {} is {} but tensor 0 is {}; all must share a dtype", op, i, xs[i].dtype(),
             xs[0].dtype());
}

}  // namespace

Tensor reshape(const Tensor& x, const Shape& shape) { return reshape_as("reshape", x, shape); }

Tensor view(const Tensor& x, const Shape& shape) { return reshape_as("view", x, shape); }

Tensor unsqueeze(const Tensor& x, int64_t axis) {
  const int64_t r = x.dim() + 1;  // axes of the result
  TG_CHECK(axis >= -r && axis < r,
           "unsqueeze: axis {} is out of range for shape {} (expected {} to {})", axis,
           shape_str(x.shape()), -r, r - 1);
  const int64_t a = axis < 0 ? axis + r : axis;
  Shape s = x.shape();
  s.insert(s.begin() + a, 1);
  return view_as("unsqueeze", x, s);
}

Tensor squeeze(const Tensor& x, int64_t axis) {
  int64_t a = normalize_axis(axis, x.dim(), "squeeze");
  Shape s = x.shape();
  if (!s.empty() && s[a] == 1) s.erase(s.begin() + a);  // other sizes stay, as in PyTorch
  return view_as("squeeze", x, s);
}

Tensor transpose(const Tensor& x, int64_t axis0, int64_t axis1) {
  int64_t a0 = normalize_axis(axis0, x.dim(), "transpose");
  int64_t a1 = normalize_axis(axis1, x.dim(), "transpose");
  std::vector<int64_t> perm(static_cast<size_t>(x.dim()));
  for (size_t i = 0; i < perm.size(); ++i) perm[i] = int64_t(i);
  if (!perm.empty()) std::swap(perm[a0], perm[a1]);
  return permute_recorded("transpose", x, perm);
}

Tensor permute(const Tensor& x, const std::vector<int64_t>& dims) {
  TG_CHECK(int64_t(dims.size()) == x.dim(),
           "permute: dims [{}] name {} axes for a tensor of shape {} (rank {})",
           fmt::join(dims, ", "), dims.size(), shape_str(x.shape()), x.dim());
  std::vector<int64_t> perm(dims.size());
  std::vector<bool> seen(dims.size(), false);
  for (size_t i = 0; i < dims.size(); ++i) {
    perm[i] = normalize_axis(dims[i], x.dim(), "permute");
    TG_CHECK(!seen[perm[i]],
             "permute: dims [{}] is not a permutation (axis {} repeats) for shape {}",
             fmt::join(dims, ", "), dims[i], shape_str(x.shape()));
    seen[perm[i]] = true;
  }
  return permute_recorded("permute", x, perm);
}

Tensor narrow(const Tensor& x, int64_t axis, int64_t start, int64_t length) {
  TG_CHECK(x.dim() >= 1, "narrow: cannot narrow a 0-dimensional tensor");
  int64_t a = normalize_axis(axis, x.dim(), "narrow");
  const int64_t size = x.shape()[a];
  if (start < 0 && start >= -size) start += size;  // as torch.narrow
  TG_CHECK(start >= 0 && length >= 0 && start + length <= size,
           "narrow: start {} and length {} are out of range for axis {} (size {}) of shape {}",
           start, length, a, size, shape_str(x.shape()));
  return narrow_checked("narrow", x, a, start, length);
}

Tensor slice(const Tensor& x, int64_t axis, int64_t start, int64_t end, int64_t step) {
  TG_CHECK(x.dim() >= 1, "slice: cannot slice a 0-dimensional tensor");
  int64_t a = normalize_axis(axis, x.dim(), "slice");
  TG_CHECK(step > 0, "slice: step must be positive, got {} (shape {})", step, shape_str(x.shape()));
  const Shape& s = x.shape();
  const int64_t size = s[a];
  // Python slicing: negative bounds count from the end, then clamp to [0, size].
  auto clamp = [size](int64_t v) { return std::clamp(v < 0 ? v + size : v, int64_t(0), size); };
  start = clamp(start);
  end = clamp(end);
  const int64_t length = end > start ? (end - start + step - 1) / step : 0;
  if (step == 1) return narrow_checked("slice", x, a, start, length);

  const int64_t outer = prod(s, 0, a), inner = prod(s, a + 1, s.size());
  Shape out_shape = s;
  out_shape[a] = length;
  // [outer, length, inner] read with x's strides, every step-th row of the axis.
  const Shape grid{outer, length, inner};
  const std::vector<int64_t> x_strides{size * inner, step * inner, 1};
  const std::vector<int64_t> out_strides{length * inner, inner, 1};
  Tensor out = empty(out_shape, x.dtype());
  copy_strided(x, start * inner, x_strides, out, 0, out_strides, grid);
  record("slice", out, {&x}, [=, in_shape = s](Node& n, const Tensor& dout) {
    Tensor dx = zeros(in_shape, dout.dtype());
    copy_strided(dout, 0, out_strides, dx, start * inner, x_strides, grid);
    n.accumulate(0, std::move(dx));
  });
  return out;
}

Tensor cat(const std::vector<Tensor>& xs, int64_t axis) {
  check_list("cat", xs);
  const Shape& s0 = xs[0].shape();
  TG_CHECK(!s0.empty(), "cat: zero-dimensional tensor 0 cannot be concatenated");
  int64_t a = normalize_axis(axis, int64_t(s0.size()), "cat");
  std::vector<Shape> shapes;
  for (size_t i = 0; i < xs.size(); ++i) {
    const Shape& s = xs[i].shape();
    bool match = s.size() == s0.size();
    for (size_t d = 0; match && d < s.size(); ++d) match = int64_t(d) == a || s[d] == s0[d];
    TG_CHECK(match,
             "cat: tensor {} has shape {} but tensor 0 has shape {}; they must match except along "
             "axis {}",
             i, shape_str(s), shape_str(s0), a);
    shapes.push_back(s);
  }
  return join("cat", xs, shapes, a);
}

Tensor stack(const std::vector<Tensor>& xs, int64_t axis) {
  check_list("stack", xs);
  const Shape& s0 = xs[0].shape();
  int64_t a = normalize_axis(axis, int64_t(s0.size()) + 1, "stack");
  std::vector<Shape> shapes;
  for (size_t i = 0; i < xs.size(); ++i) {
    TG_CHECK(xs[i].shape() == s0,
             "stack: tensor {} has shape {} but tensor 0 has shape {}; all must match", i,
             shape_str(xs[i].shape()), shape_str(s0));
    Shape s = s0;
    s.insert(s.begin() + a, 1);  // each input is one slice of the new axis
    shapes.push_back(s);
  }
  return join("stack", xs, shapes, a);
}

std::vector<Tensor> split(const Tensor& x, int64_t split_size, int64_t axis) {
  TG_CHECK(x.dim() >= 1, "split: cannot split a 0-dimensional tensor");
  int64_t a = normalize_axis(axis, x.dim(), "split");
  const int64_t size = x.shape()[a];
  TG_CHECK(split_size > 0 || (split_size == 0 && size == 0),
           "split: split_size must be positive, got {} (axis {} of shape {})", split_size, a,
           shape_str(x.shape()));
  std::vector<Tensor> pieces;
  if (size == 0) return {narrow_checked("split", x, a, 0, 0)};  // one empty piece, as PyTorch
  for (int64_t start = 0; start < size; start += split_size)
    pieces.push_back(narrow_checked("split", x, a, start, std::min(split_size, size - start)));
  return pieces;
}

std::vector<Tensor> chunk(const Tensor& x, int64_t chunks, int64_t axis) {
  TG_CHECK(chunks > 0, "chunk: chunks must be positive, got {} (shape {})", chunks,
           shape_str(x.shape()));
  TG_CHECK(x.dim() >= 1, "chunk: cannot chunk a 0-dimensional tensor");
  int64_t a = normalize_axis(axis, x.dim(), "chunk");
  const int64_t size = x.shape()[a];
  if (size == 0) {  // `chunks` empty pieces, as torch.chunk
    std::vector<Tensor> pieces;
    for (int64_t i = 0; i < chunks; ++i) pieces.push_back(narrow_checked("chunk", x, a, 0, 0));
    return pieces;
  }
  // Pieces of ceil(size / chunks): possibly fewer than `chunks`, as torch.chunk.
  const int64_t piece = (size + chunks - 1) / chunks;
  std::vector<Tensor> pieces;
  for (int64_t start = 0; start < size; start += piece)
    pieces.push_back(narrow_checked("chunk", x, a, start, std::min(piece, size - start)));
  return pieces;
}

Tensor expand(const Tensor& x, const Shape& shape) {
  const Shape& s = x.shape();
  TG_CHECK(shape.size() >= s.size(), "expand: cannot expand shape {} to {} (fewer axes)",
           shape_str(s), shape_str(shape));
  const size_t lead = shape.size() - s.size();
  const std::vector<int64_t> x_strides = contiguous_strides(s);
  Shape out_shape(shape.size());
  std::vector<int64_t> src(shape.size(), 0);  // stride 0 repeats along expanded axes
  for (size_t i = 0; i < shape.size(); ++i) {
    if (i < lead) {
      TG_CHECK(shape[i] >= 0, "expand: cannot expand shape {} to {} (size {} for new axis {})",
               shape_str(s), shape_str(shape), shape[i], i);
      out_shape[i] = shape[i];
      continue;
    }
    const int64_t have = s[i - lead];
    const int64_t want = shape[i] == -1 ? have : shape[i];
    TG_CHECK(want == have || (have == 1 && want >= 0),
             "expand: cannot expand shape {} to {} (axis {}: {} vs {})", shape_str(s),
             shape_str(shape), i, have, shape[i]);
    out_shape[i] = want;
    if (want == have) src[i] = x_strides[i - lead];
  }
  Tensor out = empty(out_shape, x.dtype());
  copy_strided(x, 0, src, out, 0, contiguous_strides(out_shape), out_shape);
  // The engine sums the gradient over the expanded axes back to x's shape.
  record("expand", out, {&x}, [](Node& n, const Tensor& dout) { n.accumulate(0, dout); });
  return out;
}

}  // namespace tg
