#pragma once
// rope: rotary position embedding as a differentiable op, applied to queries and keys before any
// attention variant (as Llama, Mistral and Qwen2 do). The "rotate half" pairing of Hugging Face's
// Llama (x_i with x_{i + D/2}), with theta = rope_theta.
#include "autograd/tensor.h"

namespace tg {

struct RopeOptions {
  double theta = 10000.0;       ///< rope_theta: the base of the frequencies theta^(-2i/D)
  int64_t position_offset = 0;  ///< position of the first row when `positions` is not given
  Tensor positions;             ///< optional i64 [T] or [B, T]: each row's position (packed documents restart at 0)
};

/// x [B, T, H, D] (f32 or f64, D even) -> [B, T, H, D], each head vector of row (b, t) rotated by
/// its position. The gradient is the inverse rotation of the output's gradient.
Tensor rope(const Tensor& x, const RopeOptions& options = {});

}  // namespace tg
