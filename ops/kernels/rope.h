#pragma once
// Rotary position embedding (RoPE, Su et al. 2021) in the "rotate half" form of GPT-NeoX and
// Hugging Face's Llama: a head vector of width D is split into halves (x1, x2), and pair i
// (x1_i, x2_i) is rotated by the angle pos · inv_freq[i]:
//   y1 = x1 cos - x2 sin,   y2 = x2 cos + x1 sin.
// The inverse rotation (sin negated) is the transpose, hence also the gradient.
#include <cstdint>

namespace tg::kernels {

/// x, y: [B, T, H, D] contiguous (D even; y may be x); inv_freq: D/2 frequencies. Heads
/// 0..rotated_heads-1 of each row are rotated, the others copied. The position of (b, t) is
/// positions[b * positions_b_stride + t] when `positions` is given (positions_b_stride 0 shares
/// one row [T] across the batch), else position_offset + t. `inverse` rotates by -angle.
template <class T>
void rope_rotate(const T* x, T* y, int64_t B, int64_t Tn, int64_t H, int64_t D, const double* inv_freq,
                 int64_t rotated_heads, const int64_t* positions, int64_t positions_b_stride, int64_t position_offset,
                 bool inverse);

}  // namespace tg::kernels
