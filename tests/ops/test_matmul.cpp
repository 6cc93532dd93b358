// matmul, linear and addmm (and the GEMM kernel's gemv path): values against plain loops (f64, and f32 against f64), every rank and
// broadcast case, empty axes, gradients against hand-derived formulas, errors, the forward
// allocating only its output, and thread-count independence (bitwise). Finite-difference
// gradchecks of the same cases live in tools/gradcheck/cases_matmul.cpp.
#include "ops/kernels/gemm.h"
#include "ops/kernels/parallel.h"
#include "test_util.h"

namespace tg {
namespace {

using testing::uniform;

// torch.matmul by plain loops over to_vector(), in f64.
Tensor naive_matmul(const Tensor& a, const Tensor& b) {
  Shape as = a.shape(), bs = b.shape();
  const bool a1 = as.size() == 1, b1 = bs.size() == 1;
  if (a1) as.insert(as.begin(), 1);
  if (b1) bs.push_back(1);
  const int64_t n = as[as.size() - 2], k = as.back(), m = bs.back();
  Shape ab(as.begin(), as.end() - 2), bb(bs.begin(), bs.end() - 2);
  while (ab.size() < bb.size()) ab.insert(ab.begin(), 1);
  while (bb.size() < ab.size()) bb.insert(bb.begin(), 1);
  Shape batch(ab.size());
  for (size_t i = 0; i < ab.size(); ++i) batch[i] = ab[i] == 1 ? bb[i] : ab[i];
  std::vector<double> va = a.to_vector(), vb = b.to_vector(), out;
  for (int64_t flat = 0; flat < numel(batch); ++flat) {
    // Batch multi-index -> offsets into a and b (index 0 along their size-1 axes).
    int64_t rest = flat, ia = 0, ib = 0, sa = 1, sb = 1;
    for (size_t d = batch.size(); d-- > 0;) {
      int64_t idx = rest % batch[d];
      rest /= batch[d];
      ia += (ab[d] == 1 ? 0 : idx) * sa;
      ib += (bb[d] == 1 ? 0 : idx) * sb;
      sa *= ab[d];
      sb *= bb[d];
    }
    for (int64_t r = 0; r < n; ++r)
      for (int64_t c = 0; c < m; ++c) {
        double s = 0;
        for (int64_t j = 0; j < k; ++j) s += va[(ia * n + r) * k + j] * vb[(ib * k + j) * m + c];
        out.push_back(s);
      }
  }
  Shape out_shape = batch;
  if (!a1) out_shape.push_back(n);
  if (!b1) out_shape.push_back(m);
  return tensor(out, out_shape, DType::f64);
}

struct Case {
  Shape a, b, out;
};
const std::vector<Case> kCases = {
    {{3, 4}, {4, 5}, {3, 5}},
    {{4}, {4, 5}, {5}},
    {{3, 4}, {4}, {3}},
    {{4}, {4}, {}},
    {{2, 3, 4}, {4, 5}, {2, 3, 5}},
    {{2, 3, 4}, {1, 4, 5}, {2, 3, 5}},
    {{3, 4}, {2, 4, 5}, {2, 3, 5}},
    {{1, 3, 4}, {2, 4, 5}, {2, 3, 5}},
    {{2, 3, 4}, {2, 4, 5}, {2, 3, 5}},
    {{2, 1, 3, 4}, {5, 4, 6}, {2, 5, 3, 6}},
    {{4}, {2, 4, 5}, {2, 5}},
    {{2, 3, 4}, {4}, {2, 3}},
    {{3, 4}, {1, 1, 4, 2}, {1, 1, 3, 2}},
    {{1, 7}, {7, 1}, {1, 1}},
};

TEST(Matmul, ShapesAndValuesMatchLoopsF64) {
  uint64_t seed = 1;
  for (const Case& c : kCases) {
    SCOPED_TRACE(shape_str(c.a) + " @ " + shape_str(c.b));
    Tensor a = uniform(c.a, seed++), b = uniform(c.b, seed++);
    Tensor y = matmul(a, b);
    EXPECT_EQ(y.shape(), c.out);
    EXPECT_EQ(y.dtype(), DType::f64);
    testing::expect_close(y, naive_matmul(a, b), 1e-12, 1e-12);
  }
}

TEST(Matmul, F32MatchesF64) {
  uint64_t seed = 100;
  for (const Case& c : kCases) {
    SCOPED_TRACE(shape_str(c.a) + " @ " + shape_str(c.b));
    Tensor a = uniform(c.a, seed++), b = uniform(c.b, seed++);
    Tensor y32 = matmul(a.to(DType::f32), b.to(DType::f32));
    EXPECT_EQ(y32.dtype(), DType::f32);
    testing::expect_close(y32.to(DType::f64), naive_matmul(a, b), 1e-5, 1e-6);
  }
}

TEST(Matmul, LargerBatchedMatchesLoops) {
  // Enough products to take the parallel batch path, and a broadcast one.
  Tensor a = uniform({3, 1, 9, 17}, 7), b = uniform({4, 17, 11}, 8);
  testing::expect_close(matmul(a, b), naive_matmul(a, b), 1e-12, 1e-12);
  Tensor c = uniform({40, 9, 17}, 9), d = uniform({40, 17, 11}, 10);
  testing::expect_close(matmul(c, d), naive_matmul(c, d), 1e-12, 1e-12);
}

TEST(Matmul, EmptyAxes) {
  // Inner size 0: a product of nothing is 0; the gradients are empty.
  Tensor a = uniform({3, 0}, 1).requires_grad_(), b = uniform({0, 5}, 2).requires_grad_();
  Tensor y = matmul(a, b);
  ASSERT_EQ(y.shape(), Shape({3, 5}));
  for (double v : y.to_vector()) EXPECT_EQ(v, 0.0);
  backward(y, ones({3, 5}, DType::f64));
  EXPECT_EQ(a.grad().shape(), Shape({3, 0}));
  EXPECT_EQ(b.grad().shape(), Shape({0, 5}));

  // Empty output: the gradients are zeros of the inputs' shapes.
  Tensor c = uniform({3, 2}, 3).requires_grad_(), d = uniform({2, 0}, 4).requires_grad_();
  Tensor z = matmul(c, d);
  ASSERT_EQ(z.shape(), Shape({3, 0}));
  backward(z, zeros({3, 0}, DType::f64));
  testing::expect_close(c.grad(), zeros({3, 2}, DType::f64));

  // Empty broadcast batch.
  Tensor e = uniform({1, 3, 4}, 5).requires_grad_(), f = uniform({0, 4, 2}, 6).requires_grad_();
  Tensor w = matmul(e, f);
  ASSERT_EQ(w.shape(), Shape({0, 3, 2}));
  backward(w, zeros({0, 3, 2}, DType::f64));
  testing::expect_close(e.grad(), zeros({1, 3, 4}, DType::f64));
  EXPECT_EQ(matmul(uniform({0, 4}, 7), uniform({4, 2}, 8)).shape(), Shape({0, 2}));
}

TEST(Matmul, BroadcastGradientsMatchHandDerived) {
  // y = a [2, 1, 3, 4] @ b [5, 4, 6] with upstream g [2, 5, 3, 6]:
  // da[i, 0] = sum_j g[i, j] · b[j]ᵀ and db[j] = sum_i a[i, 0]ᵀ · g[i, j].
  Tensor a = uniform({2, 1, 3, 4}, 11).requires_grad_(),
         b = uniform({5, 4, 6}, 12).requires_grad_();
  Tensor g = uniform({2, 5, 3, 6}, 13);
  backward(matmul(a, b), g);
  std::vector<double> va = a.to_vector(), vb = b.to_vector(), vg = g.to_vector();
  std::vector<double> da(va.size(), 0.0), db(vb.size(), 0.0);
  for (int i = 0; i < 2; ++i)
    for (int j = 0; j < 5; ++j)
      for (int r = 0; r < 3; ++r)
        for (int c = 0; c < 6; ++c) {
          double gv = vg[((i * 5 + j) * 3 + r) * 6 + c];
          for (int q = 0; q < 4; ++q) {
            da[(i * 3 + r) * 4 + q] += gv * vb[(j * 4 + q) * 6 + c];
            db[(j * 4 + q) * 6 + c] += gv * va[(i * 3 + r) * 4 + q];
          }
        }
  testing::expect_close(a.grad(), tensor(da, {2, 1, 3, 4}, DType::f64), 1e-12, 1e-12);
  testing::expect_close(b.grad(), tensor(db, {5, 4, 6}, DType::f64), 1e-12, 1e-12);
}

TEST(Matmul, TwoDimensionalOperandBroadcastOverBatch) {
  // a [3, 4] is used by every product of b's batch: its gradient is the sum over the batch.
  Tensor a = uniform({3, 4}, 21).requires_grad_(), b = uniform({6, 4, 2}, 22).requires_grad_();
  Tensor g = uniform({6, 3, 2}, 23);
  backward(matmul(a, b), g);
  std::vector<double> vb = b.to_vector(), vg = g.to_vector(), da(12, 0.0);
  for (int j = 0; j < 6; ++j)
    for (int r = 0; r < 3; ++r)
      for (int q = 0; q < 4; ++q)
        for (int c = 0; c < 2; ++c)
          da[r * 4 + q] += vg[(j * 3 + r) * 2 + c] * vb[(j * 4 + q) * 2 + c];
  testing::expect_close(a.grad(), tensor(da, {3, 4}, DType::f64), 1e-12, 1e-12);
}

TEST(Matmul, Errors) {
  EXPECT_TG_ERROR(matmul(zeros({2, 3}), zeros({4, 5})),
                  "matmul: shapes [2, 3] and [4, 5] do not match (3 vs 4)");
  EXPECT_TG_ERROR(matmul(zeros({3}), zeros({4})),
                  "matmul: shapes [3] and [4] do not match (3 vs 4)");
  EXPECT_TG_ERROR(
      matmul(zeros({2, 3, 4}), zeros({3, 4, 5})),
      "matmul: the batch axes of shapes [2, 3, 4] and [3, 4, 5] do not broadcast (2 vs 3)");
  EXPECT_TG_ERROR(matmul(zeros({}), zeros({3})),
                  "matmul: both arguments need at least 1 dimension");
  EXPECT_TG_ERROR(
      matmul(zeros({2, 3}), zeros({3, 2}, DType::f64)),
      "matmul: operands must share a floating dtype (f32 or f64); got f32 [2, 3] and f64 [3, 2]");
  EXPECT_TG_ERROR(matmul(zeros({2, 3}, DType::i64), zeros({3, 2}, DType::i64)),
                  "matmul: operands must share a floating dtype");
}

TEST(Matmul, ForwardAllocatesOnlyItsOutput) {
  for (auto [as, bs] : std::vector<std::pair<Shape, Shape>>{
           {{4, 8, 16}, {16, 8}}, {{4, 8, 16}, {4, 16, 8}}, {{8, 16}, {3, 16, 8}}}) {
    Tensor a = uniform(as, 1, -1, 1, DType::f32).requires_grad_();
    Tensor b = uniform(bs, 2, -1, 1, DType::f32).requires_grad_();
    int64_t allocs = memory_stats().num_allocs, before = memory_allocated();
    reset_peak_memory_stats();
    Tensor y = matmul(a, b);
    EXPECT_EQ(memory_stats().num_allocs - allocs, 1) << shape_str(as) << " @ " << shape_str(bs);
    EXPECT_EQ(max_memory_allocated() - before, (int64_t(y.nbytes()) + 63) / 64 * 64);
  }
}

// --- the GEMM kernel's single-row / single-column path (gemv), every transpose flag -------------

// C = alpha · op(A) · op(B) + beta · C by loops, row-major with leading dimensions.
std::vector<double> naive_gemm(bool ta, bool tb, int64_t m, int64_t n, int64_t k, double alpha,
                               const std::vector<double>& a, int64_t lda, const std::vector<double>& b,
                               int64_t ldb, double beta, std::vector<double> c, int64_t ldc) {
  for (int64_t i = 0; i < m; ++i)
    for (int64_t j = 0; j < n; ++j) {
      double s = 0;
      for (int64_t p = 0; p < k; ++p) s += (ta ? a[p * lda + i] : a[i * lda + p]) * (tb ? b[j * ldb + p] : b[p * ldb + j]);
      c[i * ldc + j] = alpha * s + (beta == 0 ? 0.0 : beta * c[i * ldc + j]);
    }
  return c;
}

// kernels::gemm on padded operands (leading dimensions + 2, C's + pad_c) against the loops:
// with beta 0, C starts as NaN, which must not survive; C's padding columns are never touched.
void check_gemm_against_loops(int64_t m, int64_t n, int64_t k, bool ta, bool tb, double alpha, double beta,
                              int64_t pad_c, uint64_t seed) {
  SCOPED_TRACE(fmt::format("{}x{}x{} ta {} tb {} beta {}", m, n, k, ta, tb, beta));
  const int64_t lda = (ta ? m : k) + 2, ldb = (tb ? k : n) + 2, ldc = n + pad_c;
  std::vector<double> a = uniform({(ta ? k : m) * lda}, seed).to_vector();
  std::vector<double> b = uniform({(tb ? n : k) * ldb}, seed + 1).to_vector();
  std::vector<double> c = uniform({m * ldc}, seed + 2).to_vector();
  std::vector<double> got = c;
  if (beta == 0)
    for (int64_t i = 0; i < m; ++i)
      for (int64_t j = 0; j < n; ++j) got[i * ldc + j] = std::nan("");
  kernels::gemm<double>(ta, tb, m, n, k, alpha, a.data(), lda, b.data(), ldb, beta, got.data(), ldc);
  std::vector<double> want = naive_gemm(ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
  for (int64_t i = 0; i < m; ++i) {
    for (int64_t j = 0; j < n; ++j) ASSERT_NEAR(got[i * ldc + j], want[i * ldc + j], 1e-11) << i << "," << j;
    for (int64_t j = n; j < ldc; ++j) ASSERT_EQ(got[i * ldc + j], c[i * ldc + j]);
  }
}

TEST(GemmKernel, SingleRowAndColumnProductsMatchLoopsForEveryFlag) {
  for (auto [m, n] : {std::pair<int64_t, int64_t>{1, 5}, {4, 1}, {1, 1}})
    for (bool ta : {false, true})
      for (bool tb : {false, true})
        for (double beta : {0.0, 0.5}) check_gemm_against_loops(m, n, 3, ta, tb, 1.5, beta, 2, 1);
}

TEST(GemmKernel, BetaZeroOverwritesNaNAndLeavesPaddingForEveryFlag) {
  // kernels::gemm zeroes C itself for beta 0 and calls BLAS with beta 1; beta 1 still adds.
  // 96 x 80 x 160 (2.5 MFLOP) splits into panels on 2 threads.
  struct Size { int64_t m, n, k; };
  const int saved = get_num_threads();
  for (Size sz : {Size{3, 4, 5}, Size{96, 80, 160}})
    for (int threads : {1, 2})
      for (bool ta : {false, true})
        for (bool tb : {false, true})
          for (double beta : {0.0, 1.0}) {
            SCOPED_TRACE(fmt::format("threads {}", threads));
            set_num_threads(threads);
            check_gemm_against_loops(sz.m, sz.n, sz.k, ta, tb, 0.5, beta, 3, 4);
          }
  set_num_threads(saved);
}

TEST(GemmKernel, GemmBiasIsBiasRowsPlusProductForEverySplit) {
  // gemm_bias writes the bias into each panel's rows, then adds the product: C's NaN start does
  // not survive; row panels (m >= n), column panels (n > m), gemv (m or n = 1) and k = 0.
  struct Size { int64_t m, n, k; };
  const int saved = get_num_threads();
  for (Size sz : {Size{160, 96, 160}, Size{64, 200, 192}, Size{1, 7, 5}, Size{6, 1, 5}, Size{3, 4, 0}})
    for (int threads : {1, 2})
      for (bool ta : {false, true})
        for (bool tb : {false, true}) {
          SCOPED_TRACE(fmt::format("{}x{}x{} threads {} ta {} tb {}", sz.m, sz.n, sz.k, threads, ta, tb));
          set_num_threads(threads);
          const int64_t m = sz.m, n = sz.n, k = sz.k;
          const int64_t lda = (ta ? m : k) + 2, ldb = (tb ? k : n) + 2, ldc = n + 3;
          std::vector<double> a = uniform({std::max<int64_t>(1, (ta ? k : m) * lda)}, 7).to_vector();
          std::vector<double> b = uniform({std::max<int64_t>(1, (tb ? n : k) * ldb)}, 8).to_vector();
          std::vector<double> bias = uniform({n}, 9).to_vector();
          std::vector<double> c = uniform({m * ldc}, 10).to_vector(), got = c;
          for (int64_t i = 0; i < m; ++i)
            for (int64_t j = 0; j < n; ++j) got[i * ldc + j] = std::nan("");
          kernels::gemm_bias<double>(ta, tb, m, n, k, a.data(), lda, b.data(), ldb, bias.data(), got.data(), ldc);
          std::vector<double> want = naive_gemm(ta, tb, m, n, k, 1.0, a, lda, b, ldb, 0.0, c, ldc);
          for (int64_t i = 0; i < m; ++i) {
            for (int64_t j = 0; j < n; ++j) ASSERT_NEAR(got[i * ldc + j], want[i * ldc + j] + bias[j], 1e-11) << i << "," << j;
            for (int64_t j = n; j < ldc; ++j) ASSERT_EQ(got[i * ldc + j], c[i * ldc + j]);
          }
        }
  set_num_threads(saved);
}

// --- linear ---------------------------------------------------------------------------------

// x [..., in] · W[out, in]ᵀ + b by loops.
Tensor naive_linear(const Tensor& x, const Tensor& w, const Tensor& bias) {
  const int64_t in = w.size(1), out = w.size(0);
  const int64_t rows = numel(Shape(x.shape().begin(), x.shape().end() - 1));
  std::vector<double> vx = x.to_vector(), vw = w.to_vector(), y;
  std::vector<double> vb = bias.defined() ? bias.to_vector() : std::vector<double>(out, 0.0);
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t o = 0; o < out; ++o) {
      double s = vb[o];
      for (int64_t i = 0; i < in; ++i) s += vx[r * in + i] * vw[o * in + i];
      y.push_back(s);
    }
  Shape shape(x.shape().begin(), x.shape().end() - 1);
  shape.push_back(out);
  return tensor(y, shape, DType::f64);
}

TEST(Linear, MatchesLoopsWithAndWithoutBias) {
  for (const Shape& xs : {Shape{3, 4}, Shape{2, 3, 4}, Shape{4}, Shape{1, 4}}) {
    SCOPED_TRACE(shape_str(xs));
    Tensor x = uniform(xs, 1), w = uniform({5, 4}, 2), b = uniform({5}, 3);
    testing::expect_close(linear(x, w, b), naive_linear(x, w, b), 1e-12, 1e-12);
    testing::expect_close(linear(x, w), naive_linear(x, w, Tensor()), 1e-12, 1e-12);
    Tensor y32 = linear(x.to(DType::f32), w.to(DType::f32), b.to(DType::f32));
    EXPECT_EQ(y32.dtype(), DType::f32);
    testing::expect_close(y32.to(DType::f64), naive_linear(x, w, b), 1e-5, 1e-6);
  }
  // in = 0: the output is the bias.
  Tensor b = uniform({3}, 4);
  testing::expect_close(linear(zeros({2, 0}, DType::f64), zeros({3, 0}, DType::f64), b),
                        naive_linear(zeros({2, 0}, DType::f64), zeros({3, 0}, DType::f64), b));
}

TEST(Linear, GradientsMatchHandDerived) {
  // dx = g · W, dW = gᵀ · x, db = sum of g's rows.
  Tensor x = uniform({2, 3, 4}, 5).requires_grad_(), w = uniform({5, 4}, 6).requires_grad_();
  Tensor b = uniform({5}, 7).requires_grad_(), g = uniform({2, 3, 5}, 8);
  backward(linear(x, w, b), g);
  std::vector<double> vx = x.to_vector(), vw = w.to_vector(), vg = g.to_vector();
  std::vector<double> dx(24, 0.0), dw(20, 0.0), db(5, 0.0);
  for (int r = 0; r < 6; ++r)
    for (int o = 0; o < 5; ++o) {
      db[o] += vg[r * 5 + o];
      for (int i = 0; i < 4; ++i) {
        dx[r * 4 + i] += vg[r * 5 + o] * vw[o * 4 + i];
        dw[o * 4 + i] += vg[r * 5 + o] * vx[r * 4 + i];
      }
    }
  testing::expect_close(x.grad(), tensor(dx, {2, 3, 4}, DType::f64), 1e-12, 1e-12);
  testing::expect_close(w.grad(), tensor(dw, {5, 4}, DType::f64), 1e-12, 1e-12);
  testing::expect_close(b.grad(), tensor(db, {5}, DType::f64), 1e-12, 1e-12);
}

TEST(Linear, Errors) {
  EXPECT_TG_ERROR(linear(zeros({2, 3}), zeros({4, 5})),
                  "linear: input [2, 3] and weight [4, 5] do not match (3 vs 5)");
  EXPECT_TG_ERROR(linear(zeros({2, 3}), zeros({3})),
                  "linear: weight must be [out, in], got shape [3]");
  EXPECT_TG_ERROR(linear(zeros({2, 3}), zeros({4, 3}), zeros({3})),
                  "linear: bias must be [4] for weight [4, 3], got shape [3]");
  EXPECT_TG_ERROR(linear(zeros({}), zeros({4, 3})), "linear: input must have at least 1 dimension");
  EXPECT_TG_ERROR(linear(zeros({2, 3}), zeros({4, 3}, DType::f64)),
                  "linear: operands must share a floating dtype");
  EXPECT_TG_ERROR(
      linear(zeros({2, 3}), zeros({4, 3}), zeros({4}, DType::f64)),
      "linear: operands must share a floating dtype (f32 or f64); got f32 [2, 3] and bias f64 [4]");
}

TEST(Linear, ForwardAllocatesOnlyItsOutput) {
  Tensor x = uniform({4, 8, 16}, 1, -1, 1, DType::f32).requires_grad_();
  Tensor w = uniform({12, 16}, 2, -1, 1, DType::f32).requires_grad_();
  Tensor b = uniform({12}, 3, -1, 1, DType::f32).requires_grad_();
  int64_t allocs = memory_stats().num_allocs;
  Tensor y = linear(x, w, b);
  EXPECT_EQ(memory_stats().num_allocs - allocs, 1);
  // addmm (weight [in, out]) shares linear's implementation: its output only, too.
  Tensor w_in_out = uniform({16, 12}, 2, -1, 1, DType::f32).requires_grad_();
  allocs = memory_stats().num_allocs;
  Tensor z = addmm(b, x, w_in_out);
  EXPECT_EQ(memory_stats().num_allocs - allocs, 1);
}

// --- addmm (HF's Conv1D): against the unfused add(matmul(x, W), bias) -----------------------

TEST(Addmm, MatchesMatmulPlusBiasWithGradients) {
  for (const Shape& xs : {Shape{3, 4}, Shape{2, 3, 4}, Shape{4}}) {
    SCOPED_TRACE(shape_str(xs));
    for (bool with_bias : {true, false}) {
      Tensor x = uniform(xs, 1).requires_grad_(), w = uniform({4, 5}, 2).requires_grad_();
      Tensor b = with_bias ? uniform({5}, 3).requires_grad_() : Tensor();
      Tensor x2 = x.detach().requires_grad_(), w2 = w.detach().requires_grad_();
      Tensor b2 = with_bias ? b.detach().requires_grad_() : Tensor();
      Tensor fused = addmm(b, x, w), plain = with_bias ? add(matmul(x2, w2), b2) : matmul(x2, w2);
      testing::expect_close(fused, plain, 1e-12, 1e-12);
      Tensor g = uniform(fused.shape(), 4);
      backward(fused, g);
      backward(plain, g);
      testing::expect_close(x.grad(), x2.grad(), 1e-12, 1e-12);
      testing::expect_close(w.grad(), w2.grad(), 1e-12, 1e-12);
      if (with_bias) testing::expect_close(b.grad(), b2.grad(), 1e-12, 1e-12);
    }
  }
}

TEST(Addmm, Errors) {
  EXPECT_TG_ERROR(addmm(Tensor(), zeros({2, 3}), zeros({4, 5})),
                  "addmm: input [2, 3] and weight [4, 5] do not match (3 vs 4)");
  EXPECT_TG_ERROR(addmm(zeros({4}), zeros({2, 3}), zeros({3, 5})),
                  "addmm: bias must be [5] for weight [3, 5], got shape [4]");
  EXPECT_TG_ERROR(addmm(Tensor(), zeros({2, 3}), zeros({3})), "addmm: weight must be [in, out], got shape [3]");
}


// --- determinism ----------------------------------------------------------------------------

// Output and both gradients of matmul (or linear when `lin`), f32, with `threads` threads.
std::vector<std::vector<double>> run(const Shape& as, const Shape& bs, int threads, bool lin) {
  set_num_threads(threads);
  Tensor a = uniform(as, 31, -1, 1, DType::f32).requires_grad_();
  Tensor b = uniform(bs, 32, -1, 1, DType::f32).requires_grad_();
  Tensor y = lin ? linear(a, b) : matmul(a, b);
  backward(y, uniform(y.shape(), 33, -1, 1, DType::f32));
  return {y.to_vector(), a.grad().to_vector(), b.grad().to_vector()};
}

TEST(Matmul, BatchedResultsDoNotDependOnThreadCount) {
  // Products below kernels::kParallelBatchFlops run whole on one thread each, with OpenBLAS
  // single-threaded: bitwise the same results with 1 and 2 threads, gradients included.
  const int saved = get_num_threads();
  const std::vector<std::pair<Shape, Shape>> cases = {
      {{8, 6, 24, 16}, {8, 6, 16, 20}},  // many small products: parallel over the batch
      {{3, 1, 24, 16}, {5, 16, 20}},     // broadcast: gradients accumulate over the batch
      {{24, 16}, {30, 16, 20}},          // 2-D a: all products add into one da
  };
  for (const auto& [as, bs] : cases) {
    SCOPED_TRACE(shape_str(as) + " @ " + shape_str(bs));
    auto one = run(as, bs, 1, false), two = run(as, bs, 2, false);
    for (size_t i = 0; i < one.size(); ++i) EXPECT_TRUE(one[i] == two[i]) << "result " << i;
  }
  set_num_threads(saved);
}

TEST(Matmul, LargeProductsDifferOnlyInRoundingBetweenThreadCounts) {
  // One large GEMM goes to OpenBLAS's own threads, whose kernels split the work differently
  // from a single thread (OpenBLAS 0.3.21, Haswell: last-bit differences). Same thread count:
  // bitwise the same; 1 vs 2 threads: equal to f32 rounding.
  const int saved = get_num_threads();
  const std::vector<std::tuple<Shape, Shape, bool>> cases = {
      {{4, 64, 128}, {128, 96}, false},       // folded into one GEMM
      {{3, 256, 256}, {3, 256, 256}, false},  // batched, above kParallelBatchFlops
      {{64, 96}, {80, 96}, true},             // linear
  };
  for (const auto& [as, bs, lin] : cases) {
    SCOPED_TRACE(shape_str(as) + (lin ? " linear " : " @ ") + shape_str(bs));
    auto two = run(as, bs, 2, lin), again = run(as, bs, 2, lin), one = run(as, bs, 1, lin);
    for (size_t i = 0; i < one.size(); ++i) {
      EXPECT_TRUE(two[i] == again[i]) << "result " << i;
      double scale = 0, diff = 0;
      for (size_t j = 0; j < one[i].size(); ++j) {
        scale = std::max(scale, std::fabs(one[i][j]));
        diff = std::max(diff, std::fabs(one[i][j] - two[i][j]));
      }
      EXPECT_LE(diff, 1e-6 * scale) << "result " << i;
    }
  }
  set_num_threads(saved);
}

}  // namespace
}  // namespace tg
