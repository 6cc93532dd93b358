// Every bad command line fails with a non-zero exit and a message naming the flag: the real
// `tapegrad` app (tools/cli/run.cpp) is run in-process on each case of the table below.
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "test_util.h"
#include "tools/cli/run.h"

namespace tg {
namespace {

namespace fs = std::filesystem;

struct BadCommandLine {
  std::vector<std::string> args;  ///< after `tapegrad`; {dir} is replaced by a scratch directory
  std::string message;            ///< must appear in what the command writes to stderr
};

const std::string kFixture = std::string(TAPEGRAD_SOURCE_DIR) + "/tests/models/fixtures/gpt2_tiny";

// The table. {dir}/text.txt holds a few thousand characters, {dir}/short.txt ten, {dir}/afile is
// a regular file, {dir}/ro a read-only directory; {dir}/train.tsv holds two ListOps examples.
const std::vector<BadCommandLine> kCases = {
    // gpt train: model sizes and variants
    {{"gpt", "train", "--data", "{dir}/text.txt", "--out", "{dir}/o", "--n-layer", "-1"}, "--n-layer must be positive"},
    {{"gpt", "train", "--data", "{dir}/text.txt", "--out", "{dir}/o", "--n-head", "0"}, "--n-head must be positive"},
    {{"gpt", "train", "--data", "{dir}/text.txt", "--out", "{dir}/o", "--n-embd", "-8"}, "--n-embd must be positive"},
    {{"gpt", "train", "--data", "{dir}/text.txt", "--out", "{dir}/o", "--n-embd", "30", "--n-head", "4"},
     "--n-embd (30) must be divisible by --n-head (4)"},
    {{"gpt", "train", "--data", "{dir}/text.txt", "--out", "{dir}/o", "--block-size", "0"}, "--block-size must be positive"},
    {{"gpt", "train", "--data", "{dir}/text.txt", "--out", "{dir}/o", "--dropout", "1.5"}, "--dropout must be in [0, 1)"},
    {{"gpt", "train", "--data", "{dir}/text.txt", "--out", "{dir}/o", "--attention", "fast"},
     "--attention: unknown attention variant 'fast'"},
    {{"gpt", "train", "--data", "{dir}/text.txt", "--out", "{dir}/o", "--attention", "sliding:0"}, "--attention"},
    {{"gpt", "train", "--data", "{dir}/text.txt", "--out", "{dir}/o", "--bias", "maybe"}, "--bias"},
    // gpt train: optimisation flags
    {{"gpt", "train", "--data", "{dir}/text.txt", "--out", "{dir}/o", "--batch-size", "-2"}, "--batch-size must be positive"},
    {{"gpt", "train", "--data", "{dir}/text.txt", "--out", "{dir}/o", "--threads", "-1"}, "--threads must be >= 0"},
    {{"gpt", "train", "--data", "{dir}/text.txt", "--out", "{dir}/o", "--lr-schedule", "bogus"},
     "--lr-schedule must be cosine or constant"},
    {{"gpt", "train", "--data", "{dir}/text.txt", "--out", "{dir}/o", "--optimizer", "adam"},
     "--optimizer must be adamw or sgd"},
    {{"gpt", "train", "--data", "{dir}/text.txt", "--out", "{dir}/o", "--lr", "0"}, "--lr must be positive"},
    {{"gpt", "train", "--data", "{dir}/text.txt", "--out", "{dir}/o", "--lr", "abc"}, "--lr"},
    {{"gpt", "train", "--data", "{dir}/text.txt", "--out", "{dir}/o", "--max-iters", "-5"}, "--max-iters must be >= 0"},
    {{"gpt", "train", "--data", "{dir}/text.txt", "--out", "{dir}/o", "--beta2", "1"}, "--beta2 must be in [0, 1)"},
    {{"gpt", "train", "--data", "{dir}/text.txt", "--out", "{dir}/o", "--eval-iters", "0"}, "--eval-iters must be positive"},
    // gpt train: files
    {{"gpt", "train", "--out", "{dir}/o"}, "--data is required"},
    {{"gpt", "train", "--data", "{dir}/text.txt"}, "--out is required"},
    {{"gpt", "train", "--data", "{dir}/text.txt", "--out", "{dir}/o", "--bogus", "1"}, "--bogus"},
    {{"gpt", "train", "--data", "{dir}/short.txt", "--out", "{dir}/o"}, "--data"},
    {{"gpt", "train", "--data", "{dir}/missing.txt", "--out", "{dir}/o"}, "missing.txt"},
    {{"gpt", "train", "--data", "{dir}/text.txt", "--out", "{dir}/afile"}, "--out"},
    {{"gpt", "train", "--data", "{dir}/text.txt", "--out", "{dir}/ro/sub"}, "--out"},
    {{"gpt", "train", "--data", "{dir}/text.txt", "--out", "{dir}/o", "--init-from", kFixture, "--block-size", "64"},
     "--block-size 64 is beyond the checkpoint's n_positions 16"},
    {{"gpt", "train", "--data", "{dir}/text.txt", "--out", "{dir}/o", "--init-from", "{dir}/nowhere"}, "--init-from"},
    {{"gpt", "train", "--data", "{dir}/text.txt", "--out", "{dir}/o", "--resume", "{dir}/nowhere"}, "--resume"},
    {{"gpt", "train", "--data", "{dir}/text.txt", "--out", "{dir}/o", "--init-from", kFixture, "--resume", kFixture},
     "--init-from and --resume exclude each other"},
    // gpt eval / sample / attention
    {{"gpt", "eval", "--checkpoint", "{dir}/nowhere", "--data", "{dir}/text.txt"}, "nowhere"},
    {{"gpt", "eval", "--checkpoint", kFixture, "--data", "{dir}/text.txt", "--batch-size", "0"}, "--batch-size"},
    {{"gpt", "eval", "--checkpoint", kFixture, "--data", "{dir}/text.txt", "--block-size", "99"}, "--block-size 99"},
    {{"gpt", "sample", "--checkpoint", "{dir}/nowhere"}, "nowhere"},
    {{"gpt", "sample", "--checkpoint", kFixture, "--max-new-tokens", "-1"}, "--max-new-tokens"},
    {{"gpt", "sample", "--checkpoint", kFixture, "--temperature", "-1"}, "--temperature"},
    {{"gpt", "sample", "--checkpoint", kFixture}, "no tokenizer.json"},
    {{"gpt", "attention", "--checkpoint", kFixture, "--prompt", "ab", "--out", "{dir}/x.png"}, "--out"},
    {{"gpt"}, "subcommand"},
    // encoder
    {{"encoder", "train", "--data", "{dir}/train.tsv", "--out", "{dir}/e", "--pooling", "bogus"},
     "--pooling must be mean or cls"},
    {{"encoder", "train", "--data", "{dir}/train.tsv", "--out", "{dir}/e", "--n-embd", "30", "--n-head", "4"},
     "--n-head"},
    {{"encoder", "train", "--data", "{dir}/train.tsv", "--out", "{dir}/e", "--n-classes", "1"}, "--n-classes"},
    {{"encoder", "train", "--data", "{dir}/train.tsv", "--out", "{dir}/e", "--max-len", "0"}, "--max-len"},
    {{"encoder", "train", "--data", "{dir}/train.tsv", "--out", "{dir}/e", "--attention", "sliding:0"}, "--attention"},
    {{"encoder", "train", "--data", "{dir}/train.tsv", "--out", "{dir}/e", "--norm", "middle"}, "--norm"},
    {{"encoder", "train", "--data", "{dir}/train.tsv", "--out", "{dir}/afile"}, "--out"},
    {{"encoder", "eval", "--checkpoint", "{dir}/nowhere", "--data", "{dir}/train.tsv"}, "nowhere"},
    // data listops
    {{"data", "listops", "--out", "{dir}/l", "--min-len", "50", "--max-len", "10"}, "--max-len"},
    {{"data", "listops", "--out", "{dir}/l", "--train", "-1"}, "--train must be >= 0"},
    {{"data", "listops", "--out", "{dir}/afile"}, "--out"},
    // bench attention
    {{"bench", "attention", "--seq-lens", "0"}, "--seq-lens: '0' is not a positive integer"},
    {{"bench", "attention", "--seq-lens", "12,x"}, "--seq-lens"},
    {{"bench", "attention", "--batch", "0"}, "--batch"},
    {{"bench", "attention", "--mode", "both"}, "--mode"},
    {{"bench", "attention", "--variants", "dense,fast", "--seq-lens", "8"}, "fast"},
    // the app itself
    {{}, "subcommand"},
    {{"train"}, "unknown command 'train'"},
    // sizes (issue 15): products that overflow int64 and runs that cannot fit in memory are
    // refused before anything is built, naming the flags or files. {dir}/huge_vocab is the
    // fixture checkpoint with a config.json claiming vocab_size 2^40.
    {{"gpt", "train", "--data", "{dir}/text.txt", "--out", "{dir}/o", "--n-embd", "1000000", "--n-layer", "1000"},
     "gpt train with --n-embd 1000000 --n-layer 1000 --n-head 4 (vocabulary"},
    {{"gpt", "train", "--data", "{dir}/text.txt", "--out", "{dir}/o", "--n-embd", "1000000", "--n-layer", "1000"},
     "GB available"},
    {{"gpt", "train", "--data", "{dir}/text.txt", "--out", "{dir}/o", "--n-embd", "4611686018427387904"},
     "--n-embd 4611686018427387904, --n-layer 4: GPTConfig: the parameter count"},
    {{"gpt", "train", "--data", "{dir}/text.txt", "--out", "{dir}/o", "--batch-size", "4611686018427387904"},
     "--batch-size × --block-size (tokens per step): the product 4611686018427387904 × 64"},
    {{"gpt", "train", "--data", "{dir}/text.txt", "--out", "{dir}/o", "--batch-size", "100000000", "--block-size", "100"},
     "--batch-size 100000000 --block-size 100"},
    {{"gpt", "eval", "--checkpoint", "{dir}/huge_vocab", "--data", "{dir}/text.txt"}, "huge_vocab/config.json claims a model of"},
    {{"gpt", "sample", "--checkpoint", "{dir}/huge_vocab"}, "huge_vocab/model.safetensors has only"},
    {{"gpt", "attention", "--checkpoint", "{dir}/huge_vocab", "--prompt", "ab", "--out", "{dir}/x.svg"}, "config.json claims"},
    {{"encoder", "train", "--data", "{dir}/train.tsv", "--out", "{dir}/e", "--n-embd", "1000000", "--n-layer", "1000"},
     "encoder train with --n-embd 1000000 --n-layer 1000"},
    {{"encoder", "train", "--data", "{dir}/train.tsv", "--out", "{dir}/e", "--batch-size", "4611686018427387904",
      "--max-len", "4"},
     "--batch-size × --max-len"},
    {{"data", "listops", "--out", "{dir}/l", "--train", "1000000000000"}, "data listops with --train 1000000000000"},
    {{"data", "listops", "--out", "{dir}/l", "--train", "9223372036854775807", "--val", "1"}, "--train + --val + --test"},
    {{"bench", "attention", "--seq-lens", "10000000000"}, "--seq-lens 10000000000 with --batch 1 --heads 8"},
    {{"bench", "attention", "--seq-lens", "99999999999999999999"}, "--seq-lens: '99999999999999999999' is too large"},
    {{"bench", "attention", "--seq-lens", "8", "--max-memory", "99999999999G"},
     "--max-memory: '99999999999G' is too large to represent"},
    {{"bench", "attention", "--seq-lens", "8", "--max-memory", "1e30"}, "--max-memory: '1e30' is not a positive integer"},
};

class CliFlags : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = fs::temp_directory_path() / fmt::format("tapegrad-cli-{}", ::getpid());
    fs::create_directories(dir_ / "ro");
    std::string text;
    for (int i = 0; i < 200; ++i) text += "to be or not to be, that is the question.\n";
    std::ofstream(dir_ / "text.txt") << text;
    std::ofstream(dir_ / "short.txt") << "to be or n";
    std::ofstream(dir_ / "afile") << "not a directory";
    std::ofstream(dir_ / "train.tsv") << "Source\tTarget\n( [MAX 2 9 ] )\t9\n( [MIN 2 9 ] )\t2\n";
    ::chmod((dir_ / "ro").c_str(), 0555);
    // sizes (issue 15): the fixture checkpoint with a config.json that claims vocab_size 2^40.
    fs::copy(kFixture, dir_ / "huge_vocab", fs::copy_options::recursive);
    std::ifstream in(dir_ / "huge_vocab" / "config.json");
    std::string config((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    config.replace(config.find("\"vocab_size\": 17"), 16, "\"vocab_size\": 1099511627776");
    std::ofstream(dir_ / "huge_vocab" / "config.json") << config;
  }
  static void TearDownTestSuite() {
    ::chmod((dir_ / "ro").c_str(), 0755);
    fs::remove_all(dir_);
  }
  static fs::path dir_;
};
fs::path CliFlags::dir_;

TEST_F(CliFlags, EveryBadCommandLineFailsNamingTheFlag) {
  bool root = ::geteuid() == 0;  // root writes into read-only directories
  for (const BadCommandLine& c : kCases) {
    std::vector<std::string> args;
    std::string shown = "tapegrad";
    for (std::string a : c.args) {
      if (auto at = a.find("{dir}"); at != std::string::npos) a.replace(at, 5, dir_.string());
      shown += " " + a;
      args.push_back(a);
    }
    if (root && shown.find("/ro/") != std::string::npos) continue;
    SCOPED_TRACE(shown);
    std::ostringstream err;
    int code = cli::run(args, err);
    EXPECT_NE(code, 0);
    EXPECT_NE(err.str().find(c.message), std::string::npos) << "expected '" << c.message << "' in: " << err.str();
  }
}

TEST_F(CliFlags, HelpExitsZero) {
  std::ostringstream err;
  EXPECT_EQ(cli::run({"gpt", "train", "--help"}, err), 0);
}

}  // namespace
}  // namespace tg
