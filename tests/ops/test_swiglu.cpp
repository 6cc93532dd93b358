// swiglu: the values of silu(gate) · up on the halves of the last axis (f32 to the bit, as the
// Llama MLP's two paths must agree), gradients against silu then mul, and the errors.
#include "autograd/backward.h"
#include "ops/binary.h"
#include "ops/reduce.h"
#include "ops/shape_ops.h"
#include "ops/swiglu.h"
#include "ops/unary.h"
#include "test_util.h"

namespace tg {
namespace {

using testing::expect_close;
using testing::uniform;

TEST(Swiglu, EqualsSiluTimesUpToTheBit) {
  // [3, 70, 2·96] f32: more rows than one task, gates on both sides of 0.
  Tensor x = uniform({3, 70, 192}, 61, -6, 6, DType::f32);
  Tensor want = mul(silu(narrow(x, 2, 0, 96)), narrow(x, 2, 96, 96));
  Tensor got = swiglu(x);
  ASSERT_EQ(got.shape(), Shape({3, 70, 96}));
  EXPECT_EQ(got.to_vector(), want.to_vector());
}

TEST(Swiglu, GradientsOfSiluThenMul) {
  Tensor x0 = uniform({4, 3, 10}, 62, -4, 4);  // f64
  Tensor r = uniform({4, 3, 5}, 63);
  Tensor a = x0.detach().clone().requires_grad_(), b = x0.detach().clone().requires_grad_();
  backward(sum(mul(swiglu(a), r)));
  backward(sum(mul(mul(silu(narrow(b, 2, 0, 5)), narrow(b, 2, 5, 5)), r)));
  expect_close(a.grad(), b.grad(), 1e-14, 1e-14);
}

TEST(Swiglu, Errors) {
  EXPECT_TG_ERROR(swiglu(uniform({2, 3}, 1)), "swiglu: the last axis holds the gate and the up projection, so its size "
                                              "must be even; got shape [2, 3]");
  EXPECT_TG_ERROR(swiglu(Tensor()), "swiglu: the input tensor is undefined");
  EXPECT_TG_ERROR(swiglu(empty({2, 4}, DType::i64)), "swiglu: expected a floating tensor");
}

}  // namespace
}  // namespace tg
