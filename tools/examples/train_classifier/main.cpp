// A user's training program: a two-layer MLP learns to tell which quadrant a point is in.
// Built against the installed package by tools/test.sh; exits 0 when it reaches 95% accuracy.
#include <tapegrad.h>
#include <nn/activation.h>
#include <nn/linear.h>
#include <nn/optim/adamw.h>
#include <nn/sequential.h>

#include <cstdio>
#include <memory>

int main() {
  using namespace tg;
  manual_seed(0);
  Generator gen(0);
  // Data: points x [N, 2] in [-1, 1]^2; label = quadrant (0..3).
  const int64_t N = 512;
  Tensor x = rand({N, 2}, gen) * 2.0 - 1.0;
  Tensor y = empty({N}, DType::i64);
  for (int64_t i = 0; i < N; ++i) y.data<int64_t>()[i] = (x.at({i, 0}) > 0) + 2 * (x.at({i, 1}) > 0);

  nn::Sequential model({std::make_shared<nn::Linear>(nn::LinearOptions(2, 32)), std::make_shared<nn::GELU>(),
                        std::make_shared<nn::Linear>(nn::LinearOptions(32, 4))});
  optim::AdamW opt(model.parameters(), optim::AdamWOptions(1e-2).weight_decay(0.0));
  for (int step = 0; step < 300; ++step) {
    Tensor loss = cross_entropy(model.forward(x), y);
    opt.zero_grad();
    backward(loss);
    opt.step();
    if (step % 100 == 0) std::printf("step %d loss %.4f\n", step, loss.item());
  }
  NoGradGuard no_grad;
  Tensor logits = model.forward(x);
  int64_t correct = 0;
  for (int64_t i = 0; i < N; ++i) {
    int64_t best = 0;
    for (int64_t c = 1; c < 4; ++c)
      if (logits.at({i, c}) > logits.at({i, best})) best = c;
    correct += best == y.data<int64_t>()[i];
  }
  double accuracy = double(correct) / double(N);
  std::printf("accuracy %.3f\n", accuracy);
  return accuracy >= 0.95 ? 0 : 1;
}
