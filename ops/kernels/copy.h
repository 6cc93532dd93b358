#pragma once
// Copies between layouts: strided reads and writes (permute, narrow, slice, expand, cat and
// split pieces), row gathers (index_select, embedding) and their deterministic scatter-add.
// Instantiated for float, double, int64_t and bool (scatter_add_rows: float and double).
#include <cstdint>
#include <vector>

namespace tg::kernels {

/// For every index i of `shape`: dst[i · dst_strides] = src[i · src_strides] (strides in
/// elements; a source stride may be 0 to broadcast). Destination elements must be distinct.
/// Axes that are contiguous in both are merged first, so a copy of whole rows is a memcpy.
template <class T>
void strided_copy(const T* src, const std::vector<int64_t>& src_strides, T* dst,
                  const std::vector<int64_t>& dst_strides, const std::vector<int64_t>& shape);

/// out[o, j, :] = in[o, index[j], :], with in [outer, axis_size, inner] and
/// out [outer, n_index, inner]. Indices must be in [0, axis_size) (checked by the op).
template <class T>
void gather_rows(const T* in, int64_t outer, int64_t axis_size, int64_t inner, const int64_t* index,
                 int64_t n_index, T* out);

/// out[o, index[j], :] += in[o, j, :], with in [outer, n_index, inner] and
/// out [outer, axis_size, inner]. Repeated indices add up in j order; threads split the work
/// over (o, column block), never over j, so the sums do not depend on the thread count.
template <class T>
void scatter_add_rows(const T* in, int64_t outer, int64_t n_index, int64_t inner,
                      const int64_t* index, int64_t axis_size, T* out);

}  // namespace tg::kernels
