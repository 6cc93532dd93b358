// Shape ops: values against loops or hand-computed values, views sharing storage (and in-place
// writes through them seen by the base), gradients mapped back (explicit upstream gradients
// here; finite-difference gradchecks in tools/gradcheck/cases_shape.cpp), sizes of split and
// chunk as PyTorch gives them, other dtypes, and the error messages.
#include "test_util.h"

namespace tg {
namespace {

using testing::uniform;

std::vector<double> values(const Tensor& t) { return t.to_vector(); }

// x permuted by loops: output axis i is x's axis perm[i].
Tensor naive_permute(const Tensor& x, const std::vector<int64_t>& perm) {
  const Shape& s = x.shape();
  Shape out_shape;
  for (int64_t p : perm) out_shape.push_back(s[p]);
  std::vector<double> v = x.to_vector(), out(v.size());
  std::vector<int64_t> in_strides = contiguous_strides(s);
  for (int64_t flat = 0; flat < numel(out_shape); ++flat) {
    int64_t rest = flat, src = 0;
    for (size_t d = out_shape.size(); d-- > 0;) {
      src += (rest % out_shape[d]) * in_strides[perm[d]];
      rest /= out_shape[d];
    }
    out[flat] = v[src];
  }
  return tensor(out, out_shape, DType::f64);
}

TEST(Reshape, IsAViewInTheSameOrder) {
  Tensor x = uniform({2, 3, 4}, 1);
  Tensor y = reshape(x, {4, -1});
  EXPECT_EQ(y.shape(), Shape({4, 6}));
  EXPECT_TRUE(y.shares_storage(x));
  EXPECT_EQ(values(y), values(x));
  Tensor z = view(x, {24});
  EXPECT_EQ(z.shape(), Shape({24}));
  EXPECT_TRUE(z.shares_storage(x));
  EXPECT_EQ(reshape(x, {-1}).shape(), Shape({24}));
  EXPECT_EQ(reshape(uniform({0, 3}, 2), {3, 0}).shape(), Shape({3, 0}));
}

TEST(Reshape, Errors) {
  EXPECT_TG_ERROR(
      reshape(zeros({2, 3}), {4, 2}),
      "reshape: cannot reshape a tensor of shape [2, 3] (6 elements) to [4, 2] (8 elements)");
  EXPECT_TG_ERROR(reshape(zeros({2, 3}), {-1, -1}),
                  "reshape: only one size may be -1, got [-1, -1]");
  EXPECT_TG_ERROR(reshape(zeros({2, 3}), {4, -1}),
                  "reshape: cannot reshape a tensor of shape [2, 3] (6 elements) to [4, -1]");
  EXPECT_TG_ERROR(reshape(zeros({0, 3}), {-1, 0}),
                  "reshape: cannot reshape a tensor of shape [0, 3]");
  EXPECT_TG_ERROR(reshape(zeros({2, 3}), {-2, -3}), "reshape: invalid size -2 in shape [-2, -3]");
  EXPECT_TG_ERROR(view(zeros({2, 3}), {5}), "view: cannot reshape a tensor of shape [2, 3]");
}

TEST(Reshape, GradientIsReshapedBack) {
  Tensor x = uniform({2, 3}, 3).requires_grad_();
  Tensor g = uniform({3, 2}, 4);
  backward(reshape(x, {3, 2}), g);
  EXPECT_EQ(x.grad().shape(), Shape({2, 3}));
  EXPECT_EQ(values(x.grad()), values(g));
}

TEST(Views, WritesThroughAViewAreSeenByTheBase) {
  Tensor x = zeros({4, 3}, DType::f64);
  uint64_t v0 = x.version();
  reshape(x, {12}).set({4}, 7.0);
  EXPECT_GT(x.version(), v0);
  EXPECT_EQ(x.at({1, 1}), 7.0);

  uint64_t v1 = x.version();
  Tensor rows = narrow(x, 0, 2, 2);
  rows.fill_(2.0);
  EXPECT_GT(x.version(), v1);
  EXPECT_EQ(x.at({2, 0}), 2.0);
  EXPECT_EQ(x.at({3, 2}), 2.0);
  EXPECT_EQ(x.at({1, 2}), 0.0);

  unsqueeze(x, 0).set({0, 0, 0}, 5.0);
  EXPECT_EQ(x.at({0, 0}), 5.0);
  squeeze(unsqueeze(x, 1), 1).set({0, 1}, 6.0);
  EXPECT_EQ(x.at({0, 1}), 6.0);
}

TEST(Views, InPlaceWriteThroughAViewInvalidatesASavedTensor) {
  Tensor x = uniform({2, 3}, 5).requires_grad_();
  Tensor w = uniform({4, 3}, 6).requires_grad_();
  Tensor y = linear(x, w);  // saves x for dW
  reshape(x.detach(), {6}).set({0}, 1.0);
  EXPECT_TG_ERROR(backward(y, ones({2, 4}, DType::f64)),
                  "linear backward: the tensor saved as 'x' (shape [2, 3]) was modified in place");
}

TEST(UnsqueezeSqueeze, ShapesAndErrors) {
  Tensor x = uniform({2, 3}, 7);
  EXPECT_EQ(unsqueeze(x, 0).shape(), Shape({1, 2, 3}));
  EXPECT_EQ(unsqueeze(x, 2).shape(), Shape({2, 3, 1}));
  EXPECT_EQ(unsqueeze(x, -1).shape(), Shape({2, 3, 1}));
  EXPECT_EQ(unsqueeze(x, -3).shape(), Shape({1, 2, 3}));
  EXPECT_TRUE(unsqueeze(x, 1).shares_storage(x));
  Tensor y = uniform({2, 1, 3}, 8);
  EXPECT_EQ(squeeze(y, 1).shape(), Shape({2, 3}));
  EXPECT_EQ(squeeze(y, -2).shape(), Shape({2, 3}));
  EXPECT_EQ(squeeze(y, 0).shape(), Shape({2, 1, 3}));  // size 2: unchanged, as PyTorch
  EXPECT_EQ(squeeze(uniform({1}, 9), 0).shape(), Shape({}));
  EXPECT_TRUE(squeeze(y, 1).shares_storage(y));
  EXPECT_TG_ERROR(unsqueeze(x, 3),
                  "unsqueeze: axis 3 is out of range for shape [2, 3] (expected -3 to 2)");
  EXPECT_TG_ERROR(squeeze(x, 2), "squeeze: axis 2 is out of range for a tensor of rank 2");

  Tensor z = uniform({2, 3}, 10).requires_grad_();
  Tensor g = uniform({2, 1, 3}, 11);
  backward(unsqueeze(z, 1), g);
  EXPECT_EQ(z.grad().shape(), Shape({2, 3}));
  EXPECT_EQ(values(z.grad()), values(g));
}

TEST(Transpose, ValuesAndGradient) {
  Tensor x = uniform({2, 3, 4}, 12).requires_grad_();
  Tensor y = transpose(x, 0, -1);
  ASSERT_EQ(y.shape(), Shape({4, 3, 2}));
  EXPECT_FALSE(y.shares_storage(x));
  for (int64_t i = 0; i < 2; ++i)
    for (int64_t j = 0; j < 3; ++j)
      for (int64_t k = 0; k < 4; ++k) EXPECT_EQ(y.at({k, j, i}), x.at({i, j, k}));
  Tensor g = uniform({4, 3, 2}, 13);
  backward(y, g);
  for (int64_t i = 0; i < 2; ++i)
    for (int64_t j = 0; j < 3; ++j)
      for (int64_t k = 0; k < 4; ++k) EXPECT_EQ(x.grad().at({i, j, k}), g.at({k, j, i}));
  EXPECT_TG_ERROR(transpose(x, 0, 3), "transpose: axis 3 is out of range for a tensor of rank 3");
}

TEST(Permute, ValuesMatchLoops) {
  Tensor x = uniform({2, 3, 4, 5}, 14);
  for (const auto& perm :
       std::vector<std::vector<int64_t>>{{2, 0, 3, 1}, {0, 2, 1, 3}, {3, 2, 1, 0}, {0, 1, 2, 3}}) {
    Tensor y = permute(x, perm);
    testing::expect_close(y, naive_permute(x, perm), 0, 0);
    EXPECT_EQ(values(permute(x.to(DType::f32), perm)), values(y.to(DType::f32)));
  }
  // Sizes past one 32 x 32 tile of the transposing copy, with partial tiles.
  Tensor big = uniform({3, 37, 70}, 30);
  for (const auto& perm : std::vector<std::vector<int64_t>>{{2, 1, 0}, {0, 2, 1}, {1, 2, 0}})
    testing::expect_close(permute(big, perm), naive_permute(big, perm), 0, 0);
  // Negative dims, and the gradient is permuted back.
  Tensor z = uniform({2, 3, 4}, 15).requires_grad_();
  Tensor g = uniform({4, 2, 3}, 16);
  backward(permute(z, {-1, 0, 1}), g);
  testing::expect_close(z.grad(), naive_permute(g, {1, 2, 0}), 0, 0);
}

TEST(Permute, Errors) {
  Tensor x = zeros({2, 3, 4});
  EXPECT_TG_ERROR(permute(x, {0, 1}),
                  "permute: dims [0, 1] name 2 axes for a tensor of shape [2, 3, 4] (rank 3)");
  EXPECT_TG_ERROR(permute(x, {0, 2, -1}),
                  "permute: dims [0, 2, -1] is not a permutation (axis -1 repeats)");
  EXPECT_TG_ERROR(permute(x, {0, 1, 3}), "permute: axis 3 is out of range for a tensor of rank 3");
}

TEST(Narrow, ViewOnAxisZeroCopyElsewhere) {
  Tensor x = uniform({4, 3}, 17);
  Tensor r = narrow(x, 0, 1, 2);
  EXPECT_TRUE(r.shares_storage(x));
  ASSERT_EQ(r.shape(), Shape({2, 3}));
  for (int64_t i = 0; i < 2; ++i)
    for (int64_t j = 0; j < 3; ++j) EXPECT_EQ(r.at({i, j}), x.at({i + 1, j}));
  Tensor c = narrow(x, 1, 1, 2);
  EXPECT_FALSE(c.shares_storage(x));
  ASSERT_EQ(c.shape(), Shape({4, 2}));
  for (int64_t i = 0; i < 4; ++i)
    for (int64_t j = 0; j < 2; ++j) EXPECT_EQ(c.at({i, j}), x.at({i, j + 1}));
  EXPECT_EQ(values(narrow(x, 0, -2, 2)), values(narrow(x, 0, 2, 2)));  // negative start
  // Contiguous pieces are views too: the whole axis, or after leading size-1 axes.
  EXPECT_TRUE(narrow(x, 1, 0, 3).shares_storage(x));
  Tensor y = uniform({1, 5, 2}, 18);
  Tensor p = narrow(y, 1, 1, 3);
  EXPECT_TRUE(p.shares_storage(y));
  EXPECT_EQ(p.at({0, 2, 1}), y.at({0, 3, 1}));

  EXPECT_TG_ERROR(
      narrow(x, 0, 3, 2),
      "narrow: start 3 and length 2 are out of range for axis 0 (size 4) of shape [4, 3]");
  EXPECT_TG_ERROR(narrow(x, 2, 0, 1), "narrow: axis 2 is out of range for a tensor of rank 2");
}

TEST(Narrow, GradientLandsInTheRightPlace) {
  for (int64_t axis : {0, 1}) {
    Tensor x = uniform({4, 3}, 19).requires_grad_();
    Tensor y = narrow(x, axis, 1, 2);
    backward(y, ones(y.shape(), DType::f64));
    for (int64_t i = 0; i < 4; ++i)
      for (int64_t j = 0; j < 3; ++j) {
        int64_t pos = axis == 0 ? i : j;
        EXPECT_EQ(x.grad().at({i, j}), pos >= 1 && pos < 3 ? 1.0 : 0.0)
            << axis << " " << i << " " << j;
      }
  }
}

TEST(Slice, PythonSemantics) {
  Tensor x = arange(10, DType::f64);
  auto v = [&](int64_t start, int64_t end, int64_t step) {
    return values(slice(x, 0, start, end, step));
  };
  EXPECT_EQ(v(-3, 100, 1), std::vector<double>({7, 8, 9}));
  EXPECT_EQ(v(1, 8, 3), std::vector<double>({1, 4, 7}));
  EXPECT_EQ(v(-100, 4, 2), std::vector<double>({0, 2}));
  EXPECT_EQ(v(5, 2, 1), std::vector<double>({}));
  EXPECT_EQ(v(2, -2, 1), std::vector<double>({2, 3, 4, 5, 6, 7}));
  EXPECT_EQ(v(0, 10, 4), std::vector<double>({0, 4, 8}));
  Tensor m = reshape(arange(21, DType::f64), {3, 7});
  Tensor s = slice(m, 1, -6, -1, 2);  // columns 1, 3, 5
  ASSERT_EQ(s.shape(), Shape({3, 3}));
  EXPECT_EQ(values(s), std::vector<double>({1, 3, 5, 8, 10, 12, 15, 17, 19}));
  EXPECT_TG_ERROR(slice(x, 0, 0, 5, 0), "slice: step must be positive, got 0 (shape [10])");
  EXPECT_TG_ERROR(slice(x, 0, 5, 0, -1), "slice: step must be positive, got -1");
}

TEST(Slice, GradientLandsOnTheSelectedElements) {
  Tensor x = uniform({2, 7}, 20).requires_grad_();
  backward(slice(x, 1, 1, 6, 2), tensor({1, 2, 3, 4, 5, 6}, {2, 3}, DType::f64));
  EXPECT_EQ(values(x.grad()), std::vector<double>({0, 1, 0, 2, 0, 3, 0, 0, 4, 0, 5, 0, 6, 0}));
}

TEST(Cat, ValuesGradientsAndErrors) {
  Tensor a = uniform({2, 1}, 21).requires_grad_(), b = uniform({2, 3}, 22).requires_grad_();
  Tensor y = cat({a, b}, -1);
  ASSERT_EQ(y.shape(), Shape({2, 4}));
  for (int64_t i = 0; i < 2; ++i) {
    EXPECT_EQ(y.at({i, 0}), a.at({i, 0}));
    for (int64_t j = 0; j < 3; ++j) EXPECT_EQ(y.at({i, j + 1}), b.at({i, j}));
  }
  Tensor g = uniform({2, 4}, 23);
  backward(y, g);
  EXPECT_EQ(values(a.grad()), std::vector<double>({g.at({0, 0}), g.at({1, 0})}));
  EXPECT_EQ(b.grad().at({1, 2}), g.at({1, 3}));
  EXPECT_EQ(values(cat({a, a}, 0)),
            std::vector<double>({a.at({0, 0}), a.at({1, 0}), a.at({0, 0}), a.at({1, 0})}));
  EXPECT_EQ(values(cat({tensor({1, 2}, {2}, DType::i64), tensor({3}, {1}, DType::i64)})),
            std::vector<double>({1, 2, 3}));

  EXPECT_TG_ERROR(cat({}, 0), "cat: expected a non-empty list of tensors");
  EXPECT_TG_ERROR(cat({zeros({2, 1}), zeros({2, 1}, DType::f64)}, 1),
                  "cat: tensor 1 is f64 but tensor 0 is f32");
  EXPECT_TG_ERROR(cat({zeros({2, 1}), zeros({3, 3})}, 1),
                  "cat: tensor 1 has shape [3, 3] but tensor 0 has shape [2, 1]; they must match "
                  "except along axis 1");
  EXPECT_TG_ERROR(cat({zeros({2, 1}), zeros({2})}, 0), "cat: tensor 1 has shape [2]");
  EXPECT_TG_ERROR(cat({zeros({2, 1})}, 2), "cat: axis 2 is out of range for a tensor of rank 2");
}

TEST(Stack, ValuesAndErrors) {
  std::vector<Tensor> xs{uniform({2, 3}, 24), uniform({2, 3}, 25), uniform({2, 3}, 26)};
  Tensor mid = stack(xs, 1), last = stack(xs, -1), first = stack(xs);
  ASSERT_EQ(mid.shape(), Shape({2, 3, 3}));
  ASSERT_EQ(first.shape(), Shape({3, 2, 3}));
  for (int64_t k = 0; k < 3; ++k)
    for (int64_t i = 0; i < 2; ++i)
      for (int64_t j = 0; j < 3; ++j) {
        EXPECT_EQ(mid.at({i, k, j}), xs[k].at({i, j}));
        EXPECT_EQ(last.at({i, j, k}), xs[k].at({i, j}));
        EXPECT_EQ(first.at({k, i, j}), xs[k].at({i, j}));
      }
  EXPECT_TG_ERROR(stack({zeros({2, 3}), zeros({2, 2})}),
                  "stack: tensor 1 has shape [2, 2] but tensor 0 has shape [2, 3]; all must match");
  EXPECT_TG_ERROR(stack({}), "stack: expected a non-empty list of tensors");
  EXPECT_TG_ERROR(stack({zeros({2})}, 2), "stack: axis 2 is out of range for a tensor of rank 2");
}

std::vector<int64_t> sizes(const std::vector<Tensor>& pieces, int64_t axis) {
  std::vector<int64_t> s;
  for (const Tensor& p : pieces) s.push_back(p.size(axis));
  return s;
}

TEST(Split, PiecesAsTorch) {
  Tensor x = reshape(arange(10, DType::f64), {5, 2});
  auto p = split(x, 2);
  EXPECT_EQ(sizes(p, 0), std::vector<int64_t>({2, 2, 1}));
  EXPECT_EQ(values(p[2]), std::vector<double>({8, 9}));
  EXPECT_TRUE(p[1].shares_storage(x));  // axis-0 pieces are views
  auto q = split(x, 1, 1);
  EXPECT_EQ(sizes(q, 1), std::vector<int64_t>({1, 1}));
  EXPECT_EQ(values(q[1]), std::vector<double>({1, 3, 5, 7, 9}));
  EXPECT_EQ(sizes(split(x, 10), 0), std::vector<int64_t>({5}));
  EXPECT_EQ(sizes(split(zeros({0, 2}), 3), 0), std::vector<int64_t>({0}));
  EXPECT_EQ(sizes(split(zeros({0, 2}), 0), 0), std::vector<int64_t>({0}));
  EXPECT_TG_ERROR(split(x, 0),
                  "split: split_size must be positive, got 0 (axis 0 of shape [5, 2])");
  EXPECT_TG_ERROR(split(x, 2, 2), "split: axis 2 is out of range");

  Tensor z = uniform({5, 2}, 27).requires_grad_();
  backward(split(z, 2)[1], ones({2, 2}, DType::f64));  // rows 2 and 3
  EXPECT_EQ(values(z.grad()), std::vector<double>({0, 0, 0, 0, 1, 1, 1, 1, 0, 0}));
}

TEST(Chunk, PiecesAsTorch) {
  EXPECT_EQ(sizes(chunk(zeros({5}), 3), 0), std::vector<int64_t>({2, 2, 1}));
  EXPECT_EQ(sizes(chunk(zeros({6}), 4), 0), std::vector<int64_t>({2, 2, 2}));  // fewer than asked
  EXPECT_EQ(sizes(chunk(zeros({4}), 6), 0), std::vector<int64_t>({1, 1, 1, 1}));
  EXPECT_EQ(sizes(chunk(zeros({6}), 3), 0), std::vector<int64_t>({2, 2, 2}));
  EXPECT_EQ(sizes(chunk(zeros({2, 0}), 3, 1), 1), std::vector<int64_t>({0, 0, 0}));
  Tensor x = reshape(arange(12, DType::f64), {2, 6});
  auto p = chunk(x, 3, -1);
  EXPECT_EQ(values(p[1]), std::vector<double>({2, 3, 8, 9}));
  EXPECT_TG_ERROR(chunk(x, 0), "chunk: chunks must be positive, got 0 (shape [2, 6])");
}

TEST(Expand, ValuesGradientAndErrors) {
  Tensor x = uniform({3, 1}, 28).requires_grad_();
  Tensor y = expand(x, {2, 3, 4});
  ASSERT_EQ(y.shape(), Shape({2, 3, 4}));
  for (int64_t i = 0; i < 2; ++i)
    for (int64_t j = 0; j < 3; ++j)
      for (int64_t k = 0; k < 4; ++k) EXPECT_EQ(y.at({i, j, k}), x.at({j, 0}));
  backward(y, ones({2, 3, 4}, DType::f64));
  EXPECT_EQ(values(x.grad()), std::vector<double>({8, 8, 8}));
  EXPECT_EQ(expand(x, {-1, 5}).shape(), Shape({3, 5}));
  EXPECT_EQ(values(expand(tensor({1, 2}, {2}, DType::i64), {2, 2})),
            std::vector<double>({1, 2, 1, 2}));

  EXPECT_TG_ERROR(expand(zeros({3, 2}), {3, 4}),
                  "expand: cannot expand shape [3, 2] to [3, 4] (axis 1: 2 vs 4)");
  EXPECT_TG_ERROR(expand(zeros({3, 2}), {2}),
                  "expand: cannot expand shape [3, 2] to [2] (fewer axes)");
  EXPECT_TG_ERROR(expand(zeros({3}), {-1, 3}),
                  "expand: cannot expand shape [3] to [-1, 3] (size -1 for new axis 0)");
}

TEST(ShapeOps, F32MatchesF64AndOtherDtypesCopy) {
  Tensor x = uniform({3, 4, 5}, 29);
  Tensor x32 = x.to(DType::f32);
  EXPECT_EQ(values(permute(x32, {2, 0, 1})), values(permute(x, {2, 0, 1}).to(DType::f32)));
  EXPECT_EQ(values(slice(x32, 1, 0, 4, 3)), values(slice(x, 1, 0, 4, 3).to(DType::f32)));
  EXPECT_EQ(values(cat({x32, x32}, 2)), values(cat({x, x}, 2).to(DType::f32)));
  Tensor mask = tensor({1, 0, 0, 1, 1, 0}, {2, 3}, DType::b8);
  Tensor t = transpose(mask, 0, 1);
  EXPECT_EQ(t.dtype(), DType::b8);
  EXPECT_EQ(values(t), std::vector<double>({1, 1, 0, 1, 0, 0}));
}

}  // namespace
}  // namespace tg
