// Checkpoint faults in the save itself: a writer killed (SIGKILL) at random moments always leaves
// a loadable, consistent checkpoint; a save failing at any of its steps keeps the last checkpoint
// and every file beside it; a file tapegrad did not write appearing in the directory fails or
// undoes the save and is never moved or deleted; truncated or corrupted files name the file.
// What training checks of --out before its first step: test_training_out_faults.cpp.
#include <signal.h>
#include <spawn.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <random>
#include <thread>

#include "models/encoder/encoder.h"
#include "models/gpt/gpt_checkpoint.h"
#include "models/training/gpt_train.h"
#include "models/data/listops.h"
#include "nn/file_io.h"
#include "test_util.h"

extern char** environ;

namespace tg {
namespace {

namespace fs = std::filesystem;

using testing::snapshot;
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

// Every file and folder under `root` (paths relative to it, folders ending in '/') with its bytes.
// Files and folders beside a checkpoint directory that are not tapegrad's: a file, a folder with
// a nested file, and names that look like (but are not) a writer's temporary directory.
void plant_siblings(const fs::path& parent) {
  fs::create_directories(parent / "data" / "nested");
  std::ofstream(parent / "notes.txt") << "mine";
  std::ofstream(parent / "data" / "nested" / "values.bin", std::ios::binary) << std::string("\x00\x01\xff", 3);
  std::ofstream(parent / ".ckpt.saving-mine") << "not a temporary";
  fs::create_directories(parent / ".ckpt.old-x");
}

// Temporary directories of writers (`.ckpt.saving-PID`, `.ckpt.old-PID`) in `parent`.
std::vector<std::string> leftovers(const fs::path& parent) {
  std::vector<std::string> found;
  for (const auto& e : fs::directory_iterator(parent)) {
    std::string name = e.path().filename().string();
    for (const char* prefix : {".ckpt.saving-", ".ckpt.old-"})
      if (name.starts_with(prefix) && name.size() > std::strlen(prefix) &&
          name.find_first_not_of("0123456789", std::strlen(prefix)) == std::string::npos)
        found.push_back(name);
  }
  return found;
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
  plant_siblings(tmp.path);
  std::map<std::string, std::string> siblings = snapshot(tmp.path);
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
  EXPECT_EQ(leftovers(tmp.path), std::vector<std::string>());
  std::map<std::string, std::string> now = snapshot(tmp.path);
  std::erase_if(now, [](const auto& entry) { return entry.first.starts_with("ckpt/"); });
  EXPECT_EQ(now, siblings);  // every file beside the checkpoint, byte for byte
}

// A file of the user's dropped into the checkpoint directory between two saves: the second save
// fails naming it, before writing anything; the file and the previous checkpoint are untouched.
TEST(CheckpointFaults, AForeignFileInTheDirectoryFailsTheNextSave) {
  TempDir tmp;
  const std::string dir = tmp / "ckpt";
  Generator gen(0);
  models::GPT model(small_config(), gen);
  models::CharTokenizer tok = models::CharTokenizer::from_text("abcdefghijklmnopqrst");
  save_generation(dir, model, tok, 1);
  std::ofstream(fs::path(dir) / "notes.txt") << "mine";
  fs::create_directories(fs::path(dir) / "plots");
  std::map<std::string, std::string> before = snapshot(tmp.path);
  try {
    save_generation(dir, model, tok, 2);
    ADD_FAILURE() << "saved over a directory holding the user's files";
  } catch (const Error& e) {
    std::string m = e.what();
    for (const char* want : {dir.c_str(), "holds files tapegrad did not write: notes.txt, plots/", "as a whole"})
      EXPECT_NE(m.find(want), std::string::npos) << want << " in: " << m;
  }
  EXPECT_EQ(snapshot(tmp.path), before);  // nothing written, moved or removed
  EXPECT_EQ(load_generation(dir), 1);
}

// The fault hook's state (set_file_fault_hook takes a plain function).
struct FaultPlan {
  int calls = 0;
  int fail_at = -1;                 // the step (0-based) that fails; -1: none
  bool no_exchange = false;         // the file system cannot exchange: take the rename fallback
  std::string drop_at;              // at this step, a file of the user's appears in `drop_into`
  fs::path drop_into;
  std::vector<std::string> steps;   // names of the steps seen
};
FaultPlan plan;

void fault_hook(const char* step) {
  const std::string name = step;
  if (name == "exchange: the file system cannot") {
    if (plan.no_exchange) throw std::runtime_error("injected");
    return;  // not a step of its own
  }
  if (name == plan.drop_at) std::ofstream(plan.drop_into / "appeared.txt") << "theirs";
  plan.steps.push_back(name);
  if (plan.calls++ == plan.fail_at) throw std::runtime_error("injected");
}

// Installs fault_hook for a scope: step `fail_at` fails; `drop_at`: a file appears in `drop_into`.
struct FaultHookGuard {
  explicit FaultHookGuard(int fail_at, bool no_exchange = false, std::string drop_at = "", fs::path drop_into = {}) {
    plan = FaultPlan();
    plan.fail_at = fail_at, plan.no_exchange = no_exchange;
    plan.drop_at = std::move(drop_at), plan.drop_into = std::move(drop_into);
    set_file_fault_hook(&fault_hook);
  }
  ~FaultHookGuard() { set_file_fault_hook(nullptr); }
};

// A save failing at each of its steps in turn (creating files, renaming them, creating, swapping
// and renaming directories, removing the old content), with and without RENAME_EXCHANGE, into an
// existing checkpoint and into none: the files beside the directory stay byte for byte, the
// directory holds the last good checkpoint (or, past the swap, the new one), and the next good save
// leaves no temporary directory behind.
TEST(CheckpointFaults, ASaveFailingAtAnyStepKeepsTheLastCheckpointAndTheFilesBesideIt) {
  TempDir tmp;
  const fs::path parent = tmp.path / "runs";
  const std::string dir = (parent / "ckpt").string();
  plant_siblings(parent);
  const std::map<std::string, std::string> siblings = snapshot(parent);
  Generator gen(0);
  models::GPT model(small_config(), gen);
  models::CharTokenizer tok = models::CharTokenizer::from_text("abcdefghijklmnopqrst");
  // What is beside the checkpoint directory, but for writers' leftovers (checked after the next save).
  auto beside = [&] {
    std::map<std::string, std::string> now = snapshot(parent);
    const std::vector<std::string> temporary = leftovers(parent);
    std::erase_if(now, [&](const auto& entry) {
      const std::string top = entry.first.substr(0, entry.first.find('/'));
      return top == "ckpt" || std::find(temporary.begin(), temporary.end(), top) != temporary.end();
    });
    return now;
  };
  struct Mode {
    bool no_exchange, fresh;
  };
  int64_t last = 0;
  for (Mode mode : {Mode{false, false}, Mode{true, false}, Mode{false, true}}) {
    auto start = [&] {
      if (mode.fresh) fs::remove_all(dir);  // a first save: no directory to replace
    };
    if (!mode.fresh) save_generation(dir, model, tok, ++last);
    int steps = 0;
    {
      FaultHookGuard hook(-1, mode.no_exchange);  // counts the steps of a good save
      start();
      save_generation(dir, model, tok, ++last);
      steps = plan.calls;
    }
    ASSERT_GE(steps, 6);
    for (int k = 0; k < steps; ++k) {
      start();
      std::string step = "?";
      bool failed = false;
      {
        FaultHookGuard hook(k, mode.no_exchange);
        try {
          save_generation(dir, model, tok, last + 1);
        } catch (const Error&) {
          failed = true;
        }
        if (plan.steps.size() > size_t(k)) step = plan.steps[size_t(k)];
      }
      SCOPED_TRACE(fmt::format("{}: fault at step {} ({})",
                               mode.fresh ? "first save" : mode.no_exchange ? "no exchange" : "exchange", k, step));
      EXPECT_EQ(beside(), siblings);
      if (!(mode.fresh && failed && !fs::exists(dir))) {  // else there was no checkpoint before, and none now
        int64_t loaded = -1;
        ASSERT_NO_THROW(loaded = load_generation(dir));
        EXPECT_TRUE(loaded == (failed ? last : last + 1) || (failed && loaded == last + 1)) << loaded;
        if (mode.fresh) {
          EXPECT_EQ(loaded, last + 1);
        }
        last = std::max(last, loaded);
      }
      save_generation(dir, model, tok, ++last);  // the next good save cleans up
      EXPECT_EQ(load_generation(dir), last);
      EXPECT_EQ(leftovers(parent), std::vector<std::string>());
      EXPECT_EQ(beside(), siblings);
    }
  }
}

// A file of the user's appearing in the directory during a save (after the save checked it): the
// swap is undone, the save fails naming the file, and the directory is as before with the file.
TEST(CheckpointFaults, AForeignFileAppearingDuringASaveUndoesIt) {
  for (bool no_exchange : {false, true}) {
    SCOPED_TRACE(no_exchange ? "no exchange" : "exchange");
    TempDir tmp;
    const std::string dir = tmp / "ckpt";
    Generator gen(0);
    models::GPT model(small_config(), gen);
    models::CharTokenizer tok = models::CharTokenizer::from_text("abcdefghijklmnopqrst");
    save_generation(dir, model, tok, 1);
    {
      FaultHookGuard hook(-1, no_exchange, no_exchange ? "rename the old directory aside" : "exchange the directories",
                          fs::path(dir));
      EXPECT_TG_ERROR(save_generation(dir, model, tok, 2), "appeared.txt appeared in");
    }
    EXPECT_EQ(read_file_bytes((fs::path(dir) / "appeared.txt").string()), "theirs");
    EXPECT_EQ(load_generation(dir), 1);
    EXPECT_EQ(leftovers(tmp.path), std::vector<std::string>());
  }
}

// A leftover of a dead writer holding something tapegrad did not write: its checkpoint files are
// removed, the rest (and so the folder) kept.
// The id of a process that has ended.
pid_t dead_pid() {
  pid_t pid = ::fork();
  if (pid == 0) ::_exit(0);
  ::waitpid(pid, nullptr, 0);
  return pid;
}

TEST(CheckpointFaults, ALeftoverHoldingOtherFilesIsKept) {
  TempDir tmp;
  const pid_t dead = dead_pid();
  const fs::path leftover = tmp.path / fmt::format(".ckpt.saving-{}", dead);
  fs::create_directories(leftover);
  std::ofstream(leftover / models::kConfigFile) << "{}";
  std::ofstream(leftover / "model.safetensors.tmp") << "half";
  std::ofstream(leftover / "mine.txt") << "mine";
  Generator gen(0);
  models::GPT model(small_config(), gen);
  save_generation(tmp / "ckpt", model, models::CharTokenizer::from_text("abcdefghijklmnopqrst"), 1);
  EXPECT_EQ(snapshot(leftover), (std::map<std::string, std::string>{{"mine.txt", "mine"}}));
  EXPECT_EQ(load_generation(tmp / "ckpt"), 1);
}

// A writer without RENAME_EXCHANGE killed between renaming the old directory aside and the new one
// in: the next save renames the previous checkpoint back first, even when that save then fails.
TEST(CheckpointFaults, AKilledFallbackWritersPreviousCheckpointIsRenamedBack) {
  TempDir tmp;
  const std::string dir = tmp / "ckpt";
  Generator gen(0);
  models::GPT model(small_config(), gen);
  models::CharTokenizer tok = models::CharTokenizer::from_text("abcdefghijklmnopqrst");
  save_generation(dir, model, tok, 1);
  fs::rename(dir, tmp.path / fmt::format(".ckpt.old-{}", dead_pid()));
  {
    FaultHookGuard hook(1);  // after the rename back: "create the new directory"
    EXPECT_TG_ERROR(save_generation(dir, model, tok, 2), "cannot create the directory");
    ASSERT_GE(plan.steps.size(), 2u);
    EXPECT_EQ(plan.steps[0], "rename a previous checkpoint back");
    EXPECT_EQ(plan.steps[1], "create the new directory");
  }
  EXPECT_EQ(load_generation(dir), 1);
  EXPECT_EQ(leftovers(tmp.path), std::vector<std::string>());
}

// A writer producing a name outside the checkpoint's own is a bug: std::logic_error, and nothing
// of the save is left.
TEST(CheckpointFaults, AWriterProducingAnotherNameIsABug) {
  TempDir tmp;
  const std::string dir = tmp / "ckpt";
  EXPECT_THROW(write_directory_atomically(dir, {"a.json"},
                                          [](const std::string& d) {
                                            write_file_atomically((fs::path(d) / "a.json").string(), "{}");
                                            write_file_atomically((fs::path(d) / "b.json").string(), "{}");
                                          }),
               std::logic_error);
  EXPECT_FALSE(fs::exists(dir));
}

// A checkpoint of the other kind (encoder in a GPT directory, GPT in an encoder directory) holds
// files the other does not write: the save is refused, naming them, and nothing is changed.
TEST(CheckpointFaults, ACheckpointOfTheOtherKindIsRefused) {
  TempDir tmp;
  models::EncoderConfig ec;
  ec.vocab_size = 17, ec.n_classes = 3, ec.max_len = 9, ec.n_layer = 1, ec.n_head = 2, ec.n_embd = 4, ec.ffn_dim = 6;
  models::EncoderClassifier encoder(ec);
  Generator gen(0);
  models::GPT gpt(small_config(), gen);
  models::CharTokenizer tok = models::CharTokenizer::from_text("abcdefghijklmnopqrst");
  const std::string enc_dir = tmp / "encoder", gpt_dir = tmp / "gpt";
  models::save_encoder(enc_dir, encoder, data::listops_vocab());
  save_generation(gpt_dir, gpt, tok, 1);
  std::map<std::string, std::string> before = snapshot(tmp.path);
  EXPECT_TG_ERROR(save_generation(enc_dir, gpt, tok, 2), "holds files tapegrad did not write: vocab.json");
  EXPECT_TG_ERROR(models::save_encoder(gpt_dir, encoder, data::listops_vocab()),
                  "holds files tapegrad did not write: tokenizer.json, train_state.json, training_state.safetensors");
  // Before training, as `gpt train --out` and `encoder train --out` check it.
  EXPECT_TG_ERROR(check_writable_dir(enc_dir, "--out", models::gpt_checkpoint_files()),
                  "--out: " + enc_dir + " holds files tapegrad did not write: vocab.json");
  EXPECT_TG_ERROR(check_writable_dir(gpt_dir, "--out", models::encoder_checkpoint_files()),
                  "--out: " + gpt_dir + " holds files tapegrad did not write: tokenizer.json");
  EXPECT_EQ(snapshot(tmp.path), before);
  EXPECT_NO_THROW(models::load_encoder(enc_dir));
  EXPECT_EQ(load_generation(gpt_dir), 1);
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

}  // namespace
}  // namespace tg
