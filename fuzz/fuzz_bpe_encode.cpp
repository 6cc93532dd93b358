// libFuzzer target: the byte-level BPE encoder itself, with GPT-2's real ranks (the committed
// fixture gpt2.tiktoken), on any bytes: invalid UTF-8, long runs, special tokens. Every byte
// string must encode and decode back to itself, byte for byte, both as Hugging Face encodes
// (special tokens split out) and as tiktoken's encode_ordinary.
#include <string>
#include <vector>

#include "models/tokenizers/bpe_tokenizer.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const tg::models::BpeTokenizer gpt2 =
      tg::models::BpeTokenizer::load(std::string(TAPEGRAD_SOURCE_DIR) + "/tests/models/fixtures/gpt2.tiktoken");
  const std::string text(reinterpret_cast<const char*>(data), size);
  if (gpt2.decode(gpt2.encode(text)) != text) std::abort();
  if (gpt2.decode(gpt2.encode_ordinary(text)) != text) std::abort();
  return 0;
}
