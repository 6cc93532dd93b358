// Determinism: the same seed and thread count give bit-identical loss curves; 1 and 2 threads
// give the same curve within float reassociation.
#include <cmath>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "models/training/gpt_train.h"
#include "test_util.h"

namespace tg {
namespace {

namespace fs = std::filesystem;

struct TrainRun {
  std::vector<std::string> loss_text;  ///< the CSV's loss column as written
  std::vector<double> losses;
  double train_loss = 0, val_loss = 0;
};

class Determinism : public ::testing::Test {
 protected:
  void SetUp() override {
    threads_ = get_num_threads();
    dir_ = fs::temp_directory_path() / fmt::format("tapegrad-determinism-{}", ::getpid());
    fs::create_directories(dir_);
    std::string text;
    for (int i = 0; i < 300; ++i) text += fmt::format("line {} of the play: to be or not to be.\n", i * 7 % 23);
    std::ofstream(dir_ / "corpus.txt") << text;
  }
  void TearDown() override {
    set_num_threads(threads_);
    fs::remove_all(dir_);
  }

  // 20 steps of a small GPT (dropout on: its generator must be deterministic too).
  TrainRun train(int threads, const std::string& name) {
    models::GPTTrainOptions o;
    o.data = (dir_ / "corpus.txt").string();
    o.out = (dir_ / name).string();
    o.n_layer = 2, o.n_head = 2, o.n_embd = 32, o.block_size = 32, o.dropout = 0.1;
    o.optim.batch_size = 4, o.optim.max_iters = 20, o.optim.eval_interval = 10, o.optim.eval_iters = 2;
    o.optim.warmup_iters = 2, o.optim.seed = 42, o.optim.threads = threads, o.optim.progress = false;
    o.optim.log = (dir_ / (name + ".csv")).string();
    models::GPTTrainResult r = models::train_gpt(o);
    TrainRun run;
    run.train_loss = r.train_loss;
    run.val_loss = r.val_loss.value_or(NAN);
    std::ifstream in(o.optim.log);
    std::string line;
    std::getline(in, line);  // header
    while (std::getline(in, line)) {
      std::stringstream row(line);
      std::string step, loss;
      std::getline(row, step, ',');
      std::getline(row, loss, ',');
      run.loss_text.push_back(loss);
      run.losses.push_back(std::stod(loss));
    }
    return run;
  }

  int threads_ = 1;
  fs::path dir_;
};

TEST_F(Determinism, SameSeedSameThreadsGivesBitIdenticalLosses) {
  for (int threads : {1, 2}) {
    SCOPED_TRACE(fmt::format("{} threads", threads));
    TrainRun a = train(threads, fmt::format("a{}", threads)), b = train(threads, fmt::format("b{}", threads));
    ASSERT_EQ(a.loss_text.size(), 20u);
    EXPECT_EQ(a.loss_text, b.loss_text);
    EXPECT_EQ(a.train_loss, b.train_loss);  // bit for bit, not only to the CSV's 6 decimals
    EXPECT_EQ(a.val_loss, b.val_loss);
  }
}

TEST_F(Determinism, OneAndTwoThreadsAgreeWithinFloatTolerance) {
  TrainRun one = train(1, "one"), two = train(2, "two");
  ASSERT_EQ(one.losses.size(), two.losses.size());
  for (size_t i = 0; i < one.losses.size(); ++i)
    EXPECT_NEAR(one.losses[i], two.losses[i], 1e-4 * std::fabs(one.losses[i]) + 1e-6) << "step " << i;
  EXPECT_NEAR(one.val_loss, two.val_loss, 1e-4 * std::fabs(one.val_loss));
}

}  // namespace
}  // namespace tg
