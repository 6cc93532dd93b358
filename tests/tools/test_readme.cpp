// The two programs of README.md, as they are written there (keep them in sync).
#include "test_util.h"

namespace tg {
namespace {

TEST(Readme, GradientCheckExample) {
  Generator gen(0);
  Tensor x = randn({4, 5}, gen, DType::f64);
  Tensor w = randn({5, 3}, gen, DType::f64);
  GradcheckResult r = gradcheck(
      [](const std::vector<Tensor>& in) { return gelu(matmul(in[0], in[1]), "tanh"); }, {x, w});
  EXPECT_TRUE(r.passed) << r.summary();
  EXPECT_EQ(r.checked, (20 + 15) * 12);
}

TEST(Readme, TrainingStepExampleLearns) {
  Generator gen(0);
  Tensor x = randn({64, 16}, gen);
  Tensor labels = empty({64}, DType::i64);
  for (int64_t i = 0; i < 64; ++i) labels.data<int64_t>()[i] = i % 4;
  Tensor w1 = randn({16, 32}, gen) * 0.25, w2 = randn({32, 4}, gen) * 0.18;
  w1.requires_grad_();
  w2.requires_grad_();
  double first = 0, last = 0;
  for (int step = 0; step < 100; ++step) {
    Tensor loss = cross_entropy(matmul(relu(matmul(x, w1)), w2), labels);
    if (step == 0) first = loss.item();
    last = loss.item();
    backward(loss);
    NoGradGuard no_grad;
    for (Tensor* w : {&w1, &w2}) {
      w->copy_(*w - w->grad() * 0.5);
      w->zero_grad();
    }
  }
  EXPECT_NEAR(first, std::log(4.0), 0.5);  // chance level at the start
  EXPECT_LT(last, 0.5 * first);            // it memorises the labels
}

}  // namespace
}  // namespace tg
