// attention_qkv (a packed [B, T, 3, H, D] projection read in place) against the unfused
// composition it replaces: narrow qkv into q, k, v and call attention(). Forward, returned
// weights and the gradient of qkv, for each mask and dropout, f64 and f32, 1 and 2 threads; a
// non-dense variant (split internally) gives the same numbers too; the errors users get.
#include "ops/attention.h"
#include "ops/binary.h"
#include "ops/kernels/parallel.h"
#include "ops/reduce.h"
#include "ops/shape_ops.h"
#include "test_util.h"

namespace tg {
namespace {

using testing::expect_close;
using testing::uniform;

struct Result {
  Tensor out, weights, dqkv;
};

// loss = sum(out · r) with a fixed random r, so every output element has its own gradient.
Result run(const Tensor& qkv0, const AttentionSpec& spec0, bool packed, bool want_weights) {
  Tensor qkv = qkv0.detach().clone().requires_grad_();
  const int64_t B = qkv.size(0), T = qkv.size(1), H = qkv.size(3), D = qkv.size(4);
  AttentionSpec spec = spec0;
  Generator gen(77);
  spec.generator = &gen;
  Result r;
  Tensor* w = want_weights ? &r.weights : nullptr;
  if (packed) {
    r.out = attention_qkv(qkv, spec, w);
  } else {
    auto piece = [&](int64_t i) { return reshape(narrow(qkv, 2, i, 1), {B, T, H, D}); };
    r.out = attention(piece(0), piece(1), piece(2), spec, w);
  }
  Tensor weight = uniform(r.out.shape(), 5, -1, 1, qkv.dtype());
  backward(sum(mul(r.out, weight)));
  r.dqkv = qkv.grad();
  return r;
}

struct Case {
  std::string what;
  int64_t B, T, H, D;
  AttentionSpec spec;
};

std::vector<Case> cases() {
  std::vector<Case> c;
  c.push_back({"none", 2, 5, 2, 3, {}});
  c.push_back({"causal", 2, 6, 3, 4, {}});
  c.back().spec.causal = true;
  c.push_back({"causal, two row blocks", 1, 70, 2, 3, {}});
  c.back().spec.causal = true;
  c.push_back({"key_lengths", 3, 5, 2, 2, {}});
  c.back().spec.key_lengths = {5, 2, 1};
  c.push_back({"key_padding_mask", 2, 4, 2, 3, {}});
  c.back().spec.key_padding_mask = tensor({0, 0, 1, 1, 0, 1, 0, 0}, {2, 4}, DType::b8);
  c.push_back({"additive attn_mask", 1, 4, 2, 2, {}});
  c.back().spec.attn_mask = uniform({4, 4}, 11, -2, 2);
  c.push_back({"dropout + causal", 2, 7, 2, 3, {}});
  c.back().spec.dropout_p = 0.3;
  c.back().spec.causal = true;
  return c;
}

TEST(AttentionQkv, MatchesSplitCompositionForEveryMask) {
  for (const Case& c : cases())
    for (DType dt : {DType::f64, DType::f32}) {
      SCOPED_TRACE(c.what + " " + std::string(dtype_name(dt)));
      Tensor qkv = uniform({c.B, c.T, 3, c.H, c.D}, 21, -1, 1, dt);
      AttentionSpec spec = c.spec;
      if (spec.attn_mask.defined()) spec.attn_mask = spec.attn_mask.to(dt);
      Result want = run(qkv, spec, false, true), got = run(qkv, spec, true, true);
      const double tol = dt == DType::f64 ? 1e-12 : 1e-5;
      expect_close(got.out, want.out, tol, tol);
      expect_close(got.weights, want.weights, tol, tol);
      ASSERT_TRUE(got.dqkv.defined());
      EXPECT_EQ(got.dqkv.shape(), qkv.shape());
      expect_close(got.dqkv, want.dqkv, tol, tol);
    }
}

TEST(AttentionQkv, SameNumbersOnOneAndTwoThreads) {
  const int saved = get_num_threads();
  Tensor qkv = uniform({3, 9, 3, 4, 5}, 31, -1, 1, DType::f32);
  AttentionSpec spec;
  spec.causal = true;
  spec.dropout_p = 0.2;
  set_num_threads(1);
  Result one = run(qkv, spec, true, false);
  set_num_threads(2);
  Result two = run(qkv, spec, true, false);
  set_num_threads(saved);
  EXPECT_EQ(one.out.to_vector(), two.out.to_vector());
  EXPECT_EQ(one.dqkv.to_vector(), two.dqkv.to_vector());
}

TEST(AttentionQkv, OtherVariantsSplitAndAgree) {
  Tensor qkv = uniform({2, 6, 3, 2, 4}, 41, -1, 1, DType::f64);
  for (AttentionVariant v : {AttentionVariant::flash, AttentionVariant::sliding_window}) {
    SCOPED_TRACE(attention_variant_name(v));
    AttentionSpec spec;
    spec.variant = v;
    spec.causal = true;
    spec.window = 3;
    Result want = run(qkv, spec, false, false), got = run(qkv, spec, true, false);
    expect_close(got.out, want.out, 1e-12, 1e-12);
    expect_close(got.dqkv, want.dqkv, 1e-12, 1e-12);
  }
}

TEST(AttentionQkv, GradcheckF64) {
  AttentionSpec spec;
  spec.causal = true;
  spec.key_lengths = {3, 2};
  testing::expect_gradcheck([spec](const std::vector<Tensor>& in) { return attention_qkv(in[0], spec); },
                            {uniform({2, 3, 3, 2, 2}, 51)});
}

TEST(AttentionQkv, ErrorsNameTheOpAndShape) {
  auto message = [](auto fn) {
    try {
      fn();
    } catch (const Error& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  std::string m = message([] { attention_qkv(uniform({2, 3, 2, 2, 2}, 1)); });
  EXPECT_NE(m.find("attention_qkv"), std::string::npos) << m;
  EXPECT_NE(m.find("[2, 3, 2, 2, 2]"), std::string::npos) << m;
  m = message([] { attention_qkv(uniform({2, 3, 6}, 1)); });
  EXPECT_NE(m.find("[B, T, 3, H, D]"), std::string::npos) << m;
  m = message([] { attention_qkv(tensor({1, 0, 1}, {1, 1, 3, 1, 1}, DType::i64)); });
  EXPECT_NE(m.find("floating"), std::string::npos) << m;
}

}  // namespace
}  // namespace tg
