#include "ops/kernels/broadcast.h"

#include <algorithm>
#include <stdexcept>
#include <tuple>
#include <utility>

#include "ops/kernels/parallel.h"

namespace tg::kernels {
namespace {

// One operand inside the innermost loop: read from memory when it advances with the output,
// or a value loaded once when it is broadcast along that axis. Both are known at compile time,
// so the loop is a plain loop the compiler vectorises.
template <bool Contiguous, class P>
struct Arg;
template <class P>
struct Arg<true, P> {
  const P* p;
  explicit Arg(const P* q) : p(q) {}
  P operator[](int64_t i) const { return p[i]; }
};
template <class P>
struct Arg<false, P> {
  P v;
  explicit Arg(const P* q) : v(*q) {}
  P operator[](int64_t) const { return v; }
};

template <class Out, class Op, class... A>
void loop(const Op& op, Out* __restrict out, int64_t n, A... a) {
  for (int64_t i = 0; i < n; ++i) out[i] = op(a[i]...);
}

// Runs n outputs; bit k of Mask says operand k is contiguous along the run (else broadcast).
template <unsigned Mask, class Out, class Op, size_t... K, class... P>
void run(std::index_sequence<K...>, const Op& op, Out* out, int64_t n, const P*... in) {
  loop(op, out, n, Arg<((Mask >> K) & 1u) != 0, P>(in)...);
}

// Calls f.template operator()<M>() with M == mask, for a non-zero mask of N bits. (Along the
// innermost folded axis, of size > 1, some operand advances: the output is their broadcast.)
template <int N, class F>
void with_mask(unsigned mask, F&& f) {
  if (mask == 0 || mask >= (1u << N))
    throw std::logic_error("broadcast: a plan whose innermost axis advances no operand");
  [&]<unsigned... M>(std::integer_sequence<unsigned, 0, M...>) {
    (void)((mask == M && (f.template operator()<M>(), true)) || ...);
  }(std::make_integer_sequence<unsigned, (1u << N)>{});
}

// out[i] = op(operands at i) over the whole plan, TBB-parallel over chunks of the output.
template <class Out, class Op, class... P>
void apply(const BroadcastPlan& p, const Op& op, Out* out, const P*... in) {
  constexpr int N = sizeof...(P);
  using Seq = std::index_sequence_for<P...>;
  if (p.numel == 0) return;
  const size_t rank = p.sizes.size();
  if (rank == 0) {  // every axis has size 1
    out[0] = op(in[0]...);
    return;
  }
  const std::tuple<const P*...> base(in...);
  unsigned mask = 0;
  for (int k = 0; k < N; ++k)
    if (p.strides[k][rank - 1] != 0) mask |= 1u << k;

  with_mask<N>(mask, [&]<unsigned M>() {
    // One run of n outputs starting at output o, operand k at offset off[k].
    auto call = [&]<size_t... K>(std::index_sequence<K...>, int64_t o, const int64_t* off, int64_t n) {
      run<M>(Seq{}, op, out + o, n, (std::get<K>(base) + off[K])...);
    };
    if (rank == 1) {
      // Flat: equal shapes, or a scalar operand (stride 0). Each chunk is one loop.
      parallel_for(0, p.numel, kElementwiseGrain, [&](int64_t lo, int64_t hi) {
        int64_t off[N];
        for (int k = 0; k < N; ++k) off[k] = lo * p.strides[k][0];
        call(Seq{}, lo, off, hi - lo);
      });
      return;
    }
    // N-d: the chunk starts anywhere; unravel its first index, then walk row by row
    // (a row = the innermost folded axis, e.g. C for a bias add over [B*T, C]).
    const int64_t inner = p.sizes[rank - 1];
    parallel_for(0, p.numel, kElementwiseGrain, [&](int64_t lo, int64_t hi) {
      std::vector<int64_t> idx(rank);
      int64_t off[N] = {};
      int64_t rem = lo;
      for (size_t d = rank; d-- > 0;) {
        idx[d] = rem % p.sizes[d];
        rem /= p.sizes[d];
        for (int k = 0; k < N; ++k) off[k] += idx[d] * p.strides[k][d];
      }
      for (int64_t o = lo; o < hi;) {
        int64_t n = std::min(inner - idx[rank - 1], hi - o);
        call(Seq{}, o, off, n);
        o += n;
        if (o >= hi) break;
        // The run reached the end of its row: back to the row start, then carry outwards.
        for (int k = 0; k < N; ++k) off[k] -= idx[rank - 1] * p.strides[k][rank - 1];
        idx[rank - 1] = 0;
        for (size_t d = rank - 1; d-- > 0;) {
          for (int k = 0; k < N; ++k) off[k] += p.strides[k][d];
          if (++idx[d] < p.sizes[d]) break;
          for (int k = 0; k < N; ++k) off[k] -= p.sizes[d] * p.strides[k][d];
          idx[d] = 0;
        }
      }
    });
  });
}

}  // namespace

BroadcastPlan plan_broadcast(const std::vector<int64_t>& out_shape,
                             std::initializer_list<const std::vector<int64_t>*> inputs) {
  BroadcastPlan p;
  p.operands = static_cast<int>(inputs.size());
  p.numel = 1;
  for (int64_t s : out_shape) p.numel *= s;
  if (p.numel == 0) return p;
  const size_t rank = out_shape.size();

  // Row-major strides of each operand along the output's axes; 0 where it is broadcast.
  std::vector<std::vector<int64_t>> full;
  for (const std::vector<int64_t>* shape : inputs) {
    std::vector<int64_t> st(rank, 0);
    size_t lead = rank - shape->size();
    int64_t step = 1;
    for (size_t d = rank; d-- > lead;) {
      int64_t size = (*shape)[d - lead];
      if (size != 1) st[d] = step;
      step *= size;
    }
    full.push_back(std::move(st));
  }

  for (size_t d = 0; d < rank; ++d) {
    if (out_shape[d] == 1) continue;  // changes no offset
    // Axis d folds into the previous one when every operand steps over it contiguously (or
    // is broadcast along both).
    bool fold = !p.sizes.empty();
    for (int k = 0; k < p.operands && fold; ++k)
      fold = p.strides[k].back() == full[k][d] * out_shape[d];
    if (fold) {
      p.sizes.back() *= out_shape[d];
      for (int k = 0; k < p.operands; ++k) p.strides[k].back() = full[k][d];
    } else {
      p.sizes.push_back(out_shape[d]);
      for (int k = 0; k < p.operands; ++k) p.strides[k].push_back(full[k][d]);
    }
  }
  return p;
}

template <class T>
void binary(BinaryOp op, const BroadcastPlan& plan, const T* a, const T* b, T* out) {
  switch (op) {
    case BinaryOp::add: return apply(plan, [](T x, T y) { return x + y; }, out, a, b);
    case BinaryOp::sub: return apply(plan, [](T x, T y) { return x - y; }, out, a, b);
    case BinaryOp::mul: return apply(plan, [](T x, T y) { return x * y; }, out, a, b);
    case BinaryOp::div: return apply(plan, [](T x, T y) { return x / y; }, out, a, b);
  }
}

template <class T>
void where(const BroadcastPlan& plan, const bool* cond, const T* a, const T* b, T* out) {
  apply(plan, [](bool c, T x, T y) { return c ? x : y; }, out, cond, a, b);
}

template <class T>
void masked_fill(const BroadcastPlan& plan, const T* x, const bool* mask, bool fill_when, T value,
                 T* out) {
  if (fill_when)
    apply(plan, [value](T v, bool m) { return m ? value : v; }, out, x, mask);
  else
    apply(plan, [value](T v, bool m) { return m ? v : value; }, out, x, mask);
}

template <class T>
void div_grad_divisor(const BroadcastPlan& plan, const T* dout, const T* a, const T* b, T* out) {
  apply(plan, [](T g, T x, T y) { return -g * x / (y * y); }, out, dout, a, b);
}

template void binary<float>(BinaryOp, const BroadcastPlan&, const float*, const float*, float*);
template void binary<double>(BinaryOp, const BroadcastPlan&, const double*, const double*, double*);
template void div_grad_divisor<float>(const BroadcastPlan&, const float*, const float*,
                                      const float*, float*);
template void div_grad_divisor<double>(const BroadcastPlan&, const double*, const double*,
                                       const double*, double*);
#define TG_SELECT_INSTANTIATE(T)                                                              \
  template void where<T>(const BroadcastPlan&, const bool*, const T*, const T*, T*);         \
  template void masked_fill<T>(const BroadcastPlan&, const T*, const bool*, bool, T, T*);
TG_SELECT_INSTANTIATE(float)
TG_SELECT_INSTANTIATE(double)
TG_SELECT_INSTANTIATE(int64_t)
TG_SELECT_INSTANTIATE(bool)
#undef TG_SELECT_INSTANTIATE

}  // namespace tg::kernels
