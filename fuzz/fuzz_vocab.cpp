// libFuzzer target: tg::data::Vocab::from_json (an encoder checkpoint's vocab.json); a
// vocabulary that loads must also round-trip through its own to_json.
#include <cstdlib>
#include <string>

#include "autograd/error.h"
#include "models/tokenizers/vocab.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  try {
    auto vocab = tg::data::Vocab::from_json(std::string(reinterpret_cast<const char*>(data), size));
    if (tg::data::Vocab::from_json(vocab.to_json()).to_json() != vocab.to_json()) std::abort();
  } catch (const tg::Error&) {
  }
  return 0;
}
