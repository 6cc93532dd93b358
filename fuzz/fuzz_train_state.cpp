// libFuzzer target: a checkpoint's train_state.json as `--resume` reads it
// (tg::models::adopt_resumed_options), beside a valid config.json.
#include <filesystem>
#include <fstream>
#include <string>

#include "autograd/error.h"
#include "fuzz/fuzz_util.h"
#include "models/gpt/gpt_checkpoint.h"
#include "models/training/gpt_train.h"

namespace fs = std::filesystem;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const fs::path dir = [] {
    const char* tmp = std::getenv("TMPDIR");
    fs::path d = fs::path(tmp && *tmp ? tmp : "/tmp") / ("tapegrad-fuzz-resume-" + std::to_string(getpid()));
    fs::create_directories(d);
    std::ofstream(d / "config.json") << R"({"model_type": "gpt2", "vocab_size": 5, "n_positions": 8, "n_embd": 4,
      "n_layer": 1, "n_head": 2, "layer_norm_epsilon": 1e-5, "activation_function": "gelu_new"})";
    return d;
  }();
  {
    std::ofstream f(dir / tg::models::kTrainingJsonFile, std::ios::binary | std::ios::trunc);
    f.write(reinterpret_cast<const char*>(data), std::streamsize(size));
  }
  tg::models::GPTTrainOptions o;
  o.resume = dir.string();
  try {
    tg::models::adopt_resumed_options(o, [](const std::string&) { return false; });
  } catch (const tg::Error&) {
  }
  return 0;
}
