#pragma once
// Shapes: row-major sizes, NumPy broadcasting, axis normalisation.
#include <fmt/format.h>
#include <fmt/ranges.h>

#include <cstdint>
#include <string>
#include <vector>

namespace tg {

using Shape = std::vector<int64_t>;

/// Product of the sizes (1 for a scalar shape []).
int64_t numel(const Shape& shape);
/// "[2, 3, 4]".
std::string shape_str(const Shape& shape);
/// Row-major strides in elements.
std::vector<int64_t> contiguous_strides(const Shape& shape);
/// NumPy broadcast of two shapes; throws tg::Error naming `op` when they do not broadcast.
Shape broadcast_shapes(const Shape& a, const Shape& b, const char* op);
/// True when `from` broadcasts to `to` (sizes equal or 1, leading axes may be missing).
bool broadcasts_to(const Shape& from, const Shape& to);
/// Maps a possibly negative axis into [0, rank); throws tg::Error naming `op` when out of range.
int64_t normalize_axis(int64_t axis, int64_t rank, const char* op);
/// Checks sizes are >= 0; throws tg::Error naming `op` otherwise.
void check_sizes(const Shape& shape, const char* op);

}  // namespace tg
