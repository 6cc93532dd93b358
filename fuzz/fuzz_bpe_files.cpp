// libFuzzer target: the byte-level BPE file readers (models/tokenizers/): a tokenizer.json
// (first byte even) or a .tiktoken rank file (odd) from the fuzzer's bytes. A tokenizer that
// loads must encode and decode a text that stresses its rules without anything but tg::Error,
// and give the text back when it encodes it at all.
#include <string>
#include <vector>

#include "autograd/error.h"
#include "models/tokenizers/bpe_tokenizer.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const std::string text(reinterpret_cast<const char*>(data) + 1, size - 1);
  try {
    const tg::models::BpeTokenizer t = data[0] % 2 == 0
                                           ? tg::models::BpeTokenizer::from_tokenizer_json(text, "fuzz.json")
                                           : tg::models::BpeTokenizer::from_tiktoken(text, "gpt2", "fuzz.tiktoken");
    const std::string sample = "Hello, world! It's 2026: 12345 tokens\n\n  \xc3\xa9t\xc3\xa9 \xe4\xb8\xad <|endoftext|>";
    for (bool ordinary : {false, true}) {
      std::vector<int32_t> ids;
      try {
        ids = ordinary ? t.encode_ordinary(sample) : t.encode(sample);
      } catch (const tg::Error&) {
        continue;  // a vocabulary without some byte's token cannot encode the sample
      }
      if (ordinary && t.decode(ids) != sample) std::abort();
    }
  } catch (const tg::Error&) {
  }
  return 0;
}
