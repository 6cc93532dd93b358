// libFuzzer target: tg::models::GPTConfig::from_json (a checkpoint's config.json).
#include <string>

#include "autograd/error.h"
#include "models/gpt/gpt_config.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  try {
    tg::models::GPTConfig::from_json(std::string(reinterpret_cast<const char*>(data), size));
  } catch (const tg::Error&) {
  }
  return 0;
}
