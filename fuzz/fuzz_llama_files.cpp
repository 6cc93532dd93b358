// libFuzzer target: the Llama family's JSON files: tg::models::LlamaConfig::from_json (a
// checkpoint's config.json, both transformers versions' spellings) and parse_weight_map (a
// sharded checkpoint's model.safetensors.index.json). The same input goes to both.
#include <string>

#include "autograd/error.h"
#include "models/hf/hf_weights.h"
#include "models/llama/llama_config.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  try {
    tg::models::LlamaConfig::from_json(text);
  } catch (const tg::Error&) {
  }
  try {
    tg::models::parse_weight_map(text, "model.safetensors.index.json");
  } catch (const tg::Error&) {
  }
  return 0;
}
