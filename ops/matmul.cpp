// matmul and linear: one GEMM (or one batched GEMM) forward, two in backward. Operands are read
// where they lie; transposes are BLAS flags; nothing but the output is allocated in forward.
#include "ops/matmul.h"

#include <climits>
#include <utility>

#include "autograd/tape.h"
#include "ops/kernels/gemm.h"
#include "ops/kernels/parallel.h"

namespace tg {
namespace {

// How a matmul maps onto GEMMs. Operands are seen as matrices a [..., n, k] and b [..., k, m]
// (a 1-D a as [1, k], a 1-D b as [k, 1]).
struct MatmulPlan {
  int64_t n = 0, k = 0, m = 0;
  Shape out_shape;
  // b has a single matrix: a's batch folds into the rows of one GEMM [rows, k] · [k, m].
  bool fold = false;
  int64_t rows = 0;  // fold: numel of a's batch times n
  // Otherwise, per output batch element i: element offsets of its a and b matrices (the same
  // offset repeats along broadcast axes).
  std::vector<int64_t> a_off, b_off;
};

MatmulPlan plan_matmul(const Shape& as, const Shape& bs) {
  TG_CHECK(!as.empty() && !bs.empty(),
           "matmul: both arguments need at least 1 dimension, got shapes {} and {}", shape_str(as),
           shape_str(bs));
  const Shape am = as.size() == 1 ? Shape{1, as[0]} : as;
  const Shape bm = bs.size() == 1 ? Shape{bs[0], 1} : bs;
  MatmulPlan p;
  p.n = am[am.size() - 2];
  p.k = am.back();
  p.m = bm.back();
  const int64_t kb = bm[bm.size() - 2];
  TG_CHECK(p.k == kb, "matmul: shapes {} and {} do not match ({} vs {})", shape_str(as),
           shape_str(bs), p.k, kb);
  const Shape a_batch(am.begin(), am.end() - 2), b_batch(bm.begin(), bm.end() - 2);

  // Broadcast batch axes, aligned on the right.
  const size_t r = std::max(a_batch.size(), b_batch.size());
  Shape batch(r), a_size(r, 1), b_size(r, 1);
  std::copy(a_batch.begin(), a_batch.end(), a_size.end() - a_batch.size());
  std::copy(b_batch.begin(), b_batch.end(), b_size.end() - b_batch.size());
  for (size_t i = 0; i < r; ++i) {
    TG_CHECK(a_size[i] == b_size[i] || a_size[i] == 1 || b_size[i] == 1,
             "matmul: the batch axes of shapes {} and {} do not broadcast ({} vs {})",
             shape_str(as), shape_str(bs), a_size[i], b_size[i]);
    batch[i] = a_size[i] == 1 ? b_size[i] : a_size[i];
  }
  p.out_shape = batch;
  if (as.size() > 1) p.out_shape.push_back(p.n);
  if (bs.size() > 1) p.out_shape.push_back(p.m);

  const int64_t limit = INT_MAX;  // BLAS takes 32-bit sizes
  p.fold = numel(b_batch) == 1;
  p.rows = numel(a_batch) * p.n;
  TG_CHECK(p.rows <= limit && p.k <= limit && p.m <= limit,
           "matmul: shapes {} and {} exceed BLAS's 32-bit sizes", shape_str(as), shape_str(bs));
  if (p.fold) return p;

  const int64_t count = numel(batch);
  p.a_off.resize(static_cast<size_t>(count));
  p.b_off.resize(static_cast<size_t>(count));
  // Element strides of each operand's batch axes; 0 where it is broadcast.
  std::vector<int64_t> a_stride(r), b_stride(r);
  for (int64_t i = int64_t(r) - 1, sa = p.n * p.k, sb = p.k * p.m; i >= 0; --i) {
    a_stride[i] = a_size[i] == 1 ? 0 : sa;
    b_stride[i] = b_size[i] == 1 ? 0 : sb;
    sa *= a_size[i];
    sb *= b_size[i];
  }
  for (int64_t flat = 0; flat < count; ++flat) {
    int64_t rest = flat, ao = 0, bo = 0;
    for (int64_t i = int64_t(r) - 1; i >= 0; --i) {
      int64_t idx = rest % batch[i];
      rest /= batch[i];
      ao += idx * a_stride[i];
      bo += idx * b_stride[i];
    }
    p.a_off[flat] = ao;
    p.b_off[flat] = bo;
  }
  return p;
}

// Pointers base + offs[i] for each i.
template <class P>
std::vector<P> pointers(P base, const std::vector<int64_t>& offs) {
  std::vector<P> v(offs.size());
  for (size_t i = 0; i < offs.size(); ++i) v[i] = base + offs[i];
  return v;
}
// Pointers base + i * step for i in [0, count): consecutive matrices.
template <class P>
std::vector<P> pointers(P base, int64_t count, int64_t step) {
  std::vector<P> v(static_cast<size_t>(count));
  for (int64_t i = 0; i < count; ++i) v[i] = base + i * step;
  return v;
}

// `what` names b in the message ("" or "weight ").
void check_dtypes(const char* op, const Tensor& a, const Tensor& b, const char* what) {
  TG_CHECK(is_floating(a.dtype()) && a.dtype() == b.dtype(),
           "{}: operands must share a floating dtype (f32 or f64); got {} {} and {}{} {}", op,
           a.dtype(), shape_str(a.shape()), what, b.dtype(), shape_str(b.shape()));
}

}  // namespace

Tensor matmul(const Tensor& a, const Tensor& b) {
  MatmulPlan p = plan_matmul(a.shape(), b.shape());
  check_dtypes("matmul", a, b, "");
  Tensor out = empty(p.out_shape, a.dtype());
  dispatch(a.dtype(), [&]<class T>() {
    const T* pa = a.data<T>();
    const T* pb = b.data<T>();
    T* pc = out.data<T>();
    if (p.fold) {
      kernels::gemm<T>(false, false, p.rows, p.m, p.k, T(1), pa, p.k, pb, p.m, T(0), pc, p.m);
      return;
    }
    int64_t count = static_cast<int64_t>(p.a_off.size());
    auto as = pointers(pa, p.a_off), bs = pointers(pb, p.b_off);
    auto cs = pointers(pc, count, p.n * p.m);
    kernels::gemm_batched<T>(false, false, p.n, p.m, p.k, T(1), as.data(), p.k, bs.data(), p.m,
                             T(0), cs.data(), p.m, count);
  });

  Node* node = record("matmul", out, {&a, &b}, [p = std::move(p)](Node& node, const Tensor& dc) {
    // dc has the layout of the output: [batch, n, m] matrices (or [rows, m] when folded).
    dispatch(dc.dtype(), [&]<class T>() {
      const T* pdc = dc.data<T>();
      const int64_t count = static_cast<int64_t>(p.a_off.size());
      if (node.needs_grad(0)) {  // da = dc · bᵀ
        Tensor b = node.saved("b");
        // A batch of size 0 leaves da untouched: start from zeros then.
        Tensor da = !p.fold && count == 0 ? zeros(node.input_shape(0), dc.dtype())
                                          : empty(node.input_shape(0), dc.dtype());
        if (p.fold) {
          kernels::gemm<T>(false, true, p.rows, p.k, p.m, T(1), pdc, p.m, b.data<T>(), p.m, T(0),
                           da.data<T>(), p.k);
        } else {
          // Products that map to the same a matrix (broadcast) add into it with beta = 1.
          auto dcs = pointers(pdc, count, p.n * p.m);
          auto bs = pointers(b.data<T>(), p.b_off);
          auto das = pointers(da.data<T>(), p.a_off);
          kernels::gemm_batched<T>(false, true, p.n, p.k, p.m, T(1), dcs.data(), p.m, bs.data(),
                                   p.m, T(0), das.data(), p.k, count);
        }
        node.accumulate(0, std::move(da));
      }
      if (node.needs_grad(1)) {  // db = aᵀ · dc
        Tensor a = node.saved("a");
        Tensor db = !p.fold && count == 0 ? zeros(node.input_shape(1), dc.dtype())
                                          : empty(node.input_shape(1), dc.dtype());
        if (p.fold) {
          // Summed over a's whole batch by the GEMM's inner dimension: no [batch, k, m] buffer.
          kernels::gemm<T>(true, false, p.k, p.m, p.rows, T(1), a.data<T>(), p.k, pdc, p.m, T(0),
                           db.data<T>(), p.m);
        } else {
          auto as = pointers(a.data<T>(), p.a_off);
          auto dcs = pointers(pdc, count, p.n * p.m);
          auto dbs = pointers(db.data<T>(), p.b_off);
          kernels::gemm_batched<T>(true, false, p.k, p.m, p.n, T(1), as.data(), p.k, dcs.data(),
                                   p.m, T(0), dbs.data(), p.m, count);
        }
        node.accumulate(1, std::move(db));
      }
    });
  });
  if (node) {
    // Each gradient needs only the other operand.
    if (node->needs_grad(0)) node->save("b", b);
    if (node->needs_grad(1)) node->save("a", a);
  }
  return out;
}

namespace {

// y [..., out] = x [..., in] · W + bias: W is [out, in] used transposed (linear, `w_in_out`
// false) or [in, out] used as stored (addmm, HF's Conv1D). One GEMM forward with the bias
// written first and kept by beta = 1; backward dx = dy · Wᵀ (or · W), dW = dyᵀ · x (or xᵀ · dy),
// db = column sums of dy: no transposed copies, no separate bias pass.
Tensor affine(const char* op, const Tensor& x, const Tensor& weight, const Tensor& bias, bool w_in_out) {
  TG_CHECK(x.dim() >= 1, "{}: input must have at least 1 dimension, got shape {}", op, shape_str(x.shape()));
  TG_CHECK(weight.dim() == 2, "{}: weight must be {}, got shape {}", op, w_in_out ? "[in, out]" : "[out, in]",
           shape_str(weight.shape()));
  const int64_t in = x.shape().back(), out_features = weight.size(w_in_out ? 1 : 0);
  TG_CHECK(weight.size(w_in_out ? 0 : 1) == in, "{}: input {} and weight {} do not match ({} vs {})", op,
           shape_str(x.shape()), shape_str(weight.shape()), in, weight.size(w_in_out ? 0 : 1));
  check_dtypes(op, x, weight, "weight ");
  if (bias.defined()) {
    TG_CHECK(bias.dim() == 1 && bias.size(0) == out_features, "{}: bias must be [{}] for weight {}, got shape {}",
             op, out_features, shape_str(weight.shape()), shape_str(bias.shape()));
    check_dtypes(op, x, bias, "bias ");
  }
  const int64_t rows = numel(Shape(x.shape().begin(), x.shape().end() - 1));
  TG_CHECK(rows <= INT_MAX && in <= INT_MAX && out_features <= INT_MAX,
           "{}: input {} and weight {} exceed BLAS's 32-bit sizes", op, shape_str(x.shape()),
           shape_str(weight.shape()));
  Shape out_shape(x.shape().begin(), x.shape().end() - 1);
  out_shape.push_back(out_features);
  Tensor y = empty(out_shape, x.dtype());
  // Row stride of the stored weight.
  const int64_t ldw = w_in_out ? out_features : in;

  dispatch(x.dtype(), [&]<class T>() {
    // y [rows, out] = x [rows, in] · op(W) (+ bias, written by each panel before its product).
    if (bias.defined())
      kernels::gemm_bias<T>(false, !w_in_out, rows, out_features, in, x.data<T>(), in, weight.data<T>(), ldw,
                            bias.data<T>(), y.data<T>(), out_features);
    else
      kernels::gemm<T>(false, !w_in_out, rows, out_features, in, T(1), x.data<T>(), in, weight.data<T>(), ldw,
                       T(0), y.data<T>(), out_features);
  });

  Node* node = record(op, y, {&x, &weight, &bias}, [rows, in, out_features, ldw, w_in_out](Node& node, const Tensor& dy) {
    // dy [rows, out]. dx and dW are independent products of the same FLOPs (rows·in·out): with
    // both needed they run side by side, each whole on its thread (parallel_invoke); the bias
    // gradient's column sums ride with dW.
    Tensor dx = node.needs_grad(0) ? empty(node.input_shape(0), dy.dtype()) : Tensor();
    Tensor dw = node.needs_grad(1) ? empty(node.input_shape(1), dy.dtype()) : Tensor();
    Tensor db = node.needs_grad(2) ? empty({out_features}, dy.dtype()) : Tensor();
    Tensor w = dx.defined() ? node.saved("weight") : Tensor();
    Tensor x = dw.defined() ? node.saved("x") : Tensor();
    dispatch(dy.dtype(), [&]<class T>() {
      const T* pdy = dy.data<T>();
      auto input_grad = [&] {  // dx [rows, in] = dy · op(W)ᵀ
        if (!dx.defined()) return;
        kernels::gemm<T>(false, w_in_out, rows, in, out_features, T(1), pdy, out_features, w.data<T>(), ldw, T(0),
                         dx.data<T>(), in);
      };
      auto weight_grad = [&] {  // dW [out, in] = dyᵀ · x, or [in, out] = xᵀ · dy; db [out] = dy's row sums
        if (db.defined()) kernels::column_sums<T>(pdy, rows, out_features, db.data<T>());
        if (!dw.defined()) return;
        if (w_in_out)
          kernels::gemm<T>(true, false, in, out_features, rows, T(1), x.data<T>(), in, pdy, out_features, T(0),
                           dw.data<T>(), out_features);
        else
          kernels::gemm<T>(true, false, out_features, in, rows, T(1), pdy, out_features, x.data<T>(), in, T(0),
                           dw.data<T>(), in);
      };
      if (dx.defined() && dw.defined())
        kernels::parallel_invoke(input_grad, weight_grad);
      else
        input_grad(), weight_grad();
    });
    if (dx.defined()) node.accumulate(0, std::move(dx));
    if (dw.defined()) node.accumulate(1, std::move(dw));
    if (db.defined()) node.accumulate(2, std::move(db));
  });
  if (node) {
    if (node->needs_grad(0)) node->save("weight", weight);
    if (node->needs_grad(1)) node->save("x", x);
  }
  return y;
}

}  // namespace

Tensor linear(const Tensor& x, const Tensor& weight, const Tensor& bias) {
  return affine("linear", x, weight, bias, /*w_in_out=*/false);
}

Tensor addmm(const Tensor& bias, const Tensor& x, const Tensor& weight) {
  return affine("addmm", x, weight, bias, /*w_in_out=*/true);
}

}  // namespace tg
