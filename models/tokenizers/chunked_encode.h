#pragma once
// Encoding a large text on several threads: the text is cut into chunks of about 1 MB at places
// where every known pre-tokenization pattern (gpt2 as tiktoken and HF write it, cl100k, o200k)
// ends a piece — after a '\n' between a printable ASCII character and an ASCII letter — and
// outside any occurrence of an added token, so the ids are those of encoding the whole text at
// once. With another pattern, or add_prefix_space, the text is one chunk (one thread).
#include <cstdint>
#include <functional>
#include <string_view>
#include <vector>

#include "models/tokenizers/bpe_tokenizer.h"

namespace tg::models {

/// `tokenizer.encode(text)` (or encode_ordinary with `ordinary`) on `threads` threads (>= 1).
/// `progress(done_bytes, total_bytes)` is called from one thread at a time as chunks finish.
/// `chunk_bytes`: the least size of a chunk (tests make it small to cut often).
std::vector<int32_t> encode_in_chunks(const BpeTokenizer& tokenizer, std::string_view text, bool ordinary, int threads,
                                      const std::function<void(size_t, size_t)>& progress = {},
                                      size_t chunk_bytes = size_t(1) << 20);

}  // namespace tg::models
