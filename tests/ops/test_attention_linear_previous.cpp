// The chunked linear attention kernel (ops/kernels/attention_linear.cpp) against the kernel it
// replaced, kept in test_attention_linear_previous_kernel.h: the same function, forward and
// backward, f64 within 1e-12 and f32 within 2e-5 of each result's largest magnitude, over shapes
// that reach every path of the register tiles (D = Dv = 64; widths that leave vector and scalar
// tails; several chunks and a partial last one; S != T; query_offset; key padding; FAVOR+;
// empty sizes). Then the f32 kernel against the f64 one at T = 16384, where each state is an f32
// sum over up to 16384 keys. (The op against the quadratic form: test_attention_linear.cpp.)
#include <algorithm>
#include <cmath>
#include <stdexcept>
#include <string>
#include <vector>

#include "ops/kernels/attention_linear.h"
#include "test_attention_linear_previous_kernel.h"
#include "test_util.h"

namespace tg {
namespace {

namespace previous = testing::linear_previous;

struct Case {
  int64_t B, T, S, H, D, Dv;
  int64_t query_offset = 0;
  bool padded = false;   // every fifth key (from the fourth) is padding
  int64_t favor_M = 0;   // FAVOR+ features, 0 for elu
};

template <class T>
struct Results {
  std::vector<T> out, dq, dk, dv;
};

// max |a - b| / max |b| (or max |a - b| when b is all zeros).
template <class T, class U>
double relative_error(const std::vector<T>& a, const std::vector<U>& b) {
  double err = 0, mag = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    err = std::max(err, std::fabs(static_cast<double>(a[i]) - static_cast<double>(b[i])));
    mag = std::max(mag, std::fabs(static_cast<double>(b[i])));
  }
  return mag > 0 ? err / mag : err;
}

template <class T>
std::vector<T> random_values(int64_t n, uint64_t seed, double range) {
  Tensor t = testing::uniform({n}, seed, -range, range, DType::f64);
  const double* p = t.data<double>();
  return std::vector<T>(p, p + n);
}

// Runs the chunked kernel (previous = false) or the previous one on the case's inputs; with_states:
// the chunked kernel's backward starts from the forward's states of all keys (non-causal).
template <class T>
Results<T> run(const Case& c, bool causal, bool use_previous, uint64_t seed, bool with_states = false) {
  kernels::AttnDims d;
  d.B = c.B, d.T = c.T, d.S = c.S, d.H = c.H, d.D = c.D, d.Dv = c.Dv;
  d.query_offset = c.query_offset;
  std::vector<T> q = random_values<T>(c.B * c.T * c.H * c.D, seed, 1.5);
  std::vector<T> k = random_values<T>(c.B * c.S * c.H * c.D, seed + 1, 1.5);
  std::vector<T> v = random_values<T>(c.B * c.S * c.H * c.Dv, seed + 2, 1.0);
  std::vector<T> dout = random_values<T>(c.B * c.T * c.H * c.Dv, seed + 3, 1.0);
  std::vector<char> pad(size_t(c.B * c.S));
  for (size_t i = 0; i < pad.size(); ++i) pad[i] = c.padded && i % 5 == 3;
  const bool* padding = c.padded ? reinterpret_cast<const bool*>(pad.data()) : nullptr;
  kernels::LinearFeatures<T> f;
  f.M = c.D;
  std::vector<T> W;
  if (c.favor_M > 0) {
    f.M = c.favor_M;
    W.resize(size_t(c.favor_M * c.D));
    kernels::favor_projection<T>(c.favor_M, c.D, 3, W.data());
    f.W = W.data();
    f.favor_scale = T(0.5);
  }
  Results<T> r{std::vector<T>(dout.size()), std::vector<T>(q.size()), std::vector<T>(k.size()),
               std::vector<T>(v.size())};
  if (use_previous) {
    previous::linear_attention_forward<T>(d, causal, padding, f, q.data(), k.data(), v.data(),
                                          r.out.data());
    previous::linear_attention_backward<T>(d, causal, padding, f, q.data(), k.data(), v.data(),
                                           dout.data(), r.dq.data(), r.dk.data(), r.dv.data());
  } else {
    std::vector<T> den(size_t(c.B * c.H * c.T));
    std::vector<T> states(with_states ? size_t(kernels::linear_attention_states_size(d, causal, f.M)) : 0);
    T* st = with_states ? states.data() : nullptr;
    kernels::linear_attention_forward<T>(d, causal, padding, f, q.data(), k.data(), v.data(),
                                         r.out.data(), den.data(), st);
    std::vector<T> work(size_t(kernels::linear_attention_backward_work(d, causal, f.M)));
    kernels::linear_attention_backward<T>(d, causal, padding, f, q.data(), k.data(), v.data(),
                                          den.data(), dout.data(), r.dq.data(),
                                          r.dk.data(), r.dv.data(), work.data(), st);
  }
  return r;
}

template <class T, class U>
void expect_same(const Results<T>& a, const Results<U>& b, double rtol) {
  EXPECT_LE(relative_error(a.out, b.out), rtol) << "out";
  EXPECT_LE(relative_error(a.dq, b.dq), rtol) << "dq";
  EXPECT_LE(relative_error(a.dk, b.dk), rtol) << "dk";
  EXPECT_LE(relative_error(a.dv, b.dv), rtol) << "dv";
}

std::string describe(const Case& c, bool causal) {
  return fmt::format("B={} T={} S={} H={} D={} Dv={} offset={} padded={} favor_M={} causal={}", c.B,
                     c.T, c.S, c.H, c.D, c.Dv, c.query_offset, c.padded, c.favor_M, causal);
}

TEST(LinearAttentionChunked, SameAsPreviousKernelInDouble) {
  const Case cases[] = {
      {2, 150, 150, 2, 8, 6},          {1, 150, 100, 1, 5, 3},         {1, 100, 150, 1, 5, 3},
      {1, 130, 170, 2, 20, 40, 40, true}, {1, 200, 200, 2, 64, 64, 0, true}, {1, 64, 64, 1, 64, 64},
      {1, 130, 100, 1, 3, 2, 0, true, 7}, {1, 0, 10, 1, 3, 2},         {1, 10, 0, 1, 3, 2},
  };
  uint64_t seed = 10;
  for (const Case& c : cases)
    for (bool causal : {false, true}) {
      SCOPED_TRACE(describe(c, causal));
      expect_same(run<double>(c, causal, false, seed), run<double>(c, causal, true, seed), 1e-12);
      seed += 4;
    }
}

TEST(LinearAttentionChunked, SameAsPreviousKernelInFloat) {
  const Case cases[] = {
      {1, 300, 300, 2, 64, 64},
      {1, 333, 333, 2, 32, 48, 5, true},
      {2, 129, 129, 1, 24, 17},
      {1, 130, 100, 1, 16, 16, 0, true, 24},
  };
  uint64_t seed = 100;
  for (const Case& c : cases)
    for (bool causal : {false, true}) {
      SCOPED_TRACE(describe(c, causal));
      expect_same(run<float>(c, causal, false, seed), run<float>(c, causal, true, seed), 2e-5);
      seed += 4;
    }
}

// The backward that starts from the forward's states (non-causal: of all keys; causal: before each
// chunk) gives the bits of the one that folds the keys again.
TEST(LinearAttentionChunked, BackwardFromTheForwardsStatesGivesTheSameBits) {
  const Case cases[] = {{2, 150, 170, 2, 8, 6, 0, true}, {1, 300, 300, 2, 64, 64},
                        {1, 130, 100, 1, 16, 16, 0, true, 24}, {1, 200, 260, 2, 8, 8, 40, true}};
  uint64_t seed = 300;
  for (const Case& c : cases)
  for (bool causal : {false, true}) {
    SCOPED_TRACE(describe(c, causal));
    Results<float> a = run<float>(c, causal, false, seed, true), b = run<float>(c, causal, false, seed, false);
    EXPECT_EQ(a.out, b.out);
    EXPECT_EQ(a.dq, b.dq);
    EXPECT_EQ(a.dk, b.dk);
    EXPECT_EQ(a.dv, b.dv);
    seed += 4;
  }
}

// The causal backward needs the states before each chunk: the forward's, or a workspace to fold
// them into. Given neither, it refuses, naming itself, rather than writing through a null pointer.
TEST(LinearAttentionChunked, CausalBackwardWithoutStatesOrWorkspaceIsRefused) {
  kernels::AttnDims d;
  d.B = 1, d.T = 70, d.S = 70, d.H = 1, d.D = 8, d.Dv = 8;
  std::vector<float> x(size_t(70 * 8), 0.5f), den(70, 1.0f), g(x.size());
  kernels::LinearFeatures<float> f;
  f.M = 8;
  try {
    kernels::linear_attention_backward<float>(d, true, nullptr, f, x.data(), x.data(), x.data(), den.data(), x.data(),
                                              g.data(), g.data(), g.data(), nullptr, nullptr);
    FAIL() << "no exception";
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("linear_attention_backward"), std::string::npos) << e.what();
  }
}

// The states are f32 sums over up to T keys (and, in backward, queries), so rounding could grow
// with T. Measured at D = Dv = 64 against f64 (largest error over the largest magnitude): out
// about 1e-7 causal and 1e-6 not, dq, dk, dv below 7e-6, barely more at T = 16384 than at 1024
// (bench/README.md, "Chunked linear attention"). The bound here leaves room for other inputs.
TEST(LinearAttentionChunked, FloatStaysCloseToDoubleAtLongSequences) {
  const Case c{1, 16384, 16384, 1, 16, 16};
  for (bool causal : {false, true}) {
    SCOPED_TRACE(describe(c, causal));
    expect_same(run<float>(c, causal, false, 200), run<double>(c, causal, false, 200), 5e-5);
  }
}

}  // namespace
}  // namespace tg
