// Activation checkpointing in the models: the GPT and the encoder give the same loss and the
// same gradient for every parameter with it as without it (dropout on, so its masks must be
// replayed), and the GPT keeps less memory through backward.
#include "models/encoder/encoder.h"
#include "models/gpt/gpt.h"
#include "test_util.h"

namespace tg {
namespace {

Tensor ids(const Shape& shape, int64_t vocab, uint64_t seed) {
  Tensor u = testing::uniform(shape, seed, 0.0, double(vocab));
  Tensor t = empty(shape, DType::i64);
  for (int64_t i = 0; i < t.numel(); ++i) t.data<int64_t>()[i] = int64_t(u.data<double>()[i]);
  return t;
}

models::GPTConfig gpt_config(DType dtype, int64_t C, int64_t L, int64_t T) {
  models::GPTConfig c;
  c.vocab_size = 13, c.n_positions = T, c.n_embd = C, c.n_layer = L, c.n_head = 2;
  c.dropout = 0.1, c.dtype = dtype;
  return c;
}

// One loss and backward; returns the loss and every parameter's gradient by name.
template <class Model, class Loss>
std::pair<double, std::map<std::string, Tensor>> loss_and_grads(Model& model, Loss loss) {
  model.zero_grad();
  Tensor l = loss();
  backward(l);
  std::map<std::string, Tensor> g;
  for (auto& [name, p] : model.named_parameters()) g[name] = p.grad();
  return {l.item(), g};
}

template <class Model, class Loss>
void expect_same_with_and_without(Model& model, Loss loss, const std::function<void()>& reseed) {
  reseed();
  auto [plain_loss, plain] = loss_and_grads(model, loss);
  model.set_activation_checkpointing(true);
  reseed();
  auto [ckpt_loss, ckpt] = loss_and_grads(model, loss);
  model.set_activation_checkpointing(false);
  EXPECT_EQ(ckpt_loss, plain_loss);
  ASSERT_EQ(ckpt.size(), plain.size());
  for (auto& [name, g] : plain) {
    SCOPED_TRACE(name);
    ASSERT_TRUE(ckpt[name].defined());
    testing::expect_close(ckpt[name], g, 1e-12, 1e-13);
  }
}

TEST(ActivationCheckpointing, GPTSameLossAndGradients) {
  Generator init(3), drop(4);
  models::GPT model(gpt_config(DType::f64, 8, 3, 6), init);
  model.set_dropout_generator(&drop);
  model.train();
  Tensor x = ids({2, 6}, 13, 1), y = ids({2, 6}, 13, 2);
  expect_same_with_and_without(
      model, [&] { return model.forward(x, y).loss; }, [&] { drop.manual_seed(4); });
}

TEST(ActivationCheckpointing, EncoderSameLossAndGradients) {
  models::EncoderConfig c;
  c.vocab_size = 7, c.n_classes = 3, c.max_len = 6;
  c.n_layer = 2, c.n_head = 2, c.n_embd = 4, c.ffn_dim = 6, c.dropout = 0.2;
  for (const char* norm : {"post", "pre"}) {
    SCOPED_TRACE(norm);
    c.norm = norm;
    manual_seed(5);
    models::EncoderClassifier model(c, DType::f64);
    model.train();
    Tensor x = ids({2, 5}, 7, 3);
    Tensor target = tensor({2, 0}, {2}, DType::i64);
    expect_same_with_and_without(
        model, [&] { return cross_entropy(model.forward(x, {5, 3}), target); }, [] { manual_seed(9); });
  }
}

TEST(ActivationCheckpointing, GPTKeepsLessMemoryThroughBackward) {
  Generator init(1);
  models::GPTConfig cfg = gpt_config(DType::f32, 64, 6, 64);
  cfg.dropout = 0;
  models::GPT model(cfg, init);
  model.train();
  Tensor x = ids({4, 64}, 13, 1), y = ids({4, 64}, 13, 2);
  auto peak = [&](bool on) {
    model.set_activation_checkpointing(on);
    model.zero_grad(/*set_to_none=*/false);  // gradient buffers stay: the peak counts activations
    const int64_t before = memory_allocated();
    reset_peak_memory_stats();
    backward(model.forward(x, y).loss);
    return max_memory_allocated() - before;
  };
  peak(false);  // allocates the gradients
  const int64_t plain = peak(false), ckpt = peak(true);
  EXPECT_LT(double(ckpt), 0.6 * double(plain)) << "plain " << plain << " B, checkpointed " << ckpt << " B";
}

}  // namespace
}  // namespace tg
