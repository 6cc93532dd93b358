// checkpoint(fn, inputs): the same gradients as without it (parameters captured by fn included,
// dropout masks replayed), a gradcheck through it, less peak memory over a stack of blocks, and
// clear errors.
#include "test_util.h"

namespace tg {
namespace {

using testing::uniform;

// A residual block with captured parameters: x [N, C] -> x + gelu(x·w1 + b1)·w2, then dropout.
struct ToyBlock {
  Tensor w1, b1, w2;
  double p = 0.0;
  Generator* gen = nullptr;
  ToyBlock(int64_t C, uint64_t seed, DType dtype = DType::f64)
      : w1(uniform({C, 4 * C}, seed, -0.5, 0.5, dtype)),
        b1(uniform({4 * C}, seed + 1, -0.1, 0.1, dtype)),
        w2(uniform({4 * C, C}, seed + 2, -0.5, 0.5, dtype)) {
    for (Tensor* t : {&w1, &b1, &w2}) t->requires_grad_();
  }
  Tensor operator()(const Tensor& x) const {
    Tensor h = matmul(gelu(add(matmul(x, w1), b1), "tanh"), w2);
    if (p > 0) h = dropout(h, p, true, *gen);
    return add(x, h);
  }
  std::vector<Tensor> params() const { return {w1, b1, w2}; }
};

// loss = sum((blocks(x))²); with `ckpt` each block is checkpointed.
Tensor stack_loss(const std::vector<ToyBlock>& blocks, const Tensor& x, bool ckpt, Generator* gen = nullptr) {
  Tensor h = x;
  for (const ToyBlock& b : blocks) {
    if (ckpt)
      h = checkpoint([&b](const std::vector<Tensor>& in) { return b(in[0]); }, {h}, gen);
    else
      h = b(h);
  }
  return sum(mul(h, h));
}

std::vector<Tensor> grads_of(const std::vector<ToyBlock>& blocks, const Tensor& x) {
  std::vector<Tensor> g{x.grad()};
  for (const ToyBlock& b : blocks)
    for (const Tensor& p : b.params()) g.push_back(p.grad());
  return g;
}

// Zeroes the gradients in place (their buffers stay allocated, so they do not count in a peak).
void zero_all(std::vector<ToyBlock>& blocks, Tensor& x) {
  x.zero_grad();
  for (ToyBlock& b : blocks)
    for (Tensor p : b.params()) p.zero_grad();
}

TEST(Checkpoint, SameGradientsAsWithout) {
  std::vector<ToyBlock> blocks{ToyBlock(6, 10), ToyBlock(6, 20), ToyBlock(6, 30)};
  Tensor x = uniform({5, 6}, 1).requires_grad_();
  Tensor plain = stack_loss(blocks, x, false);
  backward(plain);
  std::vector<Tensor> expected = grads_of(blocks, x);
  zero_all(blocks, x);
  Tensor ck = stack_loss(blocks, x, true);
  EXPECT_EQ(ck.item(), plain.item());
  backward(ck);
  std::vector<Tensor> got = grads_of(blocks, x);
  ASSERT_EQ(got.size(), expected.size());
  for (size_t i = 0; i < got.size(); ++i) {
    ASSERT_TRUE(got[i].defined()) << "gradient " << i << " missing";
    testing::expect_close(got[i], expected[i], 1e-12, 1e-12);
  }
}

TEST(Checkpoint, ReplaysDropoutMasks) {
  std::vector<ToyBlock> blocks{ToyBlock(4, 40), ToyBlock(4, 50)};
  Generator gen(7);
  for (ToyBlock& b : blocks) b.p = 0.3, b.gen = &gen;
  Tensor x = uniform({3, 4}, 2).requires_grad_();
  backward(stack_loss(blocks, x, false));
  std::vector<Tensor> expected = grads_of(blocks, x);
  const uint64_t offset_after = gen.offset();
  zero_all(blocks, x);
  gen.manual_seed(7);
  backward(stack_loss(blocks, x, true, &gen));
  // The recomputation drew the forward's masks and left the stream where the forward left it.
  EXPECT_EQ(gen.offset(), offset_after);
  std::vector<Tensor> got = grads_of(blocks, x);
  for (size_t i = 0; i < got.size(); ++i) testing::expect_close(got[i], expected[i], 1e-12, 1e-12);
}

TEST(Checkpoint, Gradcheck) {
  ToyBlock block(3, 60);
  testing::expect_gradcheck(
      [&](const std::vector<Tensor>& in) {
        return checkpoint([&](const std::vector<Tensor>& a) { return mul(block(a[0]), a[1]); }, in);
      },
      {uniform({2, 3}, 3), uniform({2, 3}, 4)});
}

TEST(Checkpoint, ParametersGetGradientsWhenNoInputNeedsOne) {
  ToyBlock block(4, 70);
  Tensor x = uniform({2, 4}, 5);  // no requires_grad: only the captured parameters need one
  Tensor loss = sum(checkpoint([&](const std::vector<Tensor>& in) { return block(in[0]); }, {x}));
  ASSERT_TRUE(loss.requires_grad());
  backward(loss);
  for (const Tensor& p : block.params()) EXPECT_TRUE(p.grad().defined());
  EXPECT_FALSE(x.grad().defined());
}

TEST(Checkpoint, KeepsLessMemoryOverAStack) {
  // 8 blocks at [64, 64] f32: without checkpointing every block keeps its [64, 256] hidden
  // activations until backward; with it only the blocks' inputs stay.
  std::vector<ToyBlock> blocks;
  for (int i = 0; i < 8; ++i) blocks.emplace_back(64, 100 + 10 * i, DType::f32);
  Tensor x = uniform({64, 64}, 6, -1, 1, DType::f32).requires_grad_();
  auto peak_of = [&](bool ckpt) {
    zero_all(blocks, x);
    const int64_t before = memory_allocated();
    reset_peak_memory_stats();
    backward(stack_loss(blocks, x, ckpt));
    return max_memory_allocated() - before;
  };
  peak_of(false);  // allocates the gradients, so the measured runs count activations only
  const int64_t plain = peak_of(false), ckpt = peak_of(true);
  EXPECT_LT(ckpt, plain / 2) << "plain " << plain << " bytes, checkpointed " << ckpt << " bytes";
}

TEST(Checkpoint, UnderNoGradIsPlainCall) {
  ToyBlock block(3, 80);
  Tensor x = uniform({2, 3}, 7).requires_grad_();
  NoGradGuard no_grad;
  Tensor y = checkpoint([&](const std::vector<Tensor>& in) { return block(in[0]); }, {x});
  EXPECT_FALSE(y.requires_grad());
  testing::expect_close(y, block(x), 0, 0);
}

TEST(Checkpoint, InputModifiedInPlaceIsNamed) {
  ToyBlock block(3, 90);
  Tensor x = uniform({2, 3}, 8).requires_grad_();
  Tensor h = mul(x, 2.0);
  Tensor loss = sum(checkpoint([&](const std::vector<Tensor>& in) { return block(in[0]); }, {h}));
  {
    NoGradGuard no_grad;
    h.fill_(1.0);
  }
  EXPECT_TG_ERROR(backward(loss), "checkpoint backward: input 0");
}

}  // namespace
}  // namespace tg
