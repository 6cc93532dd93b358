#include "models/gpt/gpt_checkpoint.h"

#include <nlohmann/json.hpp>

#include <cstring>
#include <filesystem>
#include <map>
#include <regex>
#include <vector>

#include "autograd/error.h"
#include "autograd/tape.h"
#include "models/hf/hf_weights.h"
#include "models/training/memory_estimate.h"
#include "models/training/parameter_count.h"
#include "nn/file_io.h"
#include "nn/safetensors.h"

namespace tg::models {
namespace fs = std::filesystem;
namespace {

void make_dir(const std::string& dir, const char* op) {
  std::error_code ec;
  fs::create_directories(dir, ec);
  TG_CHECK(!ec, "{}: cannot create directory {}: {}", op, dir, ec.message());
}

// Hugging Face's GPT-2 keeps the causal mask as buffers h.N.attn.bias and h.N.attn.masked_bias.
bool is_mask_buffer(const std::string& name) {
  static const std::regex re(R"(h\.\d+\.attn\.(bias|masked_bias))");
  return std::regex_match(name, re);
}

std::string list(const std::vector<std::string>& names) {
  return names.empty() ? "none" : fmt::format("{}", fmt::join(names, ", "));
}

}  // namespace

const OwnNames& gpt_checkpoint_files() {
  static const OwnNames names{kConfigFile,   kModelFile,           kTokenizerFile,
                              kTiktokenFile, kTrainingTensorsFile, kTrainingJsonFile};
  return names;
}

void save_checkpoint(const std::string& dir, const GPT& model, const CharTokenizer* tokenizer,
                     const TrainingState* state) {
  const std::optional<GPTTokenizer> t = tokenizer ? std::optional<GPTTokenizer>(*tokenizer) : std::nullopt;
  save_checkpoint(dir, model, t ? &*t : nullptr, state);
}

void save_checkpoint(const std::string& dir, const GPT& model, const GPTTokenizer* tokenizer,
                     const TrainingState* state) {
  const std::string tokenizer_bytes = tokenizer ? tokenizer->file_bytes() : std::string();
  // All files into a new directory swapped in at once: a kill at any moment leaves the previous
  // checkpoint or this one, never config.json of one and model.safetensors of the other.
  try {
    write_directory_atomically(dir, gpt_checkpoint_files(), [&](const std::string& tmp) {
      // {"format": "pt"}: what Hugging Face's loader expects in the safetensors metadata.
      nn::save_safetensors(path_in(tmp, kModelFile), model.state_dict(), {{"format", "pt"}});
      write_file_atomically(path_in(tmp, kConfigFile), model.config.to_json());
      if (tokenizer) write_file_atomically(path_in(tmp, tokenizer->file_name()), tokenizer_bytes);
      if (state) save_training_state(tmp, state->tensors, state->json);
    });
  } catch (const Error& e) {
    fail("save_checkpoint: {}: {}", dir, e.what());
  }
}

GPTConfig load_gpt_config(const std::string& dir) {
  const std::string path = path_in(dir, kConfigFile);
  TG_CHECK(fs::is_regular_file(path), "load_gpt: {} has no {} (not a GPT checkpoint directory?)", dir,
           kConfigFile);
  GPTConfig config = GPTConfig::from_json(read_file_bytes(path), path);
  try {
    config.validate();
  } catch (const Error& e) {
    fail("load_gpt: {}: {}", path, e.what());
  }
  return config;
}

void load_gpt_weights(GPT& model, const nn::StateDict& tensors, const std::string& source) {
  // File names -> GPT-2 names: strip "transformer.", set aside the buffers and the tied head.
  std::map<std::string, Tensor> mapped;
  std::map<std::string, std::string> origin;
  Tensor lm_head;
  std::vector<std::string> duplicated;
  for (const auto& [file_name, t] : tensors) {
    std::string name = file_name.starts_with("transformer.") ? file_name.substr(12) : file_name;
    if (name == "lm_head.weight") {
      lm_head = t;
      continue;
    }
    if (is_mask_buffer(name)) continue;
    if (mapped.count(name)) duplicated.push_back(fmt::format("{} and {}", origin[name], file_name));
    mapped[name] = t;
    origin[name] = file_name;
  }
  TG_CHECK(duplicated.empty(), "load_gpt: {}: tensors given twice: {}", source, list(duplicated));

  copy_weights(model, mapped, origin, "load_gpt", source, [&] {
    check_tied_head(lm_head, mapped.at("wte.weight"), "load_gpt", source, "lm_head.weight", "wte.weight");
  });
}

LoadedGPT load_gpt(const std::string& dir, const LoadGPTOptions& options) {
  LoadedGPT out;
  out.config = load_gpt_config(dir);
  if (options.dtype) out.config.dtype = *options.dtype;
  if (options.attention) out.config.attention = *options.attention;
  if (options.dropout) out.config.dropout = *options.dropout;
  out.config.validate();
  TG_CHECK(!out.config.attention.missing_custom_pattern(),
           "load_gpt: {}/{} names the attention pattern '{}', written in C++ by the program that trained it; "
           "config.json cannot hold it: load the checkpoint from C++ giving it again (LoadGPTOptions::attention)",
           dir, kConfigFile, out.config.attention.flex);
  const std::string path = path_in(dir, kModelFile);
  TG_CHECK(fs::is_regular_file(path), "load_gpt: {} has no {}", dir, kModelFile);
  // What config.json claims is checked against the weights file and memory before it is built.
  check_checkpoint_fits(gpt_parameter_count(out.config), int64_t(element_size(out.config.dtype)),
                        path_in(dir, kConfigFile), path);
  nn::StateDict tensors = nn::load_safetensors(path);
  Generator gen(0);  // the start is overwritten by the file's values
  out.model = std::make_shared<GPT>(out.config, gen);
  load_gpt_weights(*out.model, tensors, path);
  return out;
}

std::optional<GPTTokenizer> load_tokenizer(const std::string& dir, int64_t model_vocab_size,
                                           const GPTTokenizer* given) {
  std::optional<GPTTokenizer> tok = GPTTokenizer::from_checkpoint(dir);
  if (tok && given)
    TG_CHECK(tok->same_as(*given),
             "`tokenizer` {} differs from the checkpoint's own tokenizer {} ({} and {} tokens); the model was trained on "
             "its own: leave `tokenizer` out",
             given->source(), tok->source(), given->vocab_size(), tok->vocab_size());
  if (!tok && given) tok = *given;
  TG_CHECK(!tok || model_vocab_size <= 0 || tok->vocab_size() == model_vocab_size,
           "{} has {} tokens, but the model's embedding has {} rows (vocab_size in {}): the tokenizer does not "
           "belong to this model",
           tok->source(), tok->vocab_size(), model_vocab_size, path_in(dir, kConfigFile));
  return tok;
}

std::optional<GPTTokenizer> load_tokenizer_option(const std::string& path) {
  if (path.empty()) return std::nullopt;
  try {
    return GPTTokenizer::load(path);
  } catch (const Error& e) {
    fail("`tokenizer`: {}", e.what());
  }
}

void save_training_state(const std::string& dir, const nn::StateDict& tensors, const std::string& json) {
  nlohmann::json j = nlohmann::json::parse(json, nullptr, /*allow_exceptions=*/false);
  TG_CHECK(!j.is_discarded() && j.is_object(), "save_training_state: the training state JSON is not an object: {}",
           json.substr(0, 200));
  make_dir(dir, "save_training_state");
  nn::save_safetensors(path_in(dir, kTrainingTensorsFile), tensors);
  write_file_atomically(path_in(dir, kTrainingJsonFile), j.dump(2) + "\n");
}

bool has_training_state(const std::string& dir) {
  return fs::is_regular_file(path_in(dir, kTrainingTensorsFile)) && fs::is_regular_file(path_in(dir, kTrainingJsonFile));
}

TrainingState load_training_state(const std::string& dir) {
  const std::string tensors_path = path_in(dir, kTrainingTensorsFile), json_path = path_in(dir, kTrainingJsonFile);
  for (const std::string& p : {tensors_path, json_path})
    TG_CHECK(fs::is_regular_file(p), "load_training_state: {} is missing (no training state to resume from)", p);
  TrainingState s;
  s.tensors = nn::load_safetensors(tensors_path);
  s.json = read_file_bytes(json_path);
  nlohmann::json j = nlohmann::json::parse(s.json, nullptr, /*allow_exceptions=*/false);
  TG_CHECK(!j.is_discarded(), "load_training_state: {} is not valid JSON (truncated or corrupted?)", json_path);
  TG_CHECK(j.is_object(), "load_training_state: {} is not a JSON object", json_path);
  return s;
}

}  // namespace tg::models
