#include "ops/kernels/gemm.h"

#include <cblas.h>
#include <tbb/parallel_for.h>

#include <algorithm>
#include <functional>
#include <numeric>
#include <vector>

#include "ops/kernels/parallel.h"
#include "ops/kernels/tsan_annotate.h"

namespace tg::kernels {
namespace {

// BLAS takes 32-bit sizes; row-major leading dimensions must be >= 1 even for empty matrices.
blasint ld(int64_t v) { return static_cast<blasint>(v < 1 ? 1 : v); }

// Under ThreadSanitizer: what BLAS reads (A, B) and writes (C), declared before and after the
// call, so a race through BLAS is reported even if BLAS takes a lock inside.
template <class T>
void tsan_gemm_access(bool ta, bool tb, int64_t m, int64_t n, int64_t k, const T* a, int64_t lda,
                      const T* b, int64_t ldb, const T* c, int64_t ldc) {
  tsan_matrix_access(a, ta ? k : m, ta ? m : k, lda, false);
  tsan_matrix_access(b, tb ? n : k, tb ? k : n, ldb, false);
  tsan_matrix_access(c, m, n, ldc, true);
}

// beta = 0: C's rows zeroed here, then BLAS adds the product with beta = 1. OpenBLAS's own
// beta pass (sgemm_beta) is a scalar loop over C: measured on the dev machine, one thread,
// [768, 384] = [768, 128] · [128, 384] took 1045 us with beta 0 against 930 us zeroed first, and
// a [64, 64] · [64, 32]-sized attention product 5.37 against 4.13 us. Zeroing writes exact
// zeros whatever C held (NaN included), as beta = 0 does.
// With `bias` (n values), C's rows are set to it instead and kept by beta = 1 (addmm's bias,
// written by the same task that adds the product, while those rows are in its cache).
template <class T>
T init_rows_for_beta(T beta, int64_t m, int64_t n, T* c, int64_t ldc, const T* bias) {
  if (bias) {
    for (int64_t i = 0; i < m; ++i) std::copy(bias, bias + n, c + i * ldc);
    return T(1);
  }
  if (beta != T(0)) return beta;
  for (int64_t i = 0; i < m; ++i) std::fill(c + i * ldc, c + i * ldc + n, T(0));
  return T(1);
}

void blas(bool ta, bool tb, int64_t m, int64_t n, int64_t k, float alpha, const float* a,
          int64_t lda, const float* b, int64_t ldb, float beta, float* c, int64_t ldc,
          const float* bias = nullptr) {
  tsan_gemm_access(ta, tb, m, n, k, a, lda, b, ldb, c, ldc);
  beta = init_rows_for_beta(beta, m, n, c, ldc, bias);
  cblas_sgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans,
              blasint(m), blasint(n), blasint(k), alpha, a, ld(lda), b, ld(ldb), beta, c, ld(ldc));
  tsan_gemm_access(ta, tb, m, n, k, a, lda, b, ldb, c, ldc);
}

void blas(bool ta, bool tb, int64_t m, int64_t n, int64_t k, double alpha, const double* a,
          int64_t lda, const double* b, int64_t ldb, double beta, double* c, int64_t ldc,
          const double* bias = nullptr) {
  tsan_gemm_access(ta, tb, m, n, k, a, lda, b, ldb, c, ldc);
  beta = init_rows_for_beta(beta, m, n, c, ldc, bias);
  cblas_dgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans,
              blasint(m), blasint(n), blasint(k), alpha, a, ld(lda), b, ld(ldb), beta, c, ld(ldc));
  tsan_gemm_access(ta, tb, m, n, k, a, lda, b, ldb, c, ldc);
}

void gemv(bool trans, int64_t m, int64_t n, float alpha, const float* a, int64_t lda, const float* x,
          int64_t incx, float beta, float* y, int64_t incy) {
  cblas_sgemv(CblasRowMajor, trans ? CblasTrans : CblasNoTrans, blasint(m), blasint(n), alpha, a, ld(lda), x,
              blasint(incx), beta, y, blasint(incy));
}

void gemv(bool trans, int64_t m, int64_t n, double alpha, const double* a, int64_t lda, const double* x,
          int64_t incx, double beta, double* y, int64_t incy) {
  cblas_dgemv(CblasRowMajor, trans ? CblasTrans : CblasNoTrans, blasint(m), blasint(n), alpha, a, ld(lda), x,
              blasint(incx), beta, y, blasint(incy));
}

// A product with a single row or column of C as a matrix-vector product: sgemm would pack the
// whole matrix operand on every call, which costs more than the product itself (a KV-cached
// decoding step is all such products). beta = 0 zeroes C first, so whatever an empty buffer
// held (NaN bits included) never reaches the result.
template <class T>
bool gemm_as_gemv(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, T alpha, const T* a,
                  int64_t lda, const T* b, int64_t ldb, T beta, T* c, int64_t ldc) {
  if (m != 1 && n != 1) return false;
  if (m == 1) {
    // c[0, :] (n) = op(B)ᵀ · a: op(A)'s one row is a row of A, or a column of A stored [k, 1].
    if (beta == T(0)) std::fill(c, c + n, T(0));
    const int64_t inca = trans_a ? lda : 1;
    if (trans_b)  // B stored [n, k]: c = B · a
      gemv(false, n, k, alpha, b, ldb, a, inca, beta == T(0) ? T(1) : beta, c, 1);
    else  // B stored [k, n]: c = Bᵀ · a
      gemv(true, k, n, alpha, b, ldb, a, inca, beta == T(0) ? T(1) : beta, c, 1);
    return true;
  }
  // n == 1: c[:, 0] (m, stride ldc) = op(A) · b, b being op(B)'s one column.
  if (beta == T(0))
    for (int64_t i = 0; i < m; ++i) c[i * ldc] = T(0);
  const int64_t incb = trans_b ? 1 : ldb;
  gemv(trans_a, trans_a ? k : m, trans_a ? m : k, alpha, a, lda, b, incb, beta == T(0) ? T(1) : beta, c, ldc);
  return true;
}

// Work per parallel task: a few microseconds of GEMM, so tiny products are grouped.
constexpr int64_t kTaskFlops = int64_t(1) << 18;

// Panels are multiples of this many rows or columns (the micro-kernels' tile sizes divide it).
constexpr int64_t kPanelAlign = 32;

// How many panels a product of `flops` with `extent` rows (or columns) to split gets: one per
// thread, twice that for large products so a core slowed by other work does not hold up the
// rest; never panels smaller than kSplitGemmFlops or kPanelAlign.
int64_t panel_count(int64_t flops, int64_t extent) {
  const int64_t threads = get_num_threads();
  if (threads == 1 || flops < kSplitGemmFlops || in_parallel_region()) return 1;
  int64_t panels = flops >= 16 * kSplitGemmFlops * threads ? 2 * threads : threads;
  panels = std::min(panels, flops / kSplitGemmFlops);
  return std::max<int64_t>(1, std::min(panels, extent / kPanelAlign));
}

}  // namespace

namespace {

// gemm, or with `bias` [n] gemm_bias (beta ignored then: C = bias rows + alpha · op(A) · op(B)).
template <class T>
void gemm_impl(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, T alpha, const T* a,
               int64_t lda, const T* b, int64_t ldb, T beta, T* c, int64_t ldc, const T* bias) {
  if (m == 0 || n == 0) return;
  if (bias && (k == 0 || m == 1 || n == 1)) {  // the paths below that do not call blas()
    init_rows_for_beta(beta, m, n, c, ldc, bias);
    bias = nullptr, beta = T(1);
  }
  if (k == 0) {
    // An empty inner product: C = beta * C. Done here so BLAS never sees k = 0.
    for (int64_t i = 0; i < m; ++i)
      for (int64_t j = 0; j < n; ++j) c[i * ldc + j] = beta == T(0) ? T(0) : beta * c[i * ldc + j];
    return;
  }
  if (gemm_as_gemv(trans_a, trans_b, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)) return;
  // Split the longer side of C: rows take rows of op(A), columns take columns of op(B).
  const bool by_rows = m >= n;
  const int64_t extent = by_rows ? m : n;
  const int64_t panels = panel_count(2 * m * n * k, extent);
  if (panels == 1) {
    blas(trans_a, trans_b, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc, bias);
    return;
  }
  // Panel p covers [lo, hi) of the split side, boundaries rounded to kPanelAlign.
  auto bound = [&](int64_t p) {
    return p == panels ? extent : (extent * p / panels + kPanelAlign / 2) / kPanelAlign * kPanelAlign;
  };
  tbb::parallel_for(int64_t(0), panels, [&](int64_t p) {
    detail::ParallelRegion region;
    const int64_t lo = bound(p), hi = bound(p + 1);
    if (hi <= lo) return;
    if (by_rows)  // rows lo..hi of op(A): row lo of A, or column lo when A is stored [k, m]
      blas(trans_a, trans_b, hi - lo, n, k, alpha, a + (trans_a ? lo : lo * lda), lda, b, ldb, beta,
           c + lo * ldc, ldc, bias);
    else  // columns lo..hi of op(B): column lo of B, or row lo when B is stored [n, k]
      blas(trans_a, trans_b, m, hi - lo, k, alpha, a, lda, b + (trans_b ? lo * ldb : lo), ldb, beta, c + lo,
           ldc, bias ? bias + lo : nullptr);
  });
}

}  // namespace

template <class T>
void gemm(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, T alpha, const T* a,
          int64_t lda, const T* b, int64_t ldb, T beta, T* c, int64_t ldc) {
  gemm_impl<T>(trans_a, trans_b, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc, nullptr);
}

template <class T>
void gemm_bias(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, const T* a, int64_t lda,
               const T* b, int64_t ldb, const T* bias, T* c, int64_t ldc) {
  gemm_impl<T>(trans_a, trans_b, m, n, k, T(1), a, lda, b, ldb, T(1), c, ldc, bias);
}

template <class T>
void gemm_batched(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, T alpha,
                  const T* const* a, int64_t lda, const T* const* b, int64_t ldb, T beta,
                  T* const* c, int64_t ldc, int64_t batch) {
  if (batch <= 0 || m == 0 || n == 0) return;

  // Runs of products writing the same C, in batch order. The usual case (distinct, increasing
  // C pointers, as a forward pass has) needs no sort.
  std::vector<int64_t> order(static_cast<size_t>(batch));
  std::iota(order.begin(), order.end(), int64_t(0));
  bool increasing = true;
  for (int64_t i = 1; i < batch && increasing; ++i) increasing = std::less<T*>()(c[i - 1], c[i]);
  if (!increasing)
    std::stable_sort(order.begin(), order.end(),
                     [&](int64_t x, int64_t y) { return std::less<T*>()(c[x], c[y]); });
  std::vector<int64_t> run_start{0};
  for (int64_t i = 1; i < batch; ++i)
    if (c[order[i]] != c[order[i - 1]]) run_start.push_back(i);
  run_start.push_back(batch);
  const int64_t runs = static_cast<int64_t>(run_start.size()) - 1;

  auto run = [&](int64_t r) {
    for (int64_t j = run_start[r]; j < run_start[r + 1]; ++j) {
      int64_t i = order[j];
      gemm(trans_a, trans_b, m, n, k, alpha, a[i], lda, b[i], ldb, j == run_start[r] ? beta : T(1),
           c[i], ldc);
    }
  };

  // Why kParallelBatchFlops = 2^24 (16.8 MFLOP per product): measured on the 2-core dev machine
  // (then with OpenBLAS's own threads splitting each product), batches of 3, 5 and 24 square
  // sgemms: whole products per TBB task were 1.3-3x faster from 2^19 to 2^22 FLOPs, about even
  // at 2^24-2^25, and at 2^27 the one-by-one loop won for odd batches (0.5x for 5 products: a
  // core idles through the last round), while it never lost much below.
  const int64_t flops = 2 * m * n * k;
  if (runs > 1 && flops < kParallelBatchFlops && get_num_threads() > 1 && !in_parallel_region()) {
    int64_t grain = std::max<int64_t>(1, kTaskFlops / std::max<int64_t>(1, flops));
    parallel_for(0, runs, grain, [&](int64_t lo, int64_t hi) {
      for (int64_t r = lo; r < hi; ++r) run(r);
    });
  } else {
    for (int64_t r = 0; r < runs; ++r) run(r);
  }
}

template <class T>
void column_sums(const T* in, int64_t rows, int64_t cols, T* out, bool accumulate) {
  // Parallel over blocks of columns; each column is summed over the rows in order, so the
  // result does not depend on how the blocks are spread over threads.
  constexpr int64_t kBlock = 256;
  int64_t blocks = (cols + kBlock - 1) / kBlock;
  parallel_for(0, blocks, rows_grain(rows * kBlock), [&](int64_t lo, int64_t hi) {
    T acc[kBlock];
    for (int64_t blk = lo; blk < hi; ++blk) {
      int64_t c0 = blk * kBlock, w = std::min(kBlock, cols - c0);
      for (int64_t j = 0; j < w; ++j) acc[j] = accumulate ? out[c0 + j] : T(0);
      for (int64_t r = 0; r < rows; ++r) {
        const T* row = in + r * cols + c0;
        for (int64_t j = 0; j < w; ++j) acc[j] += row[j];
      }
      std::copy(acc, acc + w, out + c0);
    }
  });
}

#define TG_INSTANTIATE_GEMM(T)                                                                 \
  template void gemm<T>(bool, bool, int64_t, int64_t, int64_t, T, const T*, int64_t, const T*, \
                        int64_t, T, T*, int64_t);                                              \
  template void gemm_batched<T>(bool, bool, int64_t, int64_t, int64_t, T, const T* const*,     \
                                int64_t, const T* const*, int64_t, T, T* const*, int64_t,      \
                                int64_t);                                                      \
  template void gemm_bias<T>(bool, bool, int64_t, int64_t, int64_t, const T*, int64_t, const T*, \
                             int64_t, const T*, T*, int64_t);                                   \
  template void column_sums<T>(const T*, int64_t, int64_t, T*, bool);
TG_INSTANTIATE_GEMM(float)
TG_INSTANTIATE_GEMM(double)
#undef TG_INSTANTIATE_GEMM

}  // namespace tg::kernels
