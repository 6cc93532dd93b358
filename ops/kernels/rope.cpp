#include "ops/kernels/rope.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include "ops/kernels/parallel.h"

namespace tg::kernels {

namespace {

// cos and sign·sin of pos·inv_freq[i] for i < half, in T (computed in double).
template <class T>
void rope_angles(double pos, const double* inv_freq, int64_t half, double sign, T* c, T* s) {
  for (int64_t i = 0; i < half; ++i) {
    const double angle = pos * inv_freq[i];
    c[i] = T(std::cos(angle));
    s[i] = T(sign * std::sin(angle));
  }
}

}  // namespace

template <class T>
void rope_rotate(const T* x, T* y, int64_t B, int64_t Tn, int64_t H, int64_t D, const double* inv_freq,
                 int64_t rotated_heads, const int64_t* positions, int64_t positions_b_stride, int64_t position_offset,
                 bool inverse) {
  const int64_t half = D / 2;
  const double sign = inverse ? -1.0 : 1.0;
  // Positions offset + t, the same in every batch row: the angles of each t once, [Tn, half] each,
  // shared by the B rows (computing them per row costs more than the rotation itself).
  std::vector<T> table_cos, table_sin;
  if (positions == nullptr && B > 1) {
    table_cos.resize(size_t(Tn * half)), table_sin.resize(size_t(Tn * half));
    parallel_for(0, Tn, std::max<int64_t>(1, 256 / std::max<int64_t>(1, half)), [&](int64_t lo, int64_t hi) {
      for (int64_t t = lo; t < hi; ++t)
        rope_angles(double(position_offset + t), inv_freq, half, sign, table_cos.data() + t * half,
                    table_sin.data() + t * half);
    });
  }
  // One row (b, t) of H heads per iteration: its cos and sin serve all heads.
  parallel_for(0, B * Tn, std::max<int64_t>(1, 4096 / std::max<int64_t>(1, H * D)), [&](int64_t lo, int64_t hi) {
    std::vector<T> row_cos(static_cast<size_t>(half)), row_sin(static_cast<size_t>(half));
    for (int64_t row = lo; row < hi; ++row) {
      const int64_t b = row / Tn, t = row % Tn;
      const T *c = row_cos.data(), *s = row_sin.data();
      if (!table_cos.empty()) {
        c = table_cos.data() + t * half, s = table_sin.data() + t * half;
      } else {
        const double pos = double(positions ? positions[b * positions_b_stride + t] : position_offset + t);
        rope_angles(pos, inv_freq, half, sign, row_cos.data(), row_sin.data());
      }
      for (int64_t h = 0; h < rotated_heads; ++h) {
        const T* xr = x + (row * H + h) * D;
        T* yr = y + (row * H + h) * D;
        for (int64_t i = 0; i < half; ++i) {
          const T x1 = xr[i], x2 = xr[i + half];
          yr[i] = x1 * c[i] - x2 * s[i];
          yr[i + half] = x2 * c[i] + x1 * s[i];
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
