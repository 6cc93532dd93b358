#include "ops/kernels/rope.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include "ops/kernels/parallel.h"

namespace tg::kernels {

template <class T>
void rope_rotate(const T* x, T* y, int64_t B, int64_t Tn, int64_t H, int64_t D, const double* inv_freq,
                 int64_t rotated_heads, const int64_t* positions, int64_t positions_b_stride, int64_t position_offset,
                 bool inverse) {
  const int64_t half = D / 2;
  const double sign = inverse ? -1.0 : 1.0;
  // One row (b, t) of H heads per iteration: its cos and sin are computed once for all heads.
  parallel_for(0, B * Tn, std::max<int64_t>(1, 4096 / std::max<int64_t>(1, H * D)), [&](int64_t lo, int64_t hi) {
    std::vector<T> c(static_cast<size_t>(half)), s(static_cast<size_t>(half));
    for (int64_t row = lo; row < hi; ++row) {
      const int64_t b = row / Tn, t = row % Tn;
      const double pos = double(positions ? positions[b * positions_b_stride + t] : position_offset + t);
      for (int64_t i = 0; i < half; ++i) {
        const double angle = pos * inv_freq[i];
        c[size_t(i)] = T(std::cos(angle));
        s[size_t(i)] = T(sign * std::sin(angle));
      }
      for (int64_t h = 0; h < rotated_heads; ++h) {
        const T* xr = x + (row * H + h) * D;
        T* yr = y + (row * H + h) * D;
        for (int64_t i = 0; i < half; ++i) {
          const T x1 = xr[i], x2 = xr[i + half];
          yr[i] = x1 * c[size_t(i)] - x2 * s[size_t(i)];
          yr[i + half] = x2 * c[size_t(i)] + x1 * s[size_t(i)];
        }
      }
      if (x != y) std::copy(x + (row * H + rotated_heads) * D, x + (row + 1) * H * D, y + (row * H + rotated_heads) * D);
    }
  });
}

template void rope_rotate<float>(const float*, float*, int64_t, int64_t, int64_t, int64_t, const double*, int64_t,
                                 const int64_t*, int64_t, int64_t, bool);
template void rope_rotate<double>(const double*, double*, int64_t, int64_t, int64_t, int64_t, const double*, int64_t,
                                  const int64_t*, int64_t, int64_t, bool);

}  // namespace tg::kernels
