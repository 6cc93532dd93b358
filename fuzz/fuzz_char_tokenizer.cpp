// libFuzzer target: tg::models::CharTokenizer::from_json (a checkpoint's tokenizer.json); a
// tokenizer that loads must also round-trip its own vocabulary.
#include <cstdlib>
#include <string>
#include <vector>

#include "autograd/error.h"
#include "models/tokenizers/char_tokenizer.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  try {
    auto tok = tg::models::CharTokenizer::from_json(std::string(reinterpret_cast<const char*>(data), size));
    std::vector<int64_t> ids;
    for (int64_t i = 0; i < tok.vocab_size(); ++i) ids.push_back(i);
    if (tok.encode(tok.decode(ids)) != ids) std::abort();
  } catch (const tg::Error&) {
  }
  return 0;
}
