// Checkpoint faults: a writer killed (SIGKILL) at random moments always leaves a loadable,
// consistent checkpoint; an unwritable or full --out fails before training; truncated or
// corrupted files name the file; resuming with different settings names each one; a
// non-finite loss stops training and keeps the last checkpoint.
#include <signal.h>
#include <spawn.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <random>
#include <thread>

#include "models/gpt_checkpoint.h"
#include "models/gpt_train.h"
#include "nn/file_io.h"
#include "test_util.h"

extern char** environ;

namespace tg {
namespace {

namespace fs = std::filesystem;

using testing::TempDir;

models::GPTConfig small_config() {
  models::GPTConfig c;
  c.vocab_size = 20, c.n_positions = 16, c.n_layer = 2, c.n_head = 2, c.n_embd = 64;
  return c;
}

// Checkpoint `k`: every parameter, the optimizer tensor and the step say k.
void save_generation(const std::string& dir, models::GPT& model, const models::CharTokenizer& tok, int64_t k) {
  {
    NoGradGuard no_grad;
    for (Tensor& p : model.parameters()) p.fill_(double(k));
  }
  models::TrainingState st;
  st.tensors["optimizer.m"] = full({4096}, double(k));
  st.json = nlohmann::json{{"step", k}}.dump();
  models::save_checkpoint(dir, model, &tok, &st);
}

// Loads `dir` and returns its generation, checking that every file says the same one.
int64_t load_generation(const std::string& dir) {
  models::LoadedGPT loaded = models::load_gpt(dir);
  models::TrainingState st = models::load_training_state(dir);
  EXPECT_TRUE(models::load_tokenizer(dir).has_value());
  int64_t k = nlohmann::json::parse(st.json).at("step").get<int64_t>();
  for (const auto& [name, p] : loaded.model->named_parameters()) {
    const float* v = p.data<float>();
    EXPECT_EQ(v[0], float(k)) << name;
    EXPECT_EQ(v[p.numel() - 1], float(k)) << name;
  }
  EXPECT_EQ(st.tensors.at("optimizer.m").data<float>()[0], float(k));
  return k;
}

// The writer, for KilledWriterLeavesALoadableCheckpoint: when this test binary is started with
// $TG_FAULTS_DIR set, it saves generations $TG_FAULTS_START, +1, ... there until killed, before
// GoogleTest runs anything (so no test of its own has to stand idle in normal runs).
[[maybe_unused]] const bool writer_child = [] {
  const char* dir = std::getenv("TG_FAULTS_DIR");
  if (!dir) return false;
  int64_t k = std::atoll(std::getenv("TG_FAULTS_START"));
  Generator gen(0);
  models::GPT model(small_config(), gen);
  models::CharTokenizer tok = models::CharTokenizer::from_text("abcdefghijklmnopqrst");
  for (;; ++k) save_generation(dir, model, tok, k);
}();

TEST(CheckpointFaults, KilledWriterLeavesALoadableCheckpoint) {
  TempDir tmp;
  const std::string dir = tmp / "ckpt";
  std::mt19937 rng(7);
  int64_t last = -1;
  const int kills = 30;
  for (int i = 0; i < kills; ++i) {
    std::string env_dir = "TG_FAULTS_DIR=" + dir, env_start = fmt::format("TG_FAULTS_START={}", last + 1);
    std::vector<char*> envp;
    for (char** e = environ; *e; ++e) envp.push_back(*e);
    envp.push_back(env_dir.data());
    envp.push_back(env_start.data());
    envp.push_back(nullptr);
    std::string self = fs::read_symlink("/proc/self/exe").string();
    char* argv[] = {self.data(), nullptr};
    pid_t pid;
    ASSERT_EQ(posix_spawn(&pid, self.c_str(), nullptr, nullptr, argv, envp.data()), 0);
    // Wait for a first checkpoint, then kill at a random moment of the following saves.
    for (int w = 0; w < 3000 && !fs::exists(fs::path(dir) / models::kTrainingJsonFile); ++w)
      std::this_thread::sleep_for(std::chrono::milliseconds(2));
    std::this_thread::sleep_for(std::chrono::microseconds(std::uniform_int_distribution<int>(0, 40000)(rng)));
    ::kill(pid, SIGKILL);
    int status = 0;
    ::waitpid(pid, &status, 0);
    SCOPED_TRACE(fmt::format("kill {}", i));
    int64_t k = -1;
    ASSERT_NO_THROW(k = load_generation(dir));
    EXPECT_GE(k, last);  // never back beyond what was already seen
    last = k;
  }
  // The next save cleans up what killed writers left beside the directory.
  Generator gen(0);
  models::GPT model(small_config(), gen);
  save_generation(dir, model, models::CharTokenizer::from_text("abcdefghijklmnopqrst"), last + 1);
  EXPECT_EQ(load_generation(dir), last + 1);
  int leftovers = 0;
  for (const auto& e : fs::directory_iterator(tmp.path)) leftovers += e.path().filename().string().starts_with(".ckpt.");
  EXPECT_EQ(leftovers, 0);
}

TEST(CheckpointFaults, ASaveKeepsFilesItDidNotWrite) {
  TempDir tmp;
  const std::string dir = tmp / "ckpt";
  Generator gen(0);
  models::GPT model(small_config(), gen);
  models::CharTokenizer tok = models::CharTokenizer::from_text("abcdefghijklmnopqrst");
  save_generation(dir, model, tok, 1);
  std::ofstream(fs::path(dir) / "notes.txt") << "mine";
  save_generation(dir, model, tok, 2);
  EXPECT_EQ(read_file_bytes((fs::path(dir) / "notes.txt").string()), "mine");
  EXPECT_EQ(load_generation(dir), 2);
}

// Every file of a checkpoint, truncated or with its start overwritten, gives an error naming it.
TEST(CheckpointFaults, TruncatedOrCorruptedFilesAreNamed) {
  TempDir tmp;
  const std::string good = tmp / "good";
  Generator gen(0);
  models::GPT model(small_config(), gen);
  save_generation(good, model, models::CharTokenizer::from_text("abcdefghijklmnopqrst"), 3);
  for (const char* file : {models::kConfigFile, models::kModelFile, models::kTokenizerFile,
                           models::kTrainingTensorsFile, models::kTrainingJsonFile}) {
    for (const char* damage : {"truncated", "corrupted", "empty"}) {
      SCOPED_TRACE(fmt::format("{} {}", file, damage));
      const std::string dir = tmp / "bad";
      fs::remove_all(dir);
      fs::copy(good, dir);
      fs::path path = fs::path(dir) / file;
      std::string bytes = read_file_bytes(path.string());
      if (std::string(damage) == "truncated") bytes.resize(bytes.size() / 2);
      if (std::string(damage) == "corrupted") bytes.replace(0, 12, std::string(12, '\xff'));
      if (std::string(damage) == "empty") bytes.clear();
      std::ofstream(path, std::ios::binary | std::ios::trunc) << bytes;
      try {
        load_generation(dir);
        ADD_FAILURE() << "loaded a damaged checkpoint";
      } catch (const Error& e) {
        EXPECT_NE(std::string(e.what()).find(path.string()), std::string::npos) << e.what();
      }
    }
  }
}

models::GPTTrainOptions tiny(const std::string& data, const std::string& out) {
  models::GPTTrainOptions o;
  o.data = data;
  o.out = out;
  o.n_layer = 1, o.n_head = 2, o.n_embd = 16, o.block_size = 16, o.optim.batch_size = 4;
  o.optim.max_iters = 4, o.optim.eval_interval = 2, o.optim.eval_iters = 1, o.optim.warmup_iters = 0;
  o.optim.progress = false;
  return o;
}

std::string write_corpus(const TempDir& dir) {
  std::string text;
  for (int i = 0; i < 200; ++i) text += fmt::format("line {} of the play: to be or not to be.\n", i * 7 % 23);
  std::string path = dir / "corpus.txt";
  std::ofstream(path) << text;
  return path;
}

void expect_fails_before_training(const TempDir& tmp, const std::string& data,
                                  const std::vector<std::pair<std::string, std::string>>& cases) {
  for (const auto& [out, message] : cases) {
    SCOPED_TRACE(out);
    models::GPTTrainOptions o = tiny(data, out);
    o.optim.log = tmp / "log.csv";
    EXPECT_TG_ERROR(models::train_gpt(o), message);
    EXPECT_FALSE(fs::exists(o.optim.log)) << "a training step ran";
  }
}

TEST(CheckpointFaults, UnwritableOutFailsBeforeTraining) {
  TempDir tmp;
  std::string data = write_corpus(tmp);
  std::ofstream(tmp / "afile") << "x";
  expect_fails_before_training(tmp, data,
                               {{tmp / "afile", "exists and is not a directory"},
                                {(tmp.path / "afile" / "sub").string(), "--out: cannot create the directory"}});
}

// A read-only directory: by its permissions, or, for root (who writes anywhere), a tmpfs
// mounted read-only (needs CAP_SYS_ADMIN; skipped, and said so, otherwise).
TEST(CheckpointFaults, ReadOnlyOutFailsBeforeTraining) {
  TempDir tmp;
  std::string data = write_corpus(tmp);
  fs::path ro = tmp.path / "ro";
  fs::create_directories(ro);
  const bool root = ::geteuid() == 0;
  if (root) {
    if (::mount("tapegrad-test", ro.c_str(), "tmpfs", MS_RDONLY, "size=64k") != 0)
      GTEST_SKIP() << "root writes anywhere, and a read-only tmpfs cannot be mounted here: " << std::strerror(errno);
  } else {
    fs::permissions(ro, fs::perms::owner_read | fs::perms::owner_exec);
  }
  expect_fails_before_training(tmp, data,
                               {{ro.string(), "--out: cannot write into"},
                                {(ro / "new" / "deeper").string(), "--out: cannot create the directory"}});
  if (root) ::umount(ro.c_str());
}

// A full disk, as a 64 KiB tmpfs (needs root and CAP_SYS_ADMIN; skipped otherwise).
TEST(CheckpointFaults, FullDiskFailsBeforeTraining) {
  TempDir tmp;
  std::string data = write_corpus(tmp);
  fs::path mnt = tmp.path / "small";
  fs::create_directories(mnt);
  if (::mount("tapegrad-test", mnt.c_str(), "tmpfs", 0, "size=64k") != 0)
    GTEST_SKIP() << "cannot mount a tmpfs here: " << std::strerror(errno);
  std::string filler((48 << 10), 'x');
  std::ofstream(mnt / "filler") << filler;
  models::GPTTrainOptions o = tiny(data, (mnt / "out").string());
  o.optim.log = tmp / "log.csv";
  try {
    models::train_gpt(o);
    ADD_FAILURE() << "trained onto a full disk";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("--out"), std::string::npos) << e.what();
  }
  EXPECT_FALSE(fs::exists(o.optim.log)) << "a training step ran";
  ::umount(mnt.c_str());
}

TEST(CheckpointFaults, ResumeWithDifferentSettingsNamesEachField) {
  TempDir tmp;
  std::string data = write_corpus(tmp);
  models::GPTTrainOptions first = tiny(data, tmp / "run");
  models::train_gpt(first);
  models::GPTTrainOptions again = tiny(data, tmp / "run");
  again.resume = tmp / "run";
  again.n_layer = 3, again.attention = "flash", again.optim.batch_size = 8, again.optim.optimizer = "sgd";
  again.optim.max_iters = 6;
  try {
    models::train_gpt(again);
    ADD_FAILURE() << "resumed with different settings";
  } catch (const Error& e) {
    std::string m = e.what();
    for (const char* want : {"--n-layer 1 (given 3)", "--attention dense (given flash)", "--batch-size 4 (given 8)",
                             "--optimizer adamw (given sgd)"})
      EXPECT_NE(m.find(want), std::string::npos) << want << " in: " << m;
    EXPECT_EQ(m.find("--n-head"), std::string::npos) << m;
  }
  // Flags not given take the checkpoint's values (what `gpt train --resume` does).
  models::GPTTrainOptions bare = tiny(data, tmp / "run");
  bare.resume = tmp / "run";
  bare.n_layer = 4, bare.optim.max_iters = 6;
  models::adopt_resumed_options(bare, [](const std::string& flag) { return flag == "--max-iters"; });
  EXPECT_EQ(bare.n_layer, 1);
  EXPECT_EQ(models::train_gpt(bare).steps, 6);
}

TEST(CheckpointFaults, NonFiniteLossStopsAndKeepsTheLastCheckpoint) {
  TempDir tmp;
  std::string data = write_corpus(tmp);
  models::GPTTrainOptions o = tiny(data, tmp / "run");
  o.optim.max_iters = 4;
  models::train_gpt(o);  // a good checkpoint at step 4
  const std::string weights = read_file_bytes(tmp / "run/model.safetensors");

  models::GPTTrainOptions wild = o;
  wild.resume = tmp / "run";
  wild.optim.max_iters = 60, wild.optim.eval_interval = 50;
  wild.optim.lr = 1e30, wild.optim.min_lr = 1e30, wild.optim.lr_schedule = "constant", wild.optim.grad_clip = 0;
  EXPECT_TG_ERROR(models::train_gpt(wild), "the last checkpoint (step 4) is kept");
  EXPECT_EQ(read_file_bytes(tmp / "run/model.safetensors"), weights);
  EXPECT_NO_THROW(models::load_gpt(tmp / "run"));

  // Anomaly mode names the op instead.
  wild.optim.detect_anomaly = true;
  EXPECT_TG_ERROR(models::train_gpt(wild), "anomaly: ");
  EXPECT_FALSE(is_anomaly_enabled());
  EXPECT_EQ(read_file_bytes(tmp / "run/model.safetensors"), weights);
}

}  // namespace
}  // namespace tg
