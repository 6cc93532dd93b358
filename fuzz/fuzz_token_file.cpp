// libFuzzer target: tg::data::read_tokens (nanoGPT's uint16 token files) on the input bytes.
#include "autograd/error.h"
#include "fuzz/fuzz_util.h"
#include "models/data/token_data.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  tg::fuzz::TempFile file(data, size);
  try {
    tg::data::read_tokens(file.path());
  } catch (const tg::Error&) {
  }
  return 0;
}
