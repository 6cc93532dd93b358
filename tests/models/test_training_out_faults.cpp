// What `gpt train` checks of its --out before the first step, and how a run ends on trouble:
// foreign files in --out are refused and left byte for byte; an unwritable, read-only or full
// --out fails before training; resuming with different settings names each one; a non-finite
// loss stops training and keeps the last checkpoint. (Faults of the save itself:
// test_checkpoint_faults.cpp.)
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "models/gpt/gpt_checkpoint.h"
#include "models/training/gpt_train.h"
#include "nn/file_io.h"
#include "test_util.h"

namespace tg {
namespace {

namespace fs = std::filesystem;

using testing::snapshot;
using testing::TempDir;

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
                                {(tmp.path / "afile" / "sub").string(), "`out`: cannot create the directory"}});
}

// --out holding files and folders of the user's (a read-only folder, a nested file): refused before
// the first step, naming --out and each of them; nothing in it is moved, changed or removed. (The
// refusal comes before anything is written, so it does not depend on permissions: it holds for
// root too.) A --log inside --out, which would be such a file, is refused too.
TEST(CheckpointFaults, ForeignFilesInOutAreRefusedBeforeTraining) {
  TempDir tmp;
  std::string data = write_corpus(tmp);
  const fs::path out = tmp.path / "out";
  fs::create_directories(out / "data" / "nested");
  fs::create_directories(out / "frozen");
  std::ofstream(out / "notes.txt") << "mine";
  std::ofstream(out / "data" / "nested" / "values.bin", std::ios::binary) << std::string("\x00\x01\xff", 3);
  std::ofstream(out / "frozen" / "keep.txt") << "keep";
  std::ofstream(out / models::kConfigFile) << "{\"mine\": true}";  // a name of a checkpoint's, beside others
  fs::permissions(out / "frozen", fs::perms::owner_read | fs::perms::owner_exec);
  const std::map<std::string, std::string> before = snapshot(out);
  models::GPTTrainOptions o = tiny(data, out.string());
  o.optim.log = tmp / "log.csv";
  try {
    models::train_gpt(o);
    ADD_FAILURE() << "trained into a directory holding the user's files";
  } catch (const Error& e) {
    std::string m = e.what();
    EXPECT_TRUE(m.starts_with("`out`: " + out.string() + " holds files tapegrad did not write: data/, frozen/, notes.txt"))
        << m;
  }
  EXPECT_FALSE(fs::exists(o.optim.log)) << "a training step ran";
  EXPECT_EQ(snapshot(out), before);
  fs::permissions(out / "frozen", fs::perms::owner_all);

  models::GPTTrainOptions logged = tiny(data, (tmp.path / "run").string());
  logged.optim.log = (tmp.path / "run" / "log.csv").string();
  EXPECT_TG_ERROR(models::train_gpt(logged), "`log`: " + logged.optim.log + " is inside `out`");
  EXPECT_FALSE(fs::exists(logged.optim.log));
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
                               {{ro.string(), "`out`: cannot write into"},
                                {(ro / "new" / "deeper").string(), "`out`: cannot create the directory"}});
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
    EXPECT_NE(std::string(e.what()).find("`out`"), std::string::npos) << e.what();
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
    for (const char* want : {"`n_layer` 1 (given 3)", "`attention` dense (given flash)", "`batch_size` 4 (given 8)",
                             "`optimizer` adamw (given sgd)"})
      EXPECT_NE(m.find(want), std::string::npos) << want << " in: " << m;
    EXPECT_EQ(m.find("`n_head`"), std::string::npos) << m;
  }
  // Options not given take the checkpoint's values (what `gpt train --resume` does).
  models::GPTTrainOptions bare = tiny(data, tmp / "run");
  bare.resume = tmp / "run";
  bare.n_layer = 4, bare.optim.max_iters = 6;
  models::adopt_resumed_options(bare, [](const std::string& field) { return field == "max_iters"; });
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
