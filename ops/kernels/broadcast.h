#pragma once
// Broadcast iteration for elementwise kernels over two or three operands (NumPy rules).
//
// plan_broadcast() folds the output's axes so that the common cases become plain loops:
//   - equal shapes fold to one axis with every operand contiguous: one flat loop;
//   - a scalar operand folds to one axis along which it has stride 0: a flat loop with a value;
//   - a row vector over leading axes ([B, T, C] + [C], bias add) folds to [B*T, C]: one flat
//     loop per row;
//   - anything else walks the folded axes with a counter and runs the innermost axis as a loop.
// The kernels split the output into chunks of kElementwiseGrain elements for TBB; every output
// element is computed by the same expression whatever the split, so results do not depend on
// the number of threads.
#include <cstdint>
#include <initializer_list>
#include <vector>

namespace tg::kernels {

inline constexpr int kMaxBroadcastOperands = 3;

/// How the operands of an elementwise op walk its output (row-major, contiguous operands).
struct BroadcastPlan {
  int64_t numel = 0;          ///< output elements
  std::vector<int64_t> sizes; ///< folded output axes, none of size 1 (empty: a single element)
  /// strides[k][d]: elements operand k advances along folded axis d (0 where it is broadcast).
  std::vector<int64_t> strides[kMaxBroadcastOperands];
  int operands = 0;
};

/// Plans how operands of shapes `inputs` (2 or 3, each broadcasting to `out_shape`; leading axes
/// may be missing) walk `out_shape`. Shapes are checked by the ops, not here.
BroadcastPlan plan_broadcast(const std::vector<int64_t>& out_shape,
                             std::initializer_list<const std::vector<int64_t>*> inputs);

enum class BinaryOp { add, sub, mul, div };

/// out = a op b. Plan operands: (a, b).
template <class T>
void binary(BinaryOp op, const BroadcastPlan& plan, const T* a, const T* b, T* out);

/// out = cond ? a : b. Plan operands: (cond, a, b). T: float, double, int64_t, bool.
template <class T>
void where(const BroadcastPlan& plan, const bool* cond, const T* a, const T* b, T* out);

/// out = (mask == fill_when) ? value : x, where x has the output's shape. Plan operands:
/// (x, mask). T: float, double, int64_t, bool. Gradients of where/masked_fill use it with 0.
template <class T>
void masked_fill(const BroadcastPlan& plan, const T* x, const bool* mask, bool fill_when, T value,
                 T* out);

/// Gradient of a / b with respect to b before the sum to b's shape: out = -dout * a / (b * b),
/// where dout has the output's shape. Plan operands: (dout, a, b).
template <class T>
void div_grad_divisor(const BroadcastPlan& plan, const T* dout, const T* a, const T* b, T* out);

}  // namespace tg::kernels
