// train_gpt: a resumed run continues the uninterrupted run's loss curve exactly; fine-tuning
// from a checkpoint; evaluation; the options are validated with messages naming the flag.
#include <filesystem>
#include <fstream>

#include "models/gpt/gpt_checkpoint.h"
#include "models/training/gpt_train.h"
#include "test_util.h"

namespace tg {
namespace {

namespace fs = std::filesystem;

using testing::TempDir;

// A few thousand characters of varied text.
std::string write_corpus(const TempDir& dir) {
  std::string text;
  for (int i = 0; i < 300; ++i) text += fmt::format("line {} of the play: to be or not to be.\n", i * 7 % 23);
  std::string path = dir / "corpus.txt";
  std::ofstream(path) << text;
  return path;
}

models::GPTTrainOptions tiny(const std::string& data, const std::string& out) {
  models::GPTTrainOptions o;
  o.data = data;
  o.out = out;
  o.n_layer = 2, o.n_head = 2, o.n_embd = 16, o.block_size = 16, o.optim.batch_size = 4;
  o.dropout = 0.1;  // dropout too: its generator must resume as well
  o.optim.max_iters = 12, o.optim.lr_decay_iters = 12, o.optim.eval_interval = 6, o.optim.eval_iters = 2, o.optim.warmup_iters = 3;
  o.optim.progress = false;
  return o;
}

// CSV rows after the header.
std::vector<std::string> rows(const std::string& path) {
  std::ifstream in(path);
  std::vector<std::string> out;
  for (std::string line; std::getline(in, line);) out.push_back(line);
  if (!out.empty()) out.erase(out.begin());
  return out;
}

// Everything up to the throughput column, which is timing and differs between runs.
std::string loss_part(const std::string& row) { return row.substr(0, row.find(',', row.find(',', row.find(',') + 1) + 1)); }

TEST(GPTTrain, ResumedRunContinuesTheLossCurve) {
  TempDir dir;
  std::string data = write_corpus(dir);
  models::GPTTrainOptions full = tiny(data, dir / "full");
  full.optim.log = dir / "full.csv";
  models::GPTTrainResult r = models::train_gpt(full);
  EXPECT_EQ(r.steps, 12);
  ASSERT_TRUE(r.val_loss.has_value());

  // The same run stopped after 6 steps (same schedule), then resumed to 12.
  models::GPTTrainOptions half = tiny(data, dir / "part");
  half.optim.max_iters = 6;
  half.optim.log = dir / "part.csv";
  models::train_gpt(half);
  models::GPTTrainOptions rest = tiny(data, dir / "part");
  rest.resume = dir / "part";
  rest.optim.log = dir / "part.csv";
  models::GPTTrainResult r2 = models::train_gpt(rest);
  EXPECT_EQ(r2.steps, 12);
  EXPECT_EQ(r2.train_loss, r.train_loss);  // bit for bit
  EXPECT_EQ(*r2.val_loss, *r.val_loss);

  std::vector<std::string> a = rows(full.optim.log), b = rows(half.optim.log);
  ASSERT_EQ(a.size(), 12u);
  ASSERT_EQ(b.size(), 12u);
  for (size_t i = 0; i < a.size(); ++i) EXPECT_EQ(loss_part(a[i]), loss_part(b[i])) << "step " << i;
  nn::StateDict wa = models::load_gpt(dir / "full").model->state_dict();
  nn::StateDict wb = models::load_gpt(dir / "part").model->state_dict();
  for (auto& [name, t] : wa) EXPECT_EQ(t.to_vector(), wb[name].to_vector()) << name;
}

TEST(GPTTrain, LearnsAndEvaluates) {
  TempDir dir;
  std::string data = write_corpus(dir);
  models::GPTTrainOptions o = tiny(data, dir / "ck");
  o.dropout = 0.0;
  o.optim.max_iters = 150, o.optim.lr_decay_iters = 0, o.optim.eval_interval = 0, o.optim.lr = 3e-3, o.optim.warmup_iters = 10;
  models::GPTTrainResult r = models::train_gpt(o);
  // Chance is ln(vocab) ~ 3.3; the repeated text is easy.
  EXPECT_LT(*r.val_loss, 1.5);
  double loss = models::evaluate_gpt(dir / "ck", data, 16, 8);
  EXPECT_LT(loss, 2.0);
  EXPECT_TG_ERROR(models::evaluate_gpt(dir / "ck", data, 17, 8), "`block_size` 17 must be in [1, the model's n_positions 16]");

  // Fine-tuning starts from the checkpoint's weights: its first loss is already low.
  models::GPTTrainOptions ft = tiny(data, dir / "ft");
  ft.init_from = dir / "ck";
  ft.dropout = 0.0, ft.optim.max_iters = 1, ft.optim.eval_interval = 0, ft.optim.log = dir / "ft.csv";
  models::train_gpt(ft);
  std::string first = rows(ft.optim.log)[0];
  double first_loss = std::stod(first.substr(first.find(',') + 1));
  EXPECT_LT(first_loss, 2.0);
  models::GPTTrainOptions too_long = ft;
  too_long.block_size = 32;
  EXPECT_TG_ERROR(models::train_gpt(too_long), "`block_size` 32 is beyond the checkpoint's n_positions 16");
}

TEST(GPTTrain, EveryBadOptionNamesItsFlag) {
  TempDir dir;
  std::string data = write_corpus(dir);
  struct Case {
    std::function<void(models::GPTTrainOptions&)> set;
    const char* message;
  };
  std::vector<Case> cases = {
      {[](auto& o) { o.data = ""; }, "`data`: required"},
      {[](auto& o) { o.n_layer = 0; }, "`n_layer` must be positive"},
      {[](auto& o) { o.n_head = -1; }, "`n_head` must be positive"},
      {[](auto& o) { o.n_embd = 10, o.n_head = 3; }, "`n_embd` (10) must be divisible by `n_head` (3)"},
      {[](auto& o) { o.block_size = -5; }, "`block_size` must be positive"},
      {[](auto& o) { o.optim.batch_size = 0; }, "`batch_size` must be positive"},
      {[](auto& o) { o.dropout = 1.0; }, "`dropout` must be in [0, 1)"},
      {[](auto& o) { o.optim.optimizer = "adam"; }, "`optimizer` must be adamw or sgd"},
      {[](auto& o) { o.optim.lr = 0; }, "`lr` must be positive"},
      {[](auto& o) { o.optim.min_lr = 1.0; }, "`min_lr` must be in [0, `lr`]"},
      {[](auto& o) { o.optim.lr_schedule = "step"; }, "`lr_schedule` must be cosine, linear or constant"},
      {[](auto& o) { o.optim.beta2 = 1.0; }, "`beta2` must be in [0, 1)"},
      {[](auto& o) { o.optim.grad_clip = -1; }, "`grad_clip` must be >= 0"},
      {[](auto& o) { o.optim.eval_iters = 0; }, "`eval_iters` must be positive"},
      {[](auto& o) { o.attention = "fast"; }, "`attention`: unknown attention variant 'fast'"},
      {[](auto& o) { o.attention = "sliding:0"; }, "must be a positive integer"},
      {[](auto& o) { o.init_from = std::string(1, 'a'), o.resume = std::string(1, 'b'); }, "`init_from` and `resume` exclude each other"},
      {[](auto& o) { o.block_size = 100000; }, "fewer than one block of 100000 + 1"},
      {[&](auto& o) { o.data = dir / "missing.txt"; }, "missing.txt"},
      {[&](auto& o) { o.resume = dir / "nowhere"; }, "nowhere"},
  };
  for (const Case& c : cases) {
    models::GPTTrainOptions o = tiny(data, dir / "out");
    c.set(o);
    SCOPED_TRACE(c.message);
    EXPECT_TG_ERROR(models::train_gpt(o), c.message);
  }
}

}  // namespace
}  // namespace tg
