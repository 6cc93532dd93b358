// libFuzzer target: tg::models::EncoderConfig::from_json (an encoder checkpoint's config.json).
#include <string>

#include "autograd/error.h"
#include "models/encoder/encoder_config.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  try {
    tg::models::EncoderConfig::from_json(std::string(reinterpret_cast<const char*>(data), size));
  } catch (const tg::Error&) {
  }
  return 0;
}
