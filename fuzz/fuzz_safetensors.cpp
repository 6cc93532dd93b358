// libFuzzer target: tg::nn::load_safetensors on a file holding the input bytes.
#include "autograd/error.h"
#include "fuzz/fuzz_util.h"
#include "nn/safetensors.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  tg::fuzz::TempFile file(data, size);
  try {
    tg::nn::Metadata metadata;
    tg::nn::load_safetensors(file.path(), &metadata);
  } catch (const tg::Error&) {
  }
  return 0;
}
