#include "ops/kernels/copy.h"

#include <algorithm>
#include <cstdlib>

#include "ops/kernels/parallel.h"

namespace tg::kernels {
namespace {

// Shape and the two stride sets after dropping size-1 axes and merging neighbours that are
// laid out contiguously in both source and destination.
struct Layout {
  std::vector<int64_t> size, src, dst;
};

Layout coalesce(const std::vector<int64_t>& shape, const std::vector<int64_t>& src,
                const std::vector<int64_t>& dst) {
  Layout l;
  for (size_t i = 0; i < shape.size(); ++i) {
    if (shape[i] == 1) continue;
    if (!l.size.empty() && l.src.back() == src[i] * shape[i] && l.dst.back() == dst[i] * shape[i]) {
      l.size.back() *= shape[i];
      l.src.back() = src[i];
      l.dst.back() = dst[i];
      continue;
    }
    l.size.push_back(shape[i]);
    l.src.push_back(src[i]);
    l.dst.push_back(dst[i]);
  }
  if (l.size.empty()) l = {{1}, {1}, {1}};  // one element
  return l;
}

// Copies `shape` by square tiles over axes p and `last`, where the source is contiguous along p
// but not along `last` (a transpose): reading a tile's source rows while writing its
// destination rows keeps both in cache, where a plain row walk reads a new cache line per
// element.
template <class T>
void tiled_copy(const T* src, T* dst, const Layout& l, size_t p) {
  constexpr int64_t kTile = 32;
  const size_t last = l.size.size() - 1;
  std::vector<size_t> others;  // the remaining axes, walked per tile
  for (size_t d = 0; d < last; ++d)
    if (d != p) others.push_back(d);
  int64_t outer = 1;
  for (size_t d : others) outer *= l.size[d];
  const int64_t P = l.size[p], L = l.size[last];
  const int64_t tp = (P + kTile - 1) / kTile, tl = (L + kTile - 1) / kTile;
  const int64_t sp = l.src[p], dp = l.dst[p], sl = l.src[last], dl = l.dst[last];
  parallel_for(0, outer * tp * tl, std::max<int64_t>(1, kElementwiseGrain / (kTile * kTile)),
               [&](int64_t lo, int64_t hi) {
                 for (int64_t u = lo; u < hi; ++u) {
                   int64_t o = u / (tp * tl), i0 = (u / tl) % tp * kTile, j0 = u % tl * kTile;
                   int64_t so = 0, dof = 0;
                   for (size_t k = others.size(); k-- > 0;) {
                     int64_t idx = o % l.size[others[k]];
                     o /= l.size[others[k]];
                     so += idx * l.src[others[k]];
                     dof += idx * l.dst[others[k]];
                   }
                   const int64_t i1 = std::min(P, i0 + kTile), j1 = std::min(L, j0 + kTile);
                   for (int64_t i = i0; i < i1; ++i)
                     for (int64_t j = j0; j < j1; ++j)
                       dst[dof + i * dp + j * dl] = src[so + i * sp + j * sl];
                 }
               });
}

}  // namespace

template <class T>
void strided_copy(const T* src, const std::vector<int64_t>& src_strides, T* dst,
                  const std::vector<int64_t>& dst_strides, const std::vector<int64_t>& shape) {
  int64_t total = 1;
  for (int64_t s : shape) total *= s;
  if (total == 0) return;
  const Layout l = coalesce(shape, src_strides, dst_strides);
  const size_t last = l.size.size() - 1;
  const int64_t len = l.size[last], ss = l.src[last], ds = l.dst[last];
  if (last > 0 && ss != 1 && ds == 1 && len > 1) {
    // The source's fastest axis is elsewhere: a transpose. Tile it with the last axis.
    size_t p = 0;
    for (size_t d = 1; d < last; ++d)
      if (std::abs(l.src[d]) < std::abs(l.src[p])) p = d;
    if (l.src[p] == 1 && l.size[p] > 1) return tiled_copy(src, dst, l, p);
  }

  // Parallel over flat element ranges; each range walks its rows with a running multi-index.
  parallel_for(0, total, kElementwiseGrain, [&](int64_t lo, int64_t hi) {
    std::vector<int64_t> idx(last);
    int64_t row = lo / len, col = lo % len, so = 0, dof = 0;
    for (size_t d = last; d-- > 0;) {
      idx[d] = row % l.size[d];
      row /= l.size[d];
      so += idx[d] * l.src[d];
      dof += idx[d] * l.dst[d];
    }
    for (int64_t pos = lo; pos < hi;) {
      int64_t n = std::min(len - col, hi - pos);
      const T* s = src + so + col * ss;
      T* t = dst + dof + col * ds;
      if (ss == 1 && ds == 1) {
        std::copy(s, s + n, t);
      } else {
        for (int64_t j = 0; j < n; ++j) t[j * ds] = s[j * ss];
      }
      pos += n;
      col = 0;
      // Next row: increment the multi-index over the outer axes.
      for (size_t d = last; d-- > 0;) {
        so += l.src[d];
        dof += l.dst[d];
        if (++idx[d] < l.size[d]) break;
        so -= idx[d] * l.src[d];
        dof -= idx[d] * l.dst[d];
        idx[d] = 0;
      }
    }
  });
}

template <class T>
void gather_rows(const T* in, int64_t outer, int64_t axis_size, int64_t inner, const int64_t* index,
                 int64_t n_index, T* out) {
  parallel_for(0, outer * n_index, rows_grain(inner), [&](int64_t lo, int64_t hi) {
    for (int64_t r = lo; r < hi; ++r) {
      int64_t o = r / n_index, j = r % n_index;
      const T* s = in + (o * axis_size + index[j]) * inner;
      std::copy(s, s + inner, out + r * inner);
    }
  });
}

template <class T>
void scatter_add_rows(const T* in, int64_t outer, int64_t n_index, int64_t inner,
                      const int64_t* index, int64_t axis_size, T* out) {
  // Column blocks of 64 elements: whole cache lines per task, so no two threads share one.
  constexpr int64_t kBlock = 64;
  const int64_t blocks = (inner + kBlock - 1) / kBlock;
  parallel_for(0, outer * blocks, rows_grain(n_index * std::min(kBlock, inner)),
               [&](int64_t lo, int64_t hi) {
                 for (int64_t u = lo; u < hi; ++u) {
                   int64_t o = u / blocks, c0 = (u % blocks) * kBlock;
                   int64_t w = std::min(kBlock, inner - c0);
                   for (int64_t j = 0; j < n_index; ++j) {
                     const T* s = in + (o * n_index + j) * inner + c0;
                     T* t = out + (o * axis_size + index[j]) * inner + c0;
                     for (int64_t c = 0; c < w; ++c) t[c] += s[c];
                   }
                 }
               });
}

#define TG_INSTANTIATE_COPY(T)                                                             \
  template void strided_copy<T>(const T*, const std::vector<int64_t>&, T*,                 \
                                const std::vector<int64_t>&, const std::vector<int64_t>&); \
  template void gather_rows<T>(const T*, int64_t, int64_t, int64_t, const int64_t*, int64_t, T*);
TG_INSTANTIATE_COPY(float)
TG_INSTANTIATE_COPY(double)
TG_INSTANTIATE_COPY(int64_t)
TG_INSTANTIATE_COPY(bool)
#undef TG_INSTANTIATE_COPY

template void scatter_add_rows<float>(const float*, int64_t, int64_t, int64_t, const int64_t*,
                                      int64_t, float*);
template void scatter_add_rows<double>(const double*, int64_t, int64_t, int64_t, const int64_t*,
                                       int64_t, double*);

}  // namespace tg::kernels
