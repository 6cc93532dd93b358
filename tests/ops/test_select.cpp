// where and masked_fill: forward against a naive broadcast loop, gradients by hand through the
// masks (with broadcast sums), integer and bool inputs, errors. Gradchecks live in
// tools/gradcheck/cases_elementwise.cpp.
#include <limits>

#include "test_util.h"

namespace tg {
namespace {

using testing::expect_close;
using testing::uniform;

// Flat index into a tensor of shape `in` (which broadcasts to `out`) read by output element i.
int64_t source_index(const Shape& in, const Shape& out, int64_t i) {
  int64_t idx = 0, stride = 1;
  size_t lead = out.size() - in.size();
  for (size_t d = out.size(); d-- > 0;) {
    int64_t k = i % out[d];
    i /= out[d];
    if (d < lead) continue;
    int64_t s = in[d - lead];
    if (s != 1) idx += k * stride;
    stride *= s;
  }
  return idx;
}

// A b8 tensor, true with probability about one half.
Tensor random_mask(const Shape& shape, uint64_t seed) {
  std::vector<double> u = uniform(shape, seed).to_vector();
  for (double& v : u) v = v > 0 ? 1.0 : 0.0;
  return tensor(u, shape, DType::b8);
}

struct Case3 {
  Shape c, a, b, out;
};

TEST(Where, ForwardMatchesNaiveBroadcast) {
  const std::vector<Case3> cases = {
      {{2, 3}, {2, 3}, {2, 3}, {2, 3}},
      {{3, 1}, {1, 4}, {}, {3, 4}},
      {{4}, {2, 3, 4}, {3, 1}, {2, 3, 4}},
      {{2, 1, 4}, {3, 1}, {1}, {2, 3, 4}},
      {{}, {2, 2}, {2, 1}, {2, 2}},
      {{0, 3}, {3}, {1, 3}, {0, 3}},
      {{300, 1, 257}, {1, 2, 257}, {257}, {300, 2, 257}},
  };
  uint64_t seed = 1;
  for (const Case3& k : cases) {
    SCOPED_TRACE(shape_str(k.c) + " " + shape_str(k.a) + " " + shape_str(k.b));
    Tensor c = random_mask(k.c, seed++), a = uniform(k.a, seed++), b = uniform(k.b, seed++);
    Tensor y = where(c, a, b);
    ASSERT_EQ(y.shape(), k.out);
    std::vector<double> vc = c.to_vector(), va = a.to_vector(), vb = b.to_vector(), r;
    for (int64_t i = 0; i < numel(k.out); ++i)
      r.push_back(vc[size_t(source_index(k.c, k.out, i))] != 0 ? va[size_t(source_index(k.a, k.out, i))]
                                                               : vb[size_t(source_index(k.b, k.out, i))]);
    expect_close(y, tensor(r, k.out, DType::f64), 0, 0);
    // f32 selects the same values.
    expect_close(where(c, a.to(DType::f32), b.to(DType::f32)).to(DType::f64), y.to(DType::f32).to(DType::f64), 0, 0);
  }
}

TEST(Where, GradientsGoToTheSelectedSide) {
  Tensor c = random_mask({2, 3}, 11);
  Tensor a = uniform({2, 3}, 12), b = uniform({}, 13);
  a.requires_grad_();
  b.requires_grad_();
  Tensor g = uniform({2, 3}, 14);
  backward(where(c, a, b), g);
  double b_expected = 0;
  for (int64_t i = 0; i < 2; ++i)
    for (int64_t j = 0; j < 3; ++j) {
      bool on = c.at({i, j}) != 0;
      EXPECT_EQ(a.grad().at({i, j}), on ? g.at({i, j}) : 0.0);
      if (!on) b_expected += g.at({i, j});
    }
  ASSERT_EQ(b.grad().shape(), Shape{});
  EXPECT_NEAR(b.grad().item(), b_expected, 1e-15);
}

TEST(Where, IntegerAndBoolValues) {
  Tensor c = tensor({1, 0, 1}, {3}, DType::b8);
  Tensor a = tensor({1, 2, 3}, {3}, DType::i64), b = tensor({-1}, {1}, DType::i64);
  EXPECT_EQ(where(c, a, b).to_vector(), (std::vector<double>{1, -1, 3}));
  EXPECT_EQ(where(c, zeros({3}, DType::b8), ones({}, DType::b8)).to_vector(), (std::vector<double>{0, 1, 0}));
}

TEST(Where, Errors) {
  Tensor c = random_mask({2, 3}, 1), a = zeros({2, 3}), b = zeros({2, 3});
  EXPECT_TG_ERROR(where(a, a, b), "where: condition must be b8 (bool), got f32 of shape [2, 3]");
  EXPECT_TG_ERROR(where(c, a, zeros({2, 3}, DType::f64)),
                  "where: a and b must have the same dtype, got f32 and f64");
  EXPECT_TG_ERROR(where(c, a, zeros({4})),
                  "where: shapes [2, 3] (condition), [2, 3] (a) and [4] (b) do not broadcast");
  EXPECT_TG_ERROR(where(random_mask({5}, 2), a, b), "where: shapes [5] (condition)");
  EXPECT_TG_ERROR(where(Tensor(), a, b), "where: condition is undefined");
}

TEST(MaskedFill, ForwardMatchesNaive) {
  const std::vector<std::pair<Shape, Shape>> cases = {
      {{2, 3}, {2, 3}}, {{2, 3, 4}, {3, 1}}, {{3, 4}, {}}, {{2, 2, 3}, {2, 1, 1}},
      {{0, 3}, {3}},    {{}, {}},            {{200, 300}, {300}},
  };
  uint64_t seed = 20;
  for (auto& [xs, ms] : cases) {
    SCOPED_TRACE(shape_str(xs) + " " + shape_str(ms));
    Tensor x = uniform(xs, seed++), m = random_mask(ms, seed++);
    Tensor y = masked_fill(x, m, -7.5);
    std::vector<double> vx = x.to_vector(), vm = m.to_vector(), r;
    for (int64_t i = 0; i < numel(xs); ++i)
      r.push_back(vm[size_t(source_index(ms, xs, i))] != 0 ? -7.5 : vx[size_t(i)]);
    expect_close(y, tensor(r, xs, DType::f64), 0, 0);
  }
}

TEST(MaskedFill, GradientIsZeroWhereFilled) {
  Tensor x = uniform({2, 4}, 31), m = random_mask({4}, 32);
  x.requires_grad_();
  Tensor g = uniform({2, 4}, 33);
  backward(masked_fill(x, m, 3.0), g);
  for (int64_t i = 0; i < 2; ++i)
    for (int64_t j = 0; j < 4; ++j)
      EXPECT_EQ(x.grad().at({i, j}), m.at({j}) != 0 ? 0.0 : g.at({i, j}));
}

TEST(MaskedFill, AttentionStyleAndOtherDtypes) {
  // -inf fill for an additive attention mask in f32.
  Tensor scores = zeros({2, 2});
  Tensor causal = tensor({0, 1, 0, 0}, {2, 2}, DType::b8);
  Tensor y = masked_fill(scores, causal, -std::numeric_limits<double>::infinity());
  EXPECT_EQ(y.dtype(), DType::f32);
  EXPECT_TRUE(std::isinf(y.at({0, 1})) && y.at({0, 1}) < 0);
  EXPECT_EQ(y.at({1, 0}), 0.0);
  EXPECT_EQ(masked_fill(tensor({1, 2, 3}, {3}, DType::i64), tensor({0, 1, 0}, {3}, DType::b8), 9).to_vector(),
            (std::vector<double>{1, 9, 3}));
  EXPECT_EQ(masked_fill(zeros({3}, DType::b8), tensor({1}, {1}, DType::b8), 1).to_vector(),
            (std::vector<double>{1, 1, 1}));
}

TEST(MaskedFill, Errors) {
  Tensor x = zeros({3});
  EXPECT_TG_ERROR(masked_fill(x, zeros({3}), 0), "masked_fill: mask must be b8 (bool), got f32 of shape [3]");
  // The mask broadcasts to x, never x to the mask.
  EXPECT_TG_ERROR(masked_fill(x, random_mask({2, 3}, 1), 0),
                  "masked_fill: mask of shape [2, 3] does not broadcast to x's shape [3]");
  EXPECT_TG_ERROR(masked_fill(x, random_mask({2}, 1), 0), "does not broadcast to x's shape [3]");
  EXPECT_TG_ERROR(masked_fill(Tensor(), random_mask({2}, 1), 0), "masked_fill: x is undefined");
}

}  // namespace
}  // namespace tg
