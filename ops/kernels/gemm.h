#pragma once
// GEMM through OpenBLAS (sgemm for float, dgemm for double), row-major. Transposes are BLAS
// flags: an operand stored transposed is read in place, never copied. beta = 1 accumulates
// into C, which the gradient rules use to add products into one buffer.
#include <cstdint>

namespace tg::kernels {

/// C[m, n] = alpha * op(A) · op(B) + beta * C, all row-major.
/// op(A) is [m, k]: A is stored [m, k] with row stride lda, or [k, m] when trans_a.
/// op(B) is [k, n]: B is stored [k, n] with row stride ldb, or [n, k] when trans_b.
/// C is [m, n] with row stride ldc. With k == 0, C = beta * C (beta 0 writes zeros, whatever C
/// held before, as BLAS does for any k). A product of at least kSplitGemmFlops splits C into
/// panels (of rows, or of columns when C is wider than tall) run in parallel, each a
/// single-threaded BLAS call; inside a parallel_for task it runs whole. The panels depend only on
/// the sizes and the thread setting, so results repeat bit for bit.
template <class T>
void gemm(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, T alpha, const T* a,
          int64_t lda, const T* b, int64_t ldb, T beta, T* c, int64_t ldc);

/// C[m, n] = op(A) · op(B) + bias broadcast over the rows (bias [n]; torch.addmm), whatever C
/// held. Each panel writes its rows of bias and adds its product (beta = 1) in one task, so the
/// rows are still in that core's cache; the same panels, so the same results, as gemm().
template <class T>
void gemm_bias(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, const T* a, int64_t lda,
               const T* b, int64_t ldb, const T* bias, T* c, int64_t ldc);

/// `batch` products of the same sizes and flags as gemm():
///   C[i] = alpha * op(A[i]) · op(B[i]) + beta * C[i]   for i in [0, batch).
/// A and B pointers may repeat (a broadcast operand). C pointers may repeat too: products that
/// write the same C run one after the other in batch order, the first with `beta` and the rest
/// with beta = 1, so they add up (a gradient summed over a broadcast batch axis) in an order that
/// does not depend on the thread count. Distinct C pointers must not overlap.
/// Small products run in parallel over the distinct C (each whole on its thread); large ones run
/// one after another, each split into panels (see kParallelBatchFlops).
template <class T>
void gemm_batched(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, T alpha,
                  const T* const* a, int64_t lda, const T* const* b, int64_t ldb, T beta,
                  T* const* c, int64_t ldc, int64_t batch);

/// Products with fewer floating-point operations (2·m·n·k) than this run in parallel over the
/// batch; larger ones run one at a time, each split into panels.
inline constexpr int64_t kParallelBatchFlops = int64_t(1) << 24;

/// A single product splits into parallel panels from this many floating-point operations (2·m·n·k);
/// below, a task's start-up (a few microseconds) would cost more than it saves.
inline constexpr int64_t kSplitGemmFlops = int64_t(1) << 21;

/// out[j] (+)= sum over r of in[r, j]: column sums of a [rows, cols] matrix, summed in row order
/// whatever the thread count (the bias gradient of linear). Adds to out when `accumulate`.
template <class T>
void column_sums(const T* in, int64_t rows, int64_t cols, T* out, bool accumulate = false);

}  // namespace tg::kernels
