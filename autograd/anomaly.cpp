#include "autograd/anomaly.h"

#include <atomic>
#include <cmath>

#include "autograd/error.h"

namespace tg {
namespace {

std::atomic<bool> anomaly_enabled{false};

template <class T>
const char* scan(const T* p, int64_t n) {
  for (int64_t i = 0; i < n; ++i)
    if (!std::isfinite(p[i])) return std::isnan(p[i]) ? "NaN" : "Inf";
  return nullptr;
}

}  // namespace

bool is_anomaly_enabled() { return anomaly_enabled.load(std::memory_order_relaxed); }
void set_detect_anomaly(bool enabled) { anomaly_enabled.store(enabled, std::memory_order_relaxed); }

namespace detail {

const char* first_non_finite(const Tensor& t) {
  if (!t.defined()) return nullptr;
  if (t.dtype() == DType::f32) return scan(t.data<float>(), t.numel());
  if (t.dtype() == DType::f64) return scan(t.data<double>(), t.numel());
  return nullptr;
}

void check_forward_anomaly(const char* op, const Tensor& out) {
  if (const char* what = first_non_finite(out))
    fail("anomaly: {} forward produced {} in its output of shape {}", op, what, shape_str(out.shape()));
}

void check_backward_anomaly(const char* op, size_t input, const Tensor& grad) {
  if (const char* what = first_non_finite(grad))
    fail("anomaly: {} backward produced {} in the gradient of input {} (shape {})", op, what, input,
         shape_str(grad.shape()));
}

}  // namespace detail
}  // namespace tg
