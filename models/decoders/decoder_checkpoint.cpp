#include "models/decoders/decoder_checkpoint.h"

#include <filesystem>

#include "autograd/error.h"
#include "models/gpt/gpt.h"
#include "models/llama/llama_checkpoint.h"
#include "nn/file_io.h"

namespace tg::models {

std::string decoder_model_type(const std::string& dir) {
  const std::string path = (std::filesystem::path(dir) / kConfigFile).string();
  // The throwing form: a link loop or a permission error is named as such (the command reports it).
  TG_CHECK(std::filesystem::is_regular_file(path), "{} has no {} (not a checkpoint directory?)", dir, kConfigFile);
  return config_model_type(read_file_bytes(path), path);
}

LoadedDecoder load_decoder(const std::string& dir, const LoadDecoderOptions& options) {
  LoadedDecoder out;
  out.model_type = decoder_model_type(dir);
  if (out.model_type == "gpt2") {
    LoadGPTOptions o;
    o.dtype = options.dtype, o.attention = options.attention, o.dropout = options.dropout;
    out.model = load_gpt(dir, o).model;
  } else if (out.model_type == "llama" || out.model_type == "mistral" || out.model_type == "qwen2") {
    LoadLlamaOptions o;
    o.dtype = options.dtype, o.attention = options.attention, o.attention_dropout = options.dropout;
    out.model = load_llama(dir, o).model;
  } else {
    fail("{}/{}: model_type '{}' is not a decoder tapegrad has (gpt2, llama, mistral, qwen2)", dir, kConfigFile,
         out.model_type);
  }
  return out;
}

void save_decoder(const std::string& dir, const CausalLM& model, const GPTTokenizer* tokenizer,
                  const TrainingState* state, const std::string& llama_dtype) {
  if (const auto* gpt = dynamic_cast<const GPT*>(&model)) return save_checkpoint(dir, *gpt, tokenizer, state);
  const auto* llama = dynamic_cast<const Llama*>(&model);
  TG_CHECK(llama, "save_decoder: {}: a {} is not a decoder of the zoo", dir, model.type_name());
  save_llama(dir, *llama, tokenizer, state, llama_dtype);
}

}  // namespace tg::models
