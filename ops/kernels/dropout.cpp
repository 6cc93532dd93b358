#include "ops/kernels/dropout.h"

#include "ops/kernels/parallel.h"
#include "ops/kernels/philox.h"

namespace tg::kernels {
namespace {

// The double philox_uniform draws from the 64 bits (hi, lo) of half a block.
inline double unit(uint32_t hi, uint32_t lo) {
  uint64_t bits = (uint64_t(hi) << 32) | lo;
  return static_cast<double>(bits >> 11) * (1.0 / 9007199254740992.0);
}

}  // namespace

void dropout_mask(uint64_t seed, uint64_t offset, double p, bool* keep, int64_t n) {
  // One Philox block serves elements 2k and 2k+1, exactly as philox_uniform<double> splits it
  // (a test checks the two agree); computing it once per pair halves the cost.
  int64_t pairs = (n + 1) / 2;
  parallel_for(0, pairs, 2048, [&](int64_t lo, int64_t hi) {
    for (int64_t k = lo; k < hi; ++k) {
      PhiloxBlock b = philox4x32(offset + static_cast<uint64_t>(k), seed);
      keep[2 * k] = unit(b[0], b[1]) >= p;
      if (2 * k + 1 < n) keep[2 * k + 1] = unit(b[2], b[3]) >= p;
    }
  });
}

template <class T>
void dropout_apply(const T* x, const bool* keep, T scale, T* y, int64_t n) {
  parallel_for(0, n, kElementwiseGrain, [&](int64_t lo, int64_t hi) {
    for (int64_t i = lo; i < hi; ++i) y[i] = x[i] * (keep[i] ? scale : T(0));
  });
}

template void dropout_apply<float>(const float*, const bool*, float, float*, int64_t);
template void dropout_apply<double>(const double*, const bool*, double, double*, int64_t);

}  // namespace tg::kernels
