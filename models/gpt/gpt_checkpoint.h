#pragma once
// GPT checkpoints: a directory in Hugging Face's GPT-2 layout, readable by other tools,
//   config.json                  GPTConfig::to_json() (model_type "gpt2", ...)
//   model.safetensors            the parameters with GPT-2's names (wte.weight, h.0.attn.c_attn.weight, ...)
// plus tapegrad's own files:
//   tokenizer.json               the tokenizer: characters (CharTokenizer::to_json()) or a BPE's
//                                Hugging Face tokenizer.json (see gpt_tokenizer.h)
//   tokenizer.tiktoken           or the tokenizer as a tiktoken rank file
//   training_state.safetensors   optimizer moments and whatever tensors the training loop keeps
//   train_state.json             step, generator state, options: JSON chosen by the training loop
// Every file is written to a temporary name and renamed into place.
#include <memory>
#include <optional>
#include <string>

#include "models/gpt/gpt.h"
#include "models/gpt/gpt_config.h"
#include "models/tokenizers/gpt_tokenizer.h"
#include "nn/file_io.h"
#include "nn/module.h"

namespace tg::models {

inline constexpr const char* kConfigFile = "config.json";
inline constexpr const char* kModelFile = "model.safetensors";
inline constexpr const char* kTrainingTensorsFile = "training_state.safetensors";
inline constexpr const char* kTrainingJsonFile = "train_state.json";

/// Every name a GPT checkpoint directory may hold (the six above): save_checkpoint refuses a
/// directory holding anything else (see write_directory_atomically).
const OwnNames& gpt_checkpoint_files();

/// What a training loop needs to resume: tensors (e.g. prefixed "optimizer." from
/// Optimizer::state_dict()) and a JSON object as text (e.g. {"step": 1200, "seed": 1, ...}).
struct TrainingState {
  nn::StateDict tensors;
  std::string json = "{}";
};

/// Creates `dir` if needed and writes config.json and model.safetensors, the tokenizer's file
/// (tokenizer.json or tokenizer.tiktoken) when `tokenizer` is given, and the training state when `state` is given, as a whole directory
/// swapped in: tg::Error, before anything is written, when `dir` holds files other than
/// gpt_checkpoint_files() (e.g. an encoder checkpoint's vocab.json).
void save_checkpoint(const std::string& dir, const GPT& model, const GPTTokenizer* tokenizer = nullptr,
                     const TrainingState* state = nullptr);
/// The same with a character tokenizer.
void save_checkpoint(const std::string& dir, const GPT& model, const CharTokenizer* tokenizer,
                     const TrainingState* state = nullptr);

/// Overrides applied to the stored config before the model is built.
struct LoadGPTOptions {
  std::optional<DType> dtype;             ///< compute in this dtype (the file's values are converted)
  /// e.g. fine-tune a dense checkpoint with flash; required for a checkpoint trained with a custom
  /// pattern (config.json keeps only its name): GPTAttention::from_pattern(the same pattern)
  std::optional<GPTAttention> attention;
  std::optional<double> dropout;          ///< Hugging Face's configs say 0.1
};

struct LoadedGPT {
  GPTConfig config;
  std::shared_ptr<GPT> model;
};

/// Reads dir/config.json and dir/model.safetensors (bare names or prefixed "transformer.";
/// attn.bias / attn.masked_bias buffers ignored; lm_head.weight, if present, must equal wte.weight;
/// F16, BF16, F32, F64 converted to the model's dtype). Errors name the file and list every
/// missing, unexpected or wrongly shaped tensor.
LoadedGPT load_gpt(const std::string& dir, const LoadGPTOptions& options = {});
/// dir/config.json alone.
GPTConfig load_gpt_config(const std::string& dir);
/// The core of load_gpt: copies GPT-2-named `tensors` into `model`; `source` names the file in
/// errors.
void load_gpt_weights(GPT& model, const nn::StateDict& tensors, const std::string& source);

/// The checkpoint's own tokenizer (GPTTokenizer::from_checkpoint), or `given` (e.g. the `tokenizer` option)
/// when it has none, or nothing. Both, and `given` encodes differently: tg::Error naming both
/// (the checkpoint's own vocabulary is what its model was trained on; no silent choice). With
/// `model_vocab_size` > 0, a tokenizer whose vocabulary is not the model's embedding rows is
/// refused, naming both files (no padding: every id of the model is a token of the tokenizer).
std::optional<GPTTokenizer> load_tokenizer(const std::string& dir, int64_t model_vocab_size = 0,
                                           const GPTTokenizer* given = nullptr);
/// GPTTokenizer::load(path) for a `tokenizer` option (errors start with "`tokenizer`: "), or
/// nothing when `path` is empty.
std::optional<GPTTokenizer> load_tokenizer_option(const std::string& path);

/// Writes dir/training_state.safetensors and dir/train_state.json (`json` must be a JSON object).
void save_training_state(const std::string& dir, const nn::StateDict& tensors, const std::string& json);
/// True when both training-state files are in `dir`.
bool has_training_state(const std::string& dir);
/// Reads what save_training_state wrote; tg::Error naming the missing or broken file.
TrainingState load_training_state(const std::string& dir);

}  // namespace tg::models
