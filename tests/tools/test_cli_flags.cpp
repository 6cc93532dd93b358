// Every bad command line fails with a non-zero exit and a message naming the flag: the real
// `tapegrad` app (tools/cli/run.cpp) is run in-process on each case of the table below.
#include <grp.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmath>
#include <cstring>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "test_util.h"
#include "models/tokenizers/char_tokenizer.h"
#include "models/gpt/gpt_checkpoint.h"
#include "models/training/train_options.h"
#include "nn/linear.h"
#include "nn/optim/sgd.h"
#include "nn/safetensors.h"
#include "tools/cli/flag_names.h"
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
    {{"gpt", "train", "--data", "{dir}/text.txt", "--out", "{dir}/o", "--pack-documents", "--attention", "linear"},
     "--pack-documents: --attention linear has no attention mask"},
    {{"gpt", "train", "--data", "{dir}/text.txt", "--out", "{dir}/o", "--pack-documents"},
     "--pack-documents: the training tokens of"},  // no blank line: one document
    // gpt train: the Llama family's flags
    {{"gpt", "train", "--data", "{dir}/text.txt", "--out", "{dir}/o", "--model", "mamba"}, "--model must be gpt2 or llama"},
    {{"gpt", "train", "--data", "{dir}/text.txt", "--out", "{dir}/o", "--model", "llama", "--n-kv-head", "3"},
     "--n-kv-head (3) must divide --n-head (4)"},
    {{"gpt", "train", "--data", "{dir}/text.txt", "--out", "{dir}/o", "--model", "llama", "--rope-theta", "-1"},
     "--rope-theta must be positive"},
    {{"gpt", "train", "--data", "{dir}/text.txt", "--out", "{dir}/o", "--model", "llama", "--save-dtype", "float8"},
     "--save-dtype must be float32, bfloat16 or float16"},
    // gpt train: optimisation flags
    {{"gpt", "train", "--data", "{dir}/text.txt", "--out", "{dir}/o", "--batch-size", "-2"}, "--batch-size must be positive"},
    {{"gpt", "train", "--data", "{dir}/text.txt", "--out", "{dir}/o", "--threads", "-1"}, "--threads must be >= 0"},
    {{"gpt", "train", "--data", "{dir}/text.txt", "--out", "{dir}/o", "--lr-schedule", "bogus"},
     "--lr-schedule must be cosine, linear or constant"},
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
    // files the command reads or writes, in every form they come (issue 15)
    {{"gpt", "train", "--data", "{dir}/fifo", "--out", "{dir}/o"}, "--data: cannot read {dir}/fifo: it is a FIFO"},
    {{"gpt", "train", "--data", "/dev/zero", "--out", "{dir}/o"}, "--data: cannot read /dev/zero: it is a character device"},
    {{"gpt", "train", "--data", "{dir}/loop", "--out", "{dir}/o"}, "--data: cannot read {dir}/loop: too many levels of symbolic links"},
    {{"gpt", "train", "--data", "{dir}/ro", "--out", "{dir}/o"}, "--data: cannot read {dir}/ro: it is a directory"},
    {{"gpt", "train", "--data", "{dir}/unreadable.txt", "--out", "{dir}/o"}, "--data: cannot read {dir}/unreadable.txt: permission denied"},
    {{"gpt", "train", "--data", "{dir}/text.txt", "--val-data", "{dir}/fifo", "--out", "{dir}/o"}, "--val-data: cannot read {dir}/fifo"},
    {{"gpt", "train", "--data", "{dir}/text.txt", "--out", "{dir}/o", "--log", "{dir}/ro"}, "--log: cannot write {dir}/ro: it is a directory"},
    {{"gpt", "train", "--data", "{dir}/text.txt", "--out", "{dir}/o", "--log", "{dir}/nowhere/log.csv"}, "--log: cannot write {dir}/nowhere/log.csv"},
    {{"gpt", "train", "--data", "{dir}/text.txt", "--out", "{dir}/o", "--log", "{dir}/ro/log.csv"}, "--log: cannot write {dir}/ro/log.csv"},
    {{"gpt", "train", "--data", "{dir}/text.txt", "--out", "{dir}/o", "--log", "/dev/null"}, "--log: cannot write /dev/null"},
    {{"gpt", "train", "--data", "{dir}/text.txt", "--out", "{dir}/o", "--init-from", "{dir}/afile"}, "--init-from: {dir}/afile is a file"},
    {{"gpt", "train", "--data", "{dir}/text.txt", "--out", "{dir}/o", "--resume", "{dir}/loop"}, "--resume: cannot read the directory {dir}/loop"},
    {{"gpt", "eval", "--checkpoint", "{dir}/loop", "--data", "{dir}/text.txt"}, "--checkpoint: cannot read the directory {dir}/loop"},
    {{"gpt", "eval", "--checkpoint", kFixture, "--data", "/dev/zero"}, "--data: cannot read /dev/zero"},
    {{"gpt", "sample", "--checkpoint", "{dir}/afile"}, "--checkpoint: {dir}/afile is a file"},
    {{"gpt", "attention", "--checkpoint", kFixture, "--prompt", "ab", "--out", "{dir}/nowhere/a.svg"}, "--out: cannot write {dir}/nowhere/a.svg"},
    {{"encoder", "train", "--data", "{dir}/fifo", "--out", "{dir}/e"}, "--data: cannot read {dir}/fifo"},
    {{"encoder", "train", "--data", "{dir}/train.tsv", "--out", "{dir}/e", "--log", "{dir}/ro/log.csv"}, "--log: cannot write {dir}/ro/log.csv"},
    {{"encoder", "eval", "--checkpoint", "{dir}/afile", "--data", "{dir}/train.tsv"}, "--checkpoint: {dir}/afile is a file"},
    {{"bench", "attention", "--seq-lens", "8", "--csv", "{dir}/ro"}, "--csv: cannot write {dir}/ro: it is a directory"},
    {{"bench", "attention", "--seq-lens", "8", "--csv", "{dir}/ro/b.csv"}, "--csv: cannot write {dir}/ro/b.csv"},
    {{"bench", "attention", "--seq-lens", "8", "--plot", "{dir}/nowhere/b.svg"}, "--plot: cannot write {dir}/nowhere/b.svg"},
    {{"data", "listops", "--out", "{dir}/loop"}, "--out: cannot create the directory {dir}/loop"},
    {{"data", "listops", "--out", "{dir}/ro/l"}, "--out: cannot create the directory {dir}/ro/l"},
    // the one error path: a file-system exception (not a tg::Error) from deep inside a load
    {{"gpt", "eval", "--checkpoint", "{dir}/looping_config", "--data", "{dir}/text.txt"},
     "tapegrad gpt eval: --checkpoint: filesystem error: status: Too many levels of symbolic links "
     "[{dir}/looping_config/config.json]"},
    // model and data files that disagree
    {{"gpt", "eval", "--checkpoint", "{dir}/big_tokenizer", "--data", "{dir}/text.txt"},
     "{dir}/big_tokenizer/tokenizer.json has 20 tokens, but the model's embedding has 17 rows"},
    {{"gpt", "eval", "--checkpoint", "{dir}/small_tokenizer", "--data", "{dir}/unknown_char.txt"},
     "--data: {dir}/unknown_char.txt:2:3: character 'z' (0x7a) is not in the vocabulary of {dir}/small_tokenizer/tokenizer.json"},
    {{"encoder", "train", "--data", "{dir}/train.tsv", "--out", "{dir}/e", "--n-classes", "5"},
     "{dir}/train.tsv:2: the label 9 is beyond --n-classes 5"},
    {{"gpt", "sample", "--checkpoint", "{dir}/small_tokenizer", "--prompt", "abz"},
     "--prompt: character 'z' (0x7a) at offset 2 is not in the vocabulary of {dir}/small_tokenizer/tokenizer.json"},
    // weights that hold NaN: refused where they would print noise
    {{"gpt", "sample", "--checkpoint", "{dir}/nan_weights"}, "--checkpoint: {dir}/nan_weights/model.safetensors: wte.weight holds NaN"},
    {{"gpt", "attention", "--checkpoint", "{dir}/nan_weights", "--prompt", "ab", "--out", "{dir}/a.svg"}, "wte.weight holds NaN"},
    // SGD as torch.optim.SGD
    {{"gpt", "train", "--data", "{dir}/text.txt", "--out", "{dir}/o", "--optimizer", "sgd", "--nesterov"},
     "--nesterov needs --momentum > 0"},
    {{"gpt", "train", "--data", "{dir}/text.txt", "--out", "{dir}/o", "--optimizer", "sgd", "--momentum", "-1"},
     "--momentum must be >= 0"},
    {{"gpt", "train", "--data", "{dir}/text.txt", "--out", "{dir}/o", "--momentum", "0.9"}, "--momentum and --nesterov are SGD's"},
    {{"gpt", "train", "--data", "{dir}/text.txt", "--out", "{dir}/o", "--attention", "flex:wobbly"},
     "--attention: attention pattern 'flex:wobbly': unknown pattern 'wobbly'"},
    {{"encoder", "train", "--data", "{dir}/train.tsv", "--out", "{dir}/e", "--attention", "flex:document:2"},
     "--attention: attention pattern 'flex:document:2'"},
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

// A copy of the tiny GPT-2 fixture (vocab_size 17) in `dir`, with a character tokenizer of `chars`.
void checkpoint_with_tokenizer(const fs::path& dir, const std::string& chars) {
  fs::create_directories(dir);
  for (const char* f : {"config.json", "model.safetensors"}) fs::copy_file(fs::path(kFixture) / f, dir / f);
  models::CharTokenizer::from_text(chars).save((dir / "tokenizer.json").string());
}

class CliFlags : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = fs::temp_directory_path() / fmt::format("tapegrad-cli-{}", ::getpid());
    fs::create_directories(dir_ / "ro");
    ::chmod(dir_.c_str(), 0755);  // the unprivileged cases must reach the files
    std::string text;
    for (int i = 0; i < 200; ++i) text += "to be or not to be, that is the question.\n";
    std::ofstream(dir_ / "text.txt") << text;
    std::ofstream(dir_ / "short.txt") << "to be or n";
    std::ofstream(dir_ / "afile") << "not a directory";
    std::ofstream(dir_ / "unreadable.txt") << text;
    ::chmod((dir_ / "unreadable.txt").c_str(), 0);
    std::ofstream(dir_ / "unknown_char.txt") << "abc\nabz\n";
    std::ofstream(dir_ / "train.tsv") << "Source\tTarget\n( [MAX 2 9 ] )\t9\n( [MIN 2 9 ] )\t2\n";
    ::mkfifo((dir_ / "fifo").c_str(), 0644);
    fs::create_symlink(dir_ / "loop2", dir_ / "loop");
    fs::create_symlink(dir_ / "loop", dir_ / "loop2");
    checkpoint_with_tokenizer(dir_ / "big_tokenizer", "abcdefghijklmnopqrst");  // 20 > the model's 17
    checkpoint_with_tokenizer(dir_ / "small_tokenizer", "abc\ndefghijklmnop");  // 17, without 'z'
    checkpoint_with_tokenizer(dir_ / "nan_weights", "to be or not to be, that is the question.\nX");  // text.txt's 16 + 1
    models::LoadedGPT nan_model = models::load_gpt(kFixture);
    {
      NoGradGuard no_grad;
      Tensor wte = nan_model.model->named_parameters().front().second;  // wte.weight
      std::vector<double> values = wte.to_vector();
      values[5] = std::nan("");
      wte.copy_(tensor(values, wte.shape(), DType::f64));
    }
    nn::save_safetensors((dir_ / "nan_weights/model.safetensors").string(), nan_model.model->state_dict());
    fs::create_directories(dir_ / "looping_config");
    fs::create_symlink(dir_ / "loop", dir_ / "looping_config/config.json");
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

std::string with_dir(std::string s, const std::string& dir) {
  for (size_t at; (at = s.find("{dir}")) != std::string::npos;) s.replace(at, 5, dir);
  return s;
}

struct Outcome {
  int code = 0;
  std::string err;
};

// The command run in a child process as the user nobody (65534): root reads and writes anywhere,
// so the permission cases mean something only without root's privileges.
Outcome run_unprivileged(const std::vector<std::string>& args) {
  int fds[2];
  if (::pipe(fds) != 0) return {-1, "pipe failed"};
  pid_t pid = ::fork();
  if (pid == 0) {
    ::close(fds[0]);
    ::alarm(30);  // a hang fails the case instead of the suite
    std::ostringstream err;
    int code = 97;
    if (::setgroups(0, nullptr) == 0 && ::setresgid(65534, 65534, 65534) == 0 && ::setresuid(65534, 65534, 65534) == 0)
      code = cli::run(args, err);
    else
      err << "cannot drop root's privileges: " << std::strerror(errno);
    const std::string text = err.str();
    ssize_t ignored = ::write(fds[1], text.data(), text.size());
    (void)ignored;
    ::_exit(code);
  }
  ::close(fds[1]);
  Outcome out;
  char buffer[4096];
  for (ssize_t n; (n = ::read(fds[0], buffer, sizeof buffer)) > 0;) out.err.append(buffer, size_t(n));
  ::close(fds[0]);
  int status = 0;
  ::waitpid(pid, &status, 0);
  out.code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  return out;
}

TEST_F(CliFlags, EveryBadCommandLineFailsNamingTheFlag) {
  const bool root = ::geteuid() == 0;
  for (const BadCommandLine& c : kCases) {
    std::vector<std::string> args;
    std::string shown = "tapegrad";
    for (const std::string& a : c.args) {
      args.push_back(with_dir(a, dir_.string()));
      shown += " " + args.back();
    }
    const bool needs_permissions = shown.find("/ro") != std::string::npos || shown.find("unreadable") != std::string::npos;
    SCOPED_TRACE(shown);
    Outcome r;
    if (root && needs_permissions) {
      r = run_unprivileged(args);
    } else {
      std::ostringstream err;
      r.code = cli::run(args, err);
      r.err = err.str();
    }
    ASSERT_NE(r.code, 97) << r.err;
    EXPECT_TRUE(r.code == 1 || r.code == 2) << "exit " << r.code;  // 1: an error, 2: a bad command line
    const std::string message = with_dir(c.message, dir_.string());
    EXPECT_NE(r.err.find(message), std::string::npos) << "expected '" << message << "' in: " << r.err;
    if (r.code == 1) {
      EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << "one line expected: " << r.err;
    }
  }
}

TEST_F(CliFlags, HelpExitsZero) {
  std::ostringstream err;
  EXPECT_EQ(cli::run({"gpt", "train", "--help"}, err), 0);
}

}  // namespace
}  // namespace tg

namespace tg {
namespace {

// Exit 0 means the thing asked for happened: --max-iters 0 writes the checkpoint it announces.
TEST_F(CliFlags, MaxItersZeroWritesTheInitialCheckpoint) {
  const std::string out = (dir_ / "zero_steps").string();
  std::ostringstream err;
  ASSERT_EQ(cli::run({"gpt", "train", "--data", (dir_ / "text.txt").string(), "--out", out, "--max-iters", "0",
                      "--n-layer", "1", "--n-embd", "8", "--n-head", "2", "--block-size", "8"},
                     err),
            0)
      << err.str();
  EXPECT_NO_THROW(models::load_gpt(out));
  EXPECT_TRUE(models::has_training_state(out));
}

// gpt eval of weights holding NaN still prints its loss (as PyTorch would) but says why on stderr.
TEST_F(CliFlags, EvalOfNonFiniteWeightsSaysWhy) {
  std::ostringstream err;
  ::testing::internal::CaptureStderr();
  int code = cli::run({"gpt", "eval", "--checkpoint", (dir_ / "nan_weights").string(), "--data",
                       (dir_ / "text.txt").string()},
                      err);
  std::string stderr_text = ::testing::internal::GetCapturedStderr();
  EXPECT_EQ(code, 0) << err.str();
  EXPECT_NE(stderr_text.find("warning: " + (dir_ / "nan_weights/model.safetensors").string() + ": wte.weight holds NaN"),
            std::string::npos)
      << stderr_text;
}

// --optimizer sgd is torch.optim.SGD with its defaults: no momentum, no weight decay.
TEST(TrainOptions, SgdHasPyTorchsDefaults) {
  nn::Linear layer(nn::LinearOptions(3, 2));
  models::OptimOptions o;
  o.optimizer = "sgd";
  std::unique_ptr<optim::Optimizer> opt = o.make_optimizer(layer);
  auto* sgd = dynamic_cast<optim::SGD*>(opt.get());
  ASSERT_NE(sgd, nullptr);
  EXPECT_EQ(sgd->options.momentum(), 0.0);
  EXPECT_FALSE(sgd->options.nesterov());
  EXPECT_EQ(o.effective_weight_decay(), 0.0);
  o.optimizer = "adamw";
  EXPECT_EQ(o.effective_weight_decay(), 0.1);  // nanoGPT's
  o.optimizer = "sgd", o.momentum = 0.9, o.nesterov = true, o.weight_decay = 0.01;
  opt = o.make_optimizer(layer);
  sgd = dynamic_cast<optim::SGD*>(opt.get());
  EXPECT_EQ(sgd->options.momentum(), 0.9);
  EXPECT_TRUE(sgd->options.nesterov());
  EXPECT_EQ(o.effective_weight_decay(), 0.01);
}

// models/ names options by field (`block_size`); the command shows the flag of each of its own.
TEST(FlagNames, FieldsOfTheCommandBecomeItsFlags) {
  CLI::App command;
  int64_t block_size = 0;
  double lr = 0;
  command.add_option("--block-size", block_size);
  command.add_option("--lr", lr);
  EXPECT_EQ(cli::flag_of("n_kv_head"), "--n-kv-head");
  EXPECT_EQ(cli::with_flag_names("`block_size` must be in [1, `lr`]; `n_layer`, `Lr`, `a b` and `` stay", command),
            "--block-size must be in [1, --lr]; `n_layer`, `Lr`, `a b` and `` stay");
  EXPECT_EQ(cli::with_flag_names("an odd ` before `lr`, and one after `", command), "an odd ` before --lr, and one after `");
  EXPECT_EQ(cli::with_flag_names("no names", command), "no names");
}

}  // namespace
}  // namespace tg
