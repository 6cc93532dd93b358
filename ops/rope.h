#pragma once
// rope: rotary position embedding as a differentiable op, applied to queries and keys before any
// attention variant (as Llama, Mistral and Qwen2 do). The "rotate half" pairing of Hugging Face's
// Llama (x_i with x_{i + D/2}), with theta = rope_theta and the frequencies rescaled as
// transformers' rope_scaling says ("linear", Llama 3's "llama3").
#include <string>
#include <vector>

#include "autograd/tensor.h"

namespace tg {

/// transformers' rope_scaling (rope_parameters in 5.x): how the frequencies theta^(-2i/D) are
/// changed to stretch a model to longer contexts.
///   default  unchanged
///   linear   every frequency divided by factor (positions interpolated)
///   llama3   Llama 3.1's bands: wavelengths 2π/f below original_max_position_embeddings /
///            high_freq_factor kept, above original_max_position_embeddings / low_freq_factor
///            divided by factor, and between them interpolated smoothly
struct RopeScaling {
  std::string rope_type = "default";  ///< "default", "linear" or "llama3"
  double factor = 1.0;
  double low_freq_factor = 1.0;                      ///< llama3
  double high_freq_factor = 4.0;                     ///< llama3
  int64_t original_max_position_embeddings = 8192;  ///< llama3
  /// tg::Error naming the bad field (`what` prefixes it, e.g. "config.json: rope_scaling").
  void validate(const std::string& what = "rope_scaling") const;
};

/// The D/2 frequencies of head width D (even): theta^(-2i/D), rescaled by `scaling`.
std::vector<double> rope_inv_freq(int64_t D, double theta, const RopeScaling& scaling = {});

struct RopeOptions {
  double theta = 10000.0;       ///< rope_theta: the base of the frequencies theta^(-2i/D)
  RopeScaling scaling;          ///< rope_scaling
  int64_t position_offset = 0;  ///< position of the first row when `positions` is not given
  Tensor positions;             ///< optional i64 [T] or [B, T]: each row's position (packed documents restart at 0)
  /// Rotate heads 0..rotated_heads-1 only and pass the others through (-1: every head): one pass
  /// over a fused projection [B, T, H + 2·Hkv, D] rotates its q and k heads and keeps v.
  int64_t rotated_heads = -1;
};

/// x [B, T, H, D] (f32 or f64, D even) -> [B, T, H, D], each head vector of row (b, t) rotated by
/// its position. The gradient is the inverse rotation of the output's gradient.
Tensor rope(const Tensor& x, const RopeOptions& options = {});

}  // namespace tg
