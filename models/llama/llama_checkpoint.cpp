#include "models/llama/llama_checkpoint.h"

#include <filesystem>
#include <regex>

#include "autograd/error.h"
#include "models/hf/hf_weights.h"
#include "models/training/memory_estimate.h"
#include "models/training/parameter_count.h"
#include "nn/file_io.h"
#include "nn/safetensors.h"

namespace tg::models {
namespace fs = std::filesystem;
namespace {

// Older transformers saved the rotary frequencies as buffers: model.layers.N.self_attn.rotary_emb.inv_freq.
bool is_rotary_buffer(const std::string& name) {
  static const std::regex re(R"((model\.)?(layers\.\d+\.self_attn\.)?rotary_emb\.inv_freq)");
  return std::regex_match(name, re);
}

const char* safetensors_dtype(const std::string& storage_dtype) {
  if (storage_dtype == "bfloat16") return "BF16";
  if (storage_dtype == "float16") return "F16";
  if (storage_dtype == "float64") return "F64";
  TG_CHECK(storage_dtype == "float32", "save_llama: dtype '{}' is not float32, bfloat16, float16 or float64",
           storage_dtype);
  return "F32";
}

}  // namespace

const OwnNames& llama_checkpoint_files() {
  static const OwnNames names{kConfigFile,   kModelFile,           kTokenizerFile,
                              kTiktokenFile, kTrainingTensorsFile, kTrainingJsonFile};
  return names;
}

LlamaConfig load_llama_config(const std::string& dir) {
  const std::string path = path_in(dir, kConfigFile);
  TG_CHECK(fs::is_regular_file(path), "load_llama: {} has no {} (not a model directory?)", dir, kConfigFile);
  return LlamaConfig::from_json(read_file_bytes(path), path);
}

void load_llama_weights(Llama& model, const nn::StateDict& tensors, const std::string& source) {
  std::map<std::string, Tensor> mapped;
  Tensor lm_head;
  for (const auto& [name, t] : tensors) {
    if (is_rotary_buffer(name)) continue;
    if (name == "lm_head.weight" && model.config.tie_word_embeddings) {
      lm_head = t;
      continue;
    }
    mapped[name] = t;
  }
  copy_weights(model, mapped, {}, "load_llama", source, [&] {
    check_tied_head(lm_head, mapped.at("model.embed_tokens.weight"), "load_llama", source, "lm_head.weight",
                    "model.embed_tokens.weight");
  });
}

LoadedLlama load_llama(const std::string& dir, const LoadLlamaOptions& options) {
  LoadedLlama out;
  out.config = load_llama_config(dir);
  if (options.dtype) out.config.dtype = *options.dtype;
  if (options.attention) out.config.attention = *options.attention;
  if (options.attention_dropout) out.config.attention_dropout = *options.attention_dropout;
  out.config.validate();
  const HFWeightFiles files = find_hf_weights(dir);
  // What config.json claims is checked against the weights and memory before it is built.
  check_checkpoint_fits(llama_parameter_count(out.config), int64_t(element_size(out.config.dtype)),
                        path_in(dir, kConfigFile), files.source(), files.total_bytes());
  nn::StateDict tensors = load_hf_weights(files);
  Generator gen(0);  // the start is overwritten by the file's values
  out.model = std::make_shared<Llama>(out.config, gen);
  load_llama_weights(*out.model, tensors, files.source());
  return out;
}

void save_llama(const std::string& dir, const Llama& model, const GPTTokenizer* tokenizer, const TrainingState* state,
                const std::string& storage_dtype) {
  const std::string tokenizer_bytes = tokenizer ? tokenizer->file_bytes() : std::string();
  try {
    const char* dtype = safetensors_dtype(storage_dtype);
    LlamaConfig config = model.config;
    config.storage_dtype = storage_dtype;
    write_directory_atomically(dir, llama_checkpoint_files(), [&](const std::string& tmp) {
      // {"format": "pt"}: what transformers' loader expects in the safetensors metadata.
      nn::save_safetensors(path_in(tmp, kModelFile), model.state_dict(), {{"format", "pt"}}, dtype);
      write_file_atomically(path_in(tmp, kConfigFile), config.to_json());
      if (tokenizer) write_file_atomically(path_in(tmp, tokenizer->file_name()), tokenizer_bytes);
      if (state) save_training_state(tmp, state->tensors, state->json);
    });
  } catch (const Error& e) {
    fail("save_llama: {}: {}", dir, e.what());
  }
}

}  // namespace tg::models
