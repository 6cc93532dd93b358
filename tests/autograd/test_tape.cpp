// The tape: recording, backward's accumulation, retain_graph, released tapes, version checks,
// NoGradGuard, deep graphs. Uses small ops defined here through record(), so it tests the
// engine alone.
#include "test_util.h"

namespace tg {
namespace {

// y = x * x, elementwise, f64 only.
Tensor square(const Tensor& x) {
  Tensor y = empty(x.shape(), x.dtype());
  for (int64_t i = 0; i < x.numel(); ++i) y.data<double>()[i] = x.data<double>()[i] * x.data<double>()[i];
  if (Node* n = record("square", y, {&x}, [](Node& n, const Tensor& dout) {
        Tensor x = n.saved("x");
        Tensor dx = empty(x.shape(), x.dtype());
        for (int64_t i = 0; i < x.numel(); ++i)
          dx.data<double>()[i] = 2 * x.data<double>()[i] * dout.data<double>()[i];
        n.accumulate(0, dx);
      }))
    n->save("x", x);
  return y;
}

// z = a + b with b broadcast along the leading axis; the engine sums b's gradient back.
Tensor add_rows(const Tensor& a, const Tensor& b) {
  Tensor z = empty(a.shape(), a.dtype());
  int64_t cols = b.numel();
  for (int64_t i = 0; i < a.numel(); ++i)
    z.data<double>()[i] = a.data<double>()[i] + b.data<double>()[i % cols];
  record("add_rows", z, {&a, &b}, [](Node& n, const Tensor& dout) {
    n.accumulate(0, dout);
    n.accumulate(1, dout);  // [R, C] summed to [C] by the engine
  });
  return z;
}

// Sum of all elements -> scalar.
Tensor total(const Tensor& x) {
  Tensor s = zeros({}, x.dtype());
  for (int64_t i = 0; i < x.numel(); ++i) s.data<double>()[0] += x.data<double>()[i];
  record("total", s, {&x}, [shape = x.shape()](Node& n, const Tensor& dout) {
    n.accumulate(0, full(shape, dout.item(), DType::f64));
  });
  return s;
}

Tensor leaf(const std::vector<double>& v, const Shape& shape = {}) {
  Tensor t = tensor(v, shape, DType::f64);
  t.requires_grad_();
  return t;
}

TEST(Tape, RecordsOnlyWhenAnInputNeedsGrad) {
  Tensor x = tensor({1.0, 2.0}, {}, DType::f64);
  EXPECT_FALSE(square(x).requires_grad());
  x.requires_grad_();
  Tensor y = square(x);
  EXPECT_TRUE(y.requires_grad());
  EXPECT_FALSE(y.is_leaf());
  EXPECT_STREQ(y.grad_fn()->name(), "square");
}

TEST(Tape, NoGradGuardStopsRecording) {
  Tensor x = leaf({1.0, 2.0});
  {
    NoGradGuard guard;
    EXPECT_FALSE(is_grad_enabled());
    EXPECT_FALSE(square(x).requires_grad());
  }
  EXPECT_TRUE(is_grad_enabled());
  EXPECT_TRUE(square(x).requires_grad());
}

TEST(Tape, AutoGradModeSetsAndRestores) {
  Tensor x = leaf({1.0, 2.0});
  NoGradGuard off;
  {
    AutoGradMode on(true);  // recording inside a no-grad region, as checkpoint's recompute does
    EXPECT_TRUE(square(x).requires_grad());
  }
  EXPECT_FALSE(is_grad_enabled());
}

TEST(Backward, ChainAndAccumulation) {
  Tensor x = leaf({1.0, -2.0, 3.0});
  // L = sum(x^2) + sum(x^2 ^2): x used in two branches; dL/dx = 2x + 4x^3.
  Tensor l1 = total(square(x));
  backward(l1);
  Tensor l2 = total(square(square(x)));
  backward(l2);
  std::vector<double> g = x.grad().to_vector();
  EXPECT_DOUBLE_EQ(g[0], 2 * 1 + 4 * 1);
  EXPECT_DOUBLE_EQ(g[1], 2 * -2 + 4 * -8);
  EXPECT_DOUBLE_EQ(g[2], 2 * 3 + 4 * 27);
}

TEST(Backward, ValueUsedTwiceAccumulates) {
  Tensor x = leaf({2.0});
  Tensor y = square(x);
  Tensor z = add_rows(y, y);  // 2 x^2 -> dz/dx = 4x
  backward(total(z));
  EXPECT_DOUBLE_EQ(x.grad().item(), 8.0);
}

TEST(Backward, BroadcastGradientIsSummedToInputShape) {
  Tensor a = leaf({1, 2, 3, 4, 5, 6}, {2, 3});
  Tensor b = leaf({10, 20, 30}, {3});
  backward(total(square(add_rows(a, b))));
  ASSERT_EQ(b.grad().shape(), Shape({3}));
  // d/db_j sum_i (a_ij + b_j)^2 = 2 sum_i (a_ij + b_j)
  EXPECT_DOUBLE_EQ(b.grad().at({0}), 2 * (11 + 14));
  EXPECT_DOUBLE_EQ(b.grad().at({2}), 2 * (33 + 36));
}

TEST(Backward, NonScalarNeedsExplicitGrad) {
  Tensor x = leaf({1.0, 2.0});
  Tensor y = square(x);
  EXPECT_TG_ERROR(backward(y), "implicitly created only for a one-element output");
  backward(y, tensor({1.0, 10.0}, {}, DType::f64));
  EXPECT_DOUBLE_EQ(x.grad().at({1}), 2 * 2 * 10.0);
  EXPECT_TG_ERROR(backward(square(x), tensor({1.0}, {1}, DType::f64)), "grad has shape [1]");
}

TEST(Backward, ReleasedTapeThrowsUnlessRetained) {
  Tensor x = leaf({3.0});
  Tensor y = square(x);
  Tensor l = total(y);
  backward(l, Tensor(), /*retain_graph=*/true);
  backward(l);  // second pass allowed: the first retained the tape
  EXPECT_DOUBLE_EQ(x.grad().item(), 12.0);
  EXPECT_TG_ERROR(backward(l), "was released by an earlier backward()");
  // Reaching a released node from a new graph also throws, naming it.
  EXPECT_TG_ERROR(backward(total(square(y))), "square");
}

TEST(Backward, NeedsGrad) {
  Tensor x = tensor({1.0}, {}, DType::f64);
  EXPECT_TG_ERROR(backward(square(x)), "does not require grad");
}

TEST(Backward, InPlaceModificationOfSavedTensorThrows) {
  Tensor x = leaf({1.0, 2.0});
  Tensor h = square(x);
  Tensor l = total(square(h));  // the outer square saved h
  h.fill_(0.0);                 // in place: bumps h's version
  EXPECT_TG_ERROR(backward(l), "modified in place after square saved it");
}

TEST(Backward, LeafRootGetsSeed) {
  Tensor x = leaf({5.0});
  backward(x);
  EXPECT_DOUBLE_EQ(x.grad().item(), 1.0);
}

TEST(Backward, DeepChainNeedsNoRecursion) {
  Tensor x = leaf({1.0});
  Tensor y = x;
  for (int i = 0; i < 200000; ++i) y = add_rows(y, zeros({1}, DType::f64));
  backward(total(y));
  EXPECT_DOUBLE_EQ(x.grad().item(), 1.0);
  // A deep graph dropped without backward is destroyed without recursion too.
  Tensor z = x;
  for (int i = 0; i < 200000; ++i) z = add_rows(z, zeros({1}, DType::f64));
  z = Tensor();
  SUCCEED();
}

TEST(Backward, GradientsDoNotAliasBetweenLeaves) {
  Tensor a = leaf({1.0, 2.0});
  Tensor b = leaf({3.0, 4.0});
  backward(total(add_rows(a, b)));  // both receive the same dout
  a.zero_grad();
  EXPECT_DOUBLE_EQ(a.grad().at({0}), 0.0);
  EXPECT_DOUBLE_EQ(b.grad().at({0}), 1.0);
}

TEST(Gradcheck, PassesForCorrectRuleAndFailsForWrongOne) {
  Tensor x = testing::uniform({2, 3}, 1);
  testing::expect_gradcheck([](const std::vector<Tensor>& in) { return square(in[0]); }, {x});
  auto wrong = [](const std::vector<Tensor>& in) {
    const Tensor& x = in[0];
    Tensor y = empty(x.shape(), x.dtype());
    for (int64_t i = 0; i < x.numel(); ++i) y.data<double>()[i] = x.data<double>()[i] * x.data<double>()[i];
    record("bad_square", y, {&x}, [](Node& n, const Tensor& dout) { n.accumulate(0, dout); });
    return y;
  };
  GradcheckOptions quiet;
  quiet.verbose = false;
  GradcheckResult r = gradcheck(wrong, {x}, quiet);
  EXPECT_FALSE(r.passed);
  EXPECT_GT(r.max_abs.error, 0.1);
  EXPECT_NE(r.summary().find("FAILED"), std::string::npos);
}

}  // namespace
}  // namespace tg
