#pragma once
// Any decoder checkpoint of the zoo, whichever its family, chosen by config.json's model_type:
// "gpt2" (models/gpt/gpt_checkpoint.h) or "llama", "mistral", "qwen2" (models/llama/llama_checkpoint.h).
// What evaluation, sampling and fine-tuning (init_from) load, and what training writes back.
#include <memory>
#include <optional>
#include <string>

#include "models/decoders/causal_lm.h"
#include "models/gpt/gpt_checkpoint.h"

namespace tg::models {

struct LoadDecoderOptions {
  std::optional<DType> dtype;            ///< compute in this dtype
  std::optional<GPTAttention> attention;  ///< the attention kernel
  std::optional<double> dropout;          ///< GPT-2: every dropout; Llama: attention_dropout
};

struct LoadedDecoder {
  std::string model_type;  ///< config.json's: "gpt2", "llama", "mistral" or "qwen2"
  std::shared_ptr<CausalLM> model;
};

/// config.json's model_type ("gpt2" when it has none); tg::Error naming the file when the
/// directory has no config.json or it is not a JSON object.
std::string decoder_model_type(const std::string& dir);
/// Reads the checkpoint with its family's loader (load_gpt or load_llama); a model_type of
/// neither is refused naming the file and the field.
LoadedDecoder load_decoder(const std::string& dir, const LoadDecoderOptions& options = {});
/// Writes `model` with its family's writer (save_checkpoint or save_llama: a Llama in
/// `llama_dtype`, "float32" by default).
void save_decoder(const std::string& dir, const CausalLM& model, const GPTTokenizer* tokenizer = nullptr,
                  const TrainingState* state = nullptr, const std::string& llama_dtype = "float32");

}  // namespace tg::models
