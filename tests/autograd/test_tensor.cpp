// Tensor: factories, views, element access, dtype conversion, printing, and user errors.
#include <sstream>

#include "test_util.h"

namespace tg {
namespace {

TEST(Tensor, FactoriesFillValues) {
  Tensor z = zeros({2, 3});
  EXPECT_EQ(z.shape(), Shape({2, 3}));
  EXPECT_EQ(z.dtype(), DType::f32);
  EXPECT_EQ(z.numel(), 6);
  for (double v : z.to_vector()) EXPECT_EQ(v, 0.0);
  for (double v : ones({4}, DType::f64).to_vector()) EXPECT_EQ(v, 1.0);
  for (double v : full({2, 2}, -2.5).to_vector()) EXPECT_EQ(v, -2.5);
  EXPECT_EQ(arange(5).to_vector(), std::vector<double>({0, 1, 2, 3, 4}));
  EXPECT_EQ(arange(1.0, 2.0, 0.25, DType::f64).to_vector(), std::vector<double>({1, 1.25, 1.5, 1.75}));
  EXPECT_EQ(arange(3.0, 0.0, -1.0).to_vector(), std::vector<double>({3, 2, 1}));
  EXPECT_EQ(tensor({1.0, 2.0, 3.0, 4.0}, {2, 2}).at({1, 0}), 3.0);
  double raw[3] = {7, 8, 9};
  Tensor c = copy_from(raw, {3});
  raw[0] = 0;  // the tensor owns a copy
  EXPECT_EQ(c.at({0}), 7.0);
  EXPECT_EQ(c.dtype(), DType::f64);
  Tensor s = full({}, 4.0);
  EXPECT_EQ(s.dim(), 0);
  EXPECT_EQ(s.item(), 4.0);
}

TEST(Tensor, EmptyAndSizeOneAxes) {
  Tensor e = zeros({0, 3});
  EXPECT_EQ(e.numel(), 0);
  EXPECT_TRUE(e.to_vector().empty());
  Tensor o = ones({1, 1, 1});
  EXPECT_EQ(o.item(), 1.0);
}

TEST(Tensor, IntegerAndBoolDtypes) {
  Tensor ids = tensor({3, 1, 4}, {}, DType::i64);
  EXPECT_EQ(ids.data<int64_t>()[2], 4);
  Tensor mask = tensor({1, 0}, {}, DType::b8);
  EXPECT_TRUE(mask.data<bool>()[0]);
  EXPECT_FALSE(mask.data<bool>()[1]);
  EXPECT_TG_ERROR(ids.data<float>(), "tensor is i64, asked for f32");
  EXPECT_TG_ERROR(ids.requires_grad_(), "only f32 and f64 tensors can require grad");
}

TEST(Tensor, CastRoundTripAndGradientFlowsThroughTo) {
  Tensor x = tensor({1.5, -2.25}, {}, DType::f64);
  Tensor f = x.to(DType::f32);
  EXPECT_EQ(f.dtype(), DType::f32);
  EXPECT_EQ(f.to_vector(), x.to_vector());
  x.requires_grad_();
  Tensor y = x.to(DType::f32).to(DType::f64);
  backward(y, tensor({3.0, 4.0}, {}, DType::f64));
  EXPECT_EQ(x.grad().to_vector(), std::vector<double>({3.0, 4.0}));
}

TEST(Tensor, ViewsShareStorageAndVersions) {
  Tensor x = arange(6);
  Tensor v = x.view_of({2}, 2);  // elements 2, 3
  EXPECT_TRUE(v.shares_storage(x));
  EXPECT_EQ(v.to_vector(), std::vector<double>({2, 3}));
  uint64_t before = x.version();
  v.fill_(9.0);
  EXPECT_GT(x.version(), before);  // the base sees the in-place write
  EXPECT_EQ(x.at({3}), 9.0);
  EXPECT_TG_ERROR(x.view_of({4}, 4), "does not fit");
}

TEST(Tensor, CloneCopiesAndDetachShares) {
  Tensor x = arange(3);
  Tensor c = x.clone();
  Tensor d = x.detach();
  x.set({0}, 5.0);
  EXPECT_EQ(c.at({0}), 0.0);
  EXPECT_EQ(d.at({0}), 5.0);
  EXPECT_FALSE(c.shares_storage(x));
  EXPECT_TRUE(d.shares_storage(x));
}

TEST(Tensor, RequiresGradOnlyOnLeaves) {
  Tensor x = ones({2}, DType::f64);
  x.requires_grad_();
  Tensor y = x.clone();
  EXPECT_TRUE(y.requires_grad());
  EXPECT_FALSE(y.is_leaf());
  EXPECT_TG_ERROR(y.requires_grad_(), "only a leaf can be marked");
  EXPECT_FALSE(y.detach().requires_grad());
}

TEST(Tensor, ZeroGradKeepsBuffer) {
  Tensor x = ones({2}, DType::f64);
  x.requires_grad_();
  backward(x.clone(), ones({2}, DType::f64));
  Tensor g = x.grad();
  x.zero_grad();
  EXPECT_TRUE(x.grad().shares_storage(g));
  EXPECT_EQ(x.grad().to_vector(), std::vector<double>({0, 0}));
}

TEST(Tensor, UserErrorsNameTheProblem) {
  Tensor x = zeros({2, 3});
  EXPECT_TG_ERROR(x.item(), "item: the tensor has 6 elements (shape [2, 3])");
  EXPECT_TG_ERROR(x.at({2, 0}), "at: index 2 out of range for axis 0 of shape [2, 3]");
  EXPECT_TG_ERROR(x.at({0}), "index of rank 1 for a tensor of shape [2, 3]");
  EXPECT_TG_ERROR(x.size(2), "axis 2 is out of range for a tensor of rank 2");
  EXPECT_TG_ERROR(zeros({2, -1}), "negative size in shape [2, -1]");
  EXPECT_TG_ERROR(tensor({1.0, 2.0}, {3}), "2 values for shape [3]");
  EXPECT_TG_ERROR(x.copy_(zeros({3})), "copy_: source of shape [3]");
  EXPECT_TG_ERROR(Tensor().shape(), "undefined");
  EXPECT_TG_ERROR(arange(0.0, 1.0, 0.0), "step must be non-zero");
}

TEST(Tensor, PrintsWithFmtAndStreams) {
  Tensor x = tensor({1.0, 2.5, -3.0, 4.0}, {2, 2});
  std::string s = fmt::format("{}", x);
  EXPECT_NE(s.find("[[1, 2.5],"), std::string::npos) << s;
  EXPECT_NE(s.find("shape=[2, 2], dtype=f32"), std::string::npos) << s;
  std::ostringstream os;
  os << arange(100);
  EXPECT_NE(os.str().find("..."), std::string::npos);  // long axes are elided
}

}  // namespace
}  // namespace tg
