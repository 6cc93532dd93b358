#pragma once
// Matrix products through BLAS: f32 by sgemm, f64 by dgemm. Transposes are BLAS flags, never
// copies; batched products broadcast their batch axes and run in parallel over the batch.
#include "autograd/tensor.h"

namespace tg {

/// Matrix product as torch.matmul for inputs of rank >= 2: a [..., n, k] @ b [..., k, m] ->
/// [..., n, m], batch axes broadcast. A rank-1 operand is treated as torch.matmul does.
Tensor matmul(const Tensor& a, const Tensor& b);
/// x [..., in] @ weight[out, in]^T + bias[out] -> [..., out], as torch.nn.functional.linear.
/// bias may be undefined.
Tensor linear(const Tensor& x, const Tensor& weight, const Tensor& bias = Tensor());
/// bias[out] + x [..., in] @ weight[in, out] -> [..., out]: torch.addmm(bias, x2d, weight) with
/// x's leading axes folded into the rows, as HF GPT-2's Conv1D computes it. One GEMM with the
/// bias written first (no separate add). bias may be undefined (then it is matmul).
Tensor addmm(const Tensor& bias, const Tensor& x, const Tensor& weight);

}  // namespace tg
