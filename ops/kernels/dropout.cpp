#include "ops/kernels/dropout.h"

#include <cmath>

#include "ops/kernels/parallel.h"
#include "ops/kernels/philox.h"

namespace tg::kernels {
namespace {

// u = (bits >> 11) * 2^-53 exactly (philox_uniform<double>), so u >= p exactly when the 53-bit
// integer bits >> 11 reaches ceil(p * 2^53): an integer test the compiler can vectorise.
inline bool kept(uint32_t hi, uint32_t lo, int64_t threshold) {
  uint64_t bits = (uint64_t(hi) << 32) | lo;
  return static_cast<int64_t>(bits >> 11) >= threshold;
}

}  // namespace

void dropout_mask(uint64_t seed, uint64_t offset, double p, bool* keep, int64_t n) {
  auto threshold = static_cast<int64_t>(std::ceil(p * 9007199254740992.0));  // p * 2^53
  // One Philox block serves elements 2k and 2k+1, exactly as philox_uniform<double> splits it
  // (a test checks the two agree); computing it once per pair halves the cost.
  parallel_for(0, n / 2, 2048, [&](int64_t lo, int64_t hi) {
    for (int64_t k = lo; k < hi; ++k) {
      PhiloxBlock b = philox4x32(offset + static_cast<uint64_t>(k), seed);
      keep[2 * k] = kept(b[0], b[1], threshold);
      keep[2 * k + 1] = kept(b[2], b[3], threshold);
    }
  });
  if (n % 2 == 1) {
    PhiloxBlock b = philox4x32(offset + static_cast<uint64_t>(n / 2), seed);
    keep[n - 1] = kept(b[0], b[1], threshold);
  }
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
