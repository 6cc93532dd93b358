#include "ops/rope.h"

#include <cmath>
#include <memory>
#include <numbers>

#include "autograd/tape.h"
#include "ops/kernels/rope.h"

namespace tg {
namespace {

using InvFreq = std::shared_ptr<const std::vector<double>>;

// Rotates x (forward) or back (inverse, the gradient) with the positions of `o`, recorded: the
// gradient of a rotation is the opposite rotation, itself recorded (so create_graph differentiates
// it again).
Tensor rotate(const Tensor& x, const RopeOptions& o, const InvFreq& inv_freq, bool inverse) {
  const Shape& s = x.shape();
  Tensor y = empty(s, x.dtype());
  const int64_t* positions = o.positions.defined() ? o.positions.data<int64_t>() : nullptr;
  const int64_t b_stride = o.positions.defined() && o.positions.dim() == 2 ? s[1] : 0;
  const int64_t rotated = o.rotated_heads < 0 ? s[2] : o.rotated_heads;
  dispatch(x.dtype(), [&]<class T>() {
    kernels::rope_rotate<T>(x.data<T>(), y.data<T>(), s[0], s[1], s[2], s[3], inv_freq->data(), rotated, positions,
                            b_stride, o.position_offset, inverse);
  });
  record(inverse ? "rope backward" : "rope", y, {&x}, [o, inv_freq, inverse](Node& n, const Tensor& dout) {
    n.accumulate(0, rotate(dout, o, inv_freq, !inverse));
  });
  return y;
}

}  // namespace

void RopeScaling::validate(const std::string& what) const {
  TG_CHECK(rope_type == "default" || rope_type == "linear" || rope_type == "llama3",
           "{}: rope_type \"{}\" is not supported (supported: default, linear, llama3)", what, rope_type);
  if (rope_type == "default") return;
  TG_CHECK(std::isfinite(factor) && factor > 0, "{}: factor must be positive and finite, got {}", what, factor);
  if (rope_type != "llama3") return;
  TG_CHECK(std::isfinite(low_freq_factor) && std::isfinite(high_freq_factor) && low_freq_factor > 0 &&
               high_freq_factor > low_freq_factor,
           "{}: llama3 needs 0 < low_freq_factor < high_freq_factor, got {} and {}", what, low_freq_factor,
           high_freq_factor);
  TG_CHECK(original_max_position_embeddings > 0, "{}: original_max_position_embeddings must be positive, got {}",
           what, original_max_position_embeddings);
}

std::vector<double> rope_inv_freq(int64_t D, double theta, const RopeScaling& scaling) {
  scaling.validate();
  std::vector<double> f(size_t(D / 2));
  for (int64_t i = 0; i < D / 2; ++i) f[size_t(i)] = std::pow(theta, -2.0 * double(i) / double(D));
  if (scaling.rope_type == "linear") {
    for (double& v : f) v /= scaling.factor;
  } else if (scaling.rope_type == "llama3") {
    const double old_len = double(scaling.original_max_position_embeddings);
    const double low_freq_wavelen = old_len / scaling.low_freq_factor;    // longer: scaled down
    const double high_freq_wavelen = old_len / scaling.high_freq_factor;  // shorter: kept
    for (double& v : f) {
      const double wavelen = 2 * std::numbers::pi / v;
      if (wavelen > low_freq_wavelen) {
        v /= scaling.factor;
      } else if (wavelen >= high_freq_wavelen) {
        const double smooth = (old_len / wavelen - scaling.low_freq_factor) /
                              (scaling.high_freq_factor - scaling.low_freq_factor);
        v = (1 - smooth) * v / scaling.factor + smooth * v;
      }
    }
  }
  return f;
}

Tensor rope(const Tensor& x, const RopeOptions& o) {
  TG_CHECK(x.defined(), "rope: the input tensor is undefined");
  TG_CHECK(is_floating(x.dtype()), "rope: expected a floating tensor (f32 or f64), got {} of shape {}", x.dtype(),
           shape_str(x.shape()));
  TG_CHECK(x.dim() == 4, "rope: expected x of shape [B, T, H, D], got {}", shape_str(x.shape()));
  TG_CHECK(x.shape()[3] % 2 == 0, "rope: the head width D must be even, got x of shape {}", shape_str(x.shape()));
  TG_CHECK(std::isfinite(o.theta) && o.theta > 0, "rope: theta must be positive and finite, got {}", o.theta);
  TG_CHECK(o.position_offset >= 0, "rope: position_offset must be >= 0, got {}", o.position_offset);
  TG_CHECK(o.rotated_heads >= -1 && o.rotated_heads <= x.shape()[2],
           "rope: rotated_heads must be -1 (all) or in [0, {}] for x of shape {}, got {}", x.shape()[2],
           shape_str(x.shape()), o.rotated_heads);
  o.scaling.validate("rope: scaling");
  if (o.positions.defined()) {
    const Shape& p = o.positions.shape();
    const int64_t B = x.shape()[0], T = x.shape()[1];
    TG_CHECK(o.positions.dtype() == DType::i64 &&
                 ((p.size() == 1 && p[0] == T) || (p.size() == 2 && p[0] == B && p[1] == T)),
             "rope: positions must be i64 of shape [{}] or [{}, {}] for x of shape {}, got {} {}", T, B, T,
             shape_str(x.shape()), o.positions.dtype(), shape_str(p));
  }
  auto inv_freq = std::make_shared<const std::vector<double>>(rope_inv_freq(x.shape()[3], o.theta, o.scaling));
  return rotate(x, o, inv_freq, /*inverse=*/false);
}

}  // namespace tg
