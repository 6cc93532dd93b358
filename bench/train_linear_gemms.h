#pragma once
// The products the linear layers of one training step run, at a workload's shapes: a GPT's or
// the encoder's blocks (q/k/v C -> 3C, output projection C -> C, MLP C -> 4C and 4C -> C) or a
// Llama's (q/k/v C -> C + 2·Hkv·D fused, as tapegrad runs them, o_proj C -> C, SwiGLU's gate and
// up C -> I and down I -> C), and a head (C -> V), each forward y = x · Wᵀ and backward dx = dy · W, dW = dyᵀ · x, run as
// tg::linear runs them (ops/matmul.cpp): the forward product split into panels over the threads,
// the two backward ones side by side, each whole on its thread. Timed alone, they are the
// ceiling of a train step's speed: a step also runs attention, norms, activations, the loss and
// the optimizer. Used by bench_gemm (BM_train_linear_gemms) and bench/compare's tapegrad worker
// (its "linear_gemms" request, timed beside each training workload).
#include <algorithm>
#include <cstdint>
#include <vector>

#include "ops/kernels/gemm.h"
#include "ops/kernels/parallel.h"

namespace tg::bench {

struct TrainShapes {
  int64_t rows;    ///< tokens per step: batch · block
  int64_t C;       ///< n_embd
  int64_t layers;  ///< blocks
  int64_t head;    ///< head outputs (vocabulary); 0: none (the encoder's 2-class head on pooled rows)
  int64_t qkv = 0;     ///< the fused q/k/v projection's outputs; 0: 3C
  int64_t mlp = 0;     ///< the MLP's width; 0: 4C
  bool gated = false;  ///< SwiGLU: two C -> mlp products (gate and up) instead of one

  int64_t qkv_width() const { return qkv ? qkv : 3 * C; }
  int64_t mlp_width() const { return mlp ? mlp : 4 * C; }
  /// Model FLOPs of the products: 3 GEMMs of 2 · rows · in · out per linear layer.
  double flops() const {
    double per_layer = 2.0 * rows * C * (qkv_width() + C + (gated ? 3 : 2) * mlp_width());
    return 3 * (layers * per_layer + 2.0 * rows * C * head);
  }
};

/// Buffers for run(): inputs filled once and never written (no value grows over repeats).
class TrainLinearGemms {
 public:
  explicit TrainLinearGemms(const TrainShapes& t) : t_(t) {
    const int64_t wide = std::max({t.qkv_width(), t.mlp_width(), t.head});
    x_.assign(t.rows * wide, 0.5f), w_.assign(wide * wide, 0.25f);
    y_.resize(t.rows * wide), dx_.resize(t.rows * wide), dw_.resize(wide * wide);
  }

  /// One training step's linear-layer products.
  void run() {
    const int64_t C = t_.C, I = t_.mlp_width();
    for (int64_t l = 0; l < t_.layers; ++l) {
      linear(C, t_.qkv_width()), linear(C, C), linear(C, I), linear(I, C);
      if (t_.gated) linear(C, I);
    }
    if (t_.head) linear(C, t_.head);
  }

  const float* result() const { return dw_.data(); }

 private:
  void linear(int64_t in, int64_t out) {
    using kernels::gemm;
    const int64_t m = t_.rows;
    gemm<float>(false, true, m, out, in, 1.f, x_.data(), in, w_.data(), in, 0.f, y_.data(), out);
    kernels::parallel_invoke(
        [&] { gemm<float>(false, false, m, in, out, 1.f, y_.data(), out, w_.data(), in, 0.f, dx_.data(), in); },
        [&] { gemm<float>(true, false, out, in, m, 1.f, y_.data(), out, x_.data(), in, 0.f, dw_.data(), in); });
  }

  TrainShapes t_;
  std::vector<float> x_, w_, y_, dx_, dw_;
};

}  // namespace tg::bench
