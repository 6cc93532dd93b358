#pragma once
// Checkpoints of the Llama family: Hugging Face directories as transformers' save_pretrained
// writes them and from_pretrained reads them,
//   config.json                       LlamaConfig::to_json() (model_type llama, mistral or qwen2)
//   model.safetensors                 the parameters with transformers' names, F32 / BF16 / F16
//   (or model-0000K-of-0000N.safetensors + model.safetensors.index.json, read only)
// plus the files GPT checkpoints share (tokenizer.json or tokenizer.tiktoken, the training
// state; see gpt_checkpoint.h). Written as a whole directory swapped in.
#include <memory>
#include <optional>
#include <string>

#include "models/gpt/gpt_checkpoint.h"
#include "models/llama/llama.h"
#include "models/llama/llama_config.h"

namespace tg::models {

/// Every name a Llama checkpoint directory written by tapegrad may hold.
const OwnNames& llama_checkpoint_files();

/// Overrides applied to the stored config before the model is built.
struct LoadLlamaOptions {
  std::optional<DType> dtype;              ///< compute in this dtype (default: f32, or f64 for float64 files)
  std::optional<GPTAttention> attention;   ///< the full-attention layers' kernel
  std::optional<double> attention_dropout;
};

struct LoadedLlama {
  LlamaConfig config;
  std::shared_ptr<Llama> model;
};

/// dir/config.json alone; tg::Error naming the file.
LlamaConfig load_llama_config(const std::string& dir);
/// dir/config.json and the weights (model.safetensors or the shards of its index), converted to
/// the compute dtype. Ignores the rotary inv_freq buffers older files carry; a stored lm_head of a
/// tied model must equal embed_tokens. Errors name the file and list every missing, unexpected or
/// wrongly shaped tensor.
LoadedLlama load_llama(const std::string& dir, const LoadLlamaOptions& options = {});
/// The core of load_llama: copies transformers-named `tensors` into `model`.
void load_llama_weights(Llama& model, const nn::StateDict& tensors, const std::string& source);

/// Writes config.json (torch_dtype = `storage_dtype`) and model.safetensors in `storage_dtype`
/// ("float32", "bfloat16", "float16" or "float64"), the tokenizer's file when given, and the
/// training state when given, as one directory swapped in (see write_directory_atomically).
void save_llama(const std::string& dir, const Llama& model, const GPTTokenizer* tokenizer = nullptr,
                const TrainingState* state = nullptr, const std::string& storage_dtype = "float32");

}  // namespace tg::models
