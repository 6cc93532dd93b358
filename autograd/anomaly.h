#pragma once
// Anomaly mode, as torch.autograd.detect_anomaly: while on, every op's output is checked for
// NaN/Inf right after its forward (in record()), and every gradient a node's rule produces is
// checked before it is accumulated (in Node::accumulate). The first non-finite value throws
// tg::Error naming the op and the shapes. Off by default: then the only cost is one load of a flag.
#include <cstddef>

#include "autograd/tensor.h"

namespace tg {

/// True while anomaly mode is on (process-wide, as in PyTorch).
bool is_anomaly_enabled();
void set_detect_anomaly(bool enabled);

/// Turns anomaly mode on for its scope, as torch.autograd.detect_anomaly().
class DetectAnomalyGuard {
 public:
  explicit DetectAnomalyGuard(bool enabled = true) : prev_(is_anomaly_enabled()) { set_detect_anomaly(enabled); }
  ~DetectAnomalyGuard() { set_detect_anomaly(prev_); }
  DetectAnomalyGuard(const DetectAnomalyGuard&) = delete;
  DetectAnomalyGuard& operator=(const DetectAnomalyGuard&) = delete;

 private:
  bool prev_;
};

namespace detail {
/// "NaN" or "Inf" for the first non-finite value of a floating tensor, null when all are finite
/// (or the tensor is not floating).
const char* first_non_finite(const Tensor& t);
/// Throws "anomaly: <op> forward produced NaN in its output of shape [..]" when `out` has one.
void check_forward_anomaly(const char* op, const Tensor& out);
/// Throws "anomaly: <op> backward produced NaN in the gradient of input i (shape [..])".
void check_backward_anomaly(const char* op, size_t input, const Tensor& grad);
}  // namespace detail

}  // namespace tg
