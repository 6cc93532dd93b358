// The programs of README.md, as they are written there (keep them in sync).
#include "models/tokenizers/char_tokenizer.h"
#include "models/decoders/generate.h"
#include "models/gpt/gpt.h"
#include "models/data/token_data.h"
#include "nn/optim/adamw.h"
#include "nn/optim/clip_grad.h"
#include "ops/flex_attention.h"
#include "ops/flex_patterns.h"
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

TEST(Readme, ProgrammableAttentionExample) {
  Generator gen(0);
  Tensor q = randn({2, 256, 8, 32}, gen).requires_grad_();
  Tensor k = randn({2, 256, 2, 32}, gen).requires_grad_(), v = randn({2, 256, 2, 32}, gen).requires_grad_();
  Tensor doc_ids = empty({256}, DType::i64);
  for (int64_t s = 0; s < 256; ++s) doc_ids.data<int64_t>()[s] = s / 100;
  BlockMask mask = create_block_mask(and_masks(causal_mask(), document_mask(doc_ids)), 1, 1, 256, 256, 64);
  EXPECT_EQ(mask.to_string().substr(mask.to_string().find('\n') + 1), "+...\n++..\n.++.\n.+++\n");
  Tensor table = zeros({8, 32}).requires_grad_();
  FlexOptions options;
  options.enable_gqa = true;
  Tensor out = flex_attention(q, k, v, relative_position_bias(table), mask, options);
  EXPECT_EQ(out.shape(), Shape({2, 256, 8, 32}));
  backward(sum(out * out));
  EXPECT_EQ(table.grad().shape(), Shape({8, 32}));
  EXPECT_GT(testing::max_abs(table.grad()), 0.0);
  EXPECT_EQ(k.grad().shape(), k.shape());
}

TEST(Readme, GPTTrainingProgramLearns) {
  // The README's program on the shipped corpus, 60 steps instead of 2000.
  std::string text = read_file_bytes(std::string(TAPEGRAD_SOURCE_DIR) + "/data/tinyshakespeare.txt");
  models::CharTokenizer tok = models::CharTokenizer::from_text(text);
  std::vector<uint16_t> ids;
  for (int64_t id : tok.encode(text)) ids.push_back(uint16_t(id));

  models::GPTConfig cfg;
  cfg.vocab_size = tok.vocab_size(), cfg.n_positions = 64;
  cfg.n_layer = 4, cfg.n_head = 4, cfg.n_embd = 128, cfg.dropout = 0;
  Generator gen(1337);
  models::GPT model(cfg, gen);
  optim::AdamW opt(optim::decay_groups(model, 0.1), optim::AdamWOptions(1e-3).beta2(0.99));
  double first = 0, last = 0;
  for (int step = 0; step < 60; ++step) {
    data::TokenBatch batch = data::sample_batch(ids, 64, 12, gen);
    Tensor loss = model.forward(batch.x, batch.y).loss;
    opt.zero_grad();
    backward(loss);
    optim::clip_grad_norm_(model.parameters(), 1.0);
    opt.step();
    (step == 0 ? first : last) = loss.item();
  }
  EXPECT_NEAR(first, std::log(65.0), 0.3);  // chance over 65 characters
  EXPECT_LT(last, 3.0);
  std::vector<int64_t> out = models::generate(model, tok.encode("\n"), 30, 0.8, 200, gen);
  EXPECT_EQ(tok.decode(out).size(), 31u);
}

}  // namespace
}  // namespace tg
