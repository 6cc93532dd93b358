// train_encoder / evaluate_encoder: ListOps files in, a checkpoint and an accuracy out; the
// options are validated with messages naming the flag.
#include <algorithm>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "models/training/encoder_train.h"
#include "models/data/listops.h"
#include "test_util.h"

namespace tg {
namespace {

namespace fs = std::filesystem;

using testing::TempDir;

models::EncoderTrainOptions tiny(const TempDir& dir) {
  models::EncoderTrainOptions o;
  o.data = dir / "train.tsv";
  o.val_data = dir / "val.tsv";
  o.out = dir / "ck";
  o.config.max_len = 40, o.config.n_layer = 1, o.config.n_head = 2, o.config.n_embd = 16, o.config.dropout = 0.0;
  o.optim.batch_size = 16, o.optim.max_iters = 150, o.optim.eval_interval = 75, o.optim.lr = 3e-3;
  o.optim.warmup_iters = 10, o.optim.progress = false;
  return o;
}

TEST(EncoderTrain, TrainsSavesAndEvaluates) {
  TempDir dir;
  data::write_listops_splits(dir.path.string(), {600, 200, 200}, 4, 40, 2, 3, /*seed=*/5);
  models::EncoderTrainOptions o = tiny(dir);
  o.optim.log = dir / "log.csv";
  models::EncoderTrainResult r = models::train_encoder(o);
  EXPECT_EQ(r.steps, 150);
  ASSERT_TRUE(r.val_accuracy.has_value());
  EXPECT_GT(r.majority_accuracy, 0.0);
  // Shallow ListOps (depth 2, 3 arguments) is learnable well above the majority class.
  EXPECT_GT(*r.val_accuracy, r.majority_accuracy + 0.05);
  double test_accuracy = models::evaluate_encoder(dir / "ck", dir / "test.tsv");
  EXPECT_GT(test_accuracy, r.majority_accuracy);
  EXPECT_TG_ERROR(models::evaluate_encoder(dir / "nowhere", dir / "test.tsv"), "nowhere");
}

// The log's tokens_per_s counts tokens, not examples: with every example 4 tokens long each
// step's tokens/s is 4x its examples/s, so the column's median is 4x the median examples/s.
TEST(EncoderTrain, LogCountsTokensPerSecond) {
  TempDir dir;
  for (const char* name : {"train.tsv", "val.tsv"}) {
    std::ofstream f(dir / name);
    f << "Source\tTarget\n";
    for (int i = 0; i < 64; ++i) f << "[MAX " << i % 10 << ' ' << i / 10 % 10 << " ]\t" << std::max(i % 10, i / 10 % 10) << '\n';
  }
  models::EncoderTrainOptions o = tiny(dir);
  o.optim.max_iters = 9, o.optim.eval_interval = 0, o.optim.log = dir / "log.csv";
  models::EncoderTrainResult r = models::train_encoder(o);
  std::ifstream log(dir / "log.csv");
  std::string line;
  std::getline(log, line);
  ASSERT_EQ(line, "step,loss,lr,tokens_per_s,val_loss");
  std::vector<double> tokens_per_s;
  while (std::getline(log, line)) {
    std::stringstream row(line);
    std::string cell;
    for (int c = 0; c < 4; ++c) std::getline(row, cell, ',');
    tokens_per_s.push_back(std::stod(cell));
  }
  ASSERT_EQ(tokens_per_s.size(), 9u);
  std::sort(tokens_per_s.begin(), tokens_per_s.end());
  EXPECT_NEAR(tokens_per_s[4], 4 * r.examples_per_s, 1e-3 * tokens_per_s[4] + 0.1);
}

// --bucket-by-length: the same examples, batches of similar lengths, far less padding; --ffn-dim
// sets the FFN's width (its parameters: 2·C·F + F + C per block).
TEST(EncoderTrain, BucketingByLengthCutsPaddingAndFfnDimSetsTheWidth) {
  TempDir dir;
  data::write_listops_splits(dir.path.string(), {400, 50, 50}, 4, 40, 3, 4, /*seed=*/2);
  models::EncoderTrainOptions o = tiny(dir);
  o.optim.max_iters = 12, o.optim.eval_interval = 0;
  models::EncoderTrainResult random = models::train_encoder(o);
  o.bucket_by_length = true;
  o.config.ffn_dim = 24;
  models::EncoderTrainResult bucketed = models::train_encoder(o);
  EXPECT_GT(random.padding_share, 0.1);
  EXPECT_LT(bucketed.padding_share, random.padding_share / 3);
  EXPECT_GE(bucketed.padding_share, 0.0);
  const int64_t C = 16;
  EXPECT_EQ(random.num_parameters - bucketed.num_parameters, (2 * C * 4 * C + 4 * C) - (2 * C * 24 + 24));
}

TEST(EncoderTrain, EveryBadOptionNamesItsFlag) {
  TempDir dir;
  struct Case {
    std::function<void(models::EncoderTrainOptions&)> set;
    const char* message;
  };
  std::vector<Case> cases = {
      {[](auto& o) { o.config.n_classes = 1; }, "`n_classes` must be at least 2"},
      {[](auto& o) { o.config.max_len = 0; }, "`max_len` must be positive"},
      {[](auto& o) { o.config.ffn_dim = -1; }, "`ffn_dim` must be positive"},
      {[](auto& o) { o.config.n_embd = 10, o.config.n_head = 3; }, "`n_embd` (10) must be positive and divisible by `n_head` (3)"},
      {[](auto& o) { o.config.pooling = "max"; }, "`pooling` must be mean or cls"},
      {[](auto& o) { o.config.norm = "mid"; }, "`norm` must be pre or post"},
      {[](auto& o) { o.config.pos = "rotary"; }, "`pos` must be learned or sinusoidal"},
      {[](auto& o) { o.config.attention = "sliding:x"; }, "`attention`:"},
      {[](auto& o) { o.optim.lr = -1; }, "`lr` must be positive"},
      {[](auto& o) { o.optim.batch_size = 0; }, "`batch_size` must be positive"},
      {[](auto& o) { o.optim.optimizer = "lion"; }, "`optimizer` must be adamw or sgd"},
      {[](auto& o) { o.data = ""; }, "`data`: required"},
      {[&](auto& o) { o.data = dir / "missing.tsv"; }, "missing.tsv"},
  };
  for (const Case& c : cases) {
    models::EncoderTrainOptions o = tiny(dir);
    c.set(o);
    SCOPED_TRACE(c.message);
    EXPECT_TG_ERROR(models::train_encoder(o), c.message);
  }
}

}  // namespace
}  // namespace tg
