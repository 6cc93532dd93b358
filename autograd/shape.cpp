#include "autograd/shape.h"

#include <algorithm>

#include "autograd/error.h"

namespace tg {

int64_t numel(const Shape& shape) {
  int64_t n = 1;
  bool empty = false;  // a zero size makes the count 0, however large the other sizes
  for (int64_t s : shape) {
    if (s < 0) fail("numel: negative size in shape {}", shape_str(shape));
    empty |= s == 0;
  }
  if (empty) return 0;
  for (int64_t s : shape)
    if (__builtin_mul_overflow(n, s, &n))
      fail("numel: the shape {} has more elements than int64 can count", shape_str(shape));
  return n;
}

std::string shape_str(const Shape& shape) { return fmt::format("[{}]", fmt::join(shape, ", ")); }

std::vector<int64_t> contiguous_strides(const Shape& shape) {
  std::vector<int64_t> strides(shape.size());
  int64_t s = 1;
  for (size_t i = shape.size(); i-- > 0;) {
    strides[i] = s;
    // Only a shape with a zero size can overflow here (numel() refuses the others), and a
    // tensor without elements never uses its strides: the wrapped value is harmless, not UB.
    (void)__builtin_mul_overflow(s, shape[i], &s);
  }
  return strides;
}

Shape broadcast_shapes(const Shape& a, const Shape& b, const char* op) {
  size_t rank = std::max(a.size(), b.size());
  Shape out(rank);
  for (size_t i = 0; i < rank; ++i) {
    int64_t da = i < rank - a.size() ? 1 : a[i - (rank - a.size())];
    int64_t db = i < rank - b.size() ? 1 : b[i - (rank - b.size())];
    if (da != db && da != 1 && db != 1)
      fail("{}: shapes {} and {} do not broadcast (axis {}: {} vs {})", op, shape_str(a),
           shape_str(b), i, da, db);
    out[i] = da == 1 ? db : da;
  }
  return out;
}

bool broadcasts_to(const Shape& from, const Shape& to) {
  if (from.size() > to.size()) return false;
  size_t lead = to.size() - from.size();
  for (size_t i = 0; i < from.size(); ++i)
    if (from[i] != to[lead + i] && from[i] != 1) return false;
  return true;
}

int64_t normalize_axis(int64_t axis, int64_t rank, const char* op) {
  int64_t r = rank == 0 ? 1 : rank;  // a scalar accepts axis 0 and -1, as PyTorch does
  if (axis < -r || axis >= r)
    fail("{}: axis {} is out of range for a tensor of rank {}", op, axis, rank);
  return axis < 0 ? axis + r : axis;
}

void check_sizes(const Shape& shape, const char* op) {
  for (int64_t s : shape)
    if (s < 0) fail("{}: negative size in shape {}", op, shape_str(shape));
}

}  // namespace tg
