#pragma once
// A byte-level BPE vocabulary and merges as the files write them (tokens shown through GPT-2's
// bytes-to-unicode map: vocab.json, merges.txt, tokenizer.json's model) made into a BpeModel.
#include <string>
#include <utility>
#include <vector>

#include "models/tokenizers/bpe_model.h"

namespace tg::models {

/// One merge as a file writes it; `where` names its place for errors ("merges.txt:7").
struct TextMerge {
  std::string left, right, where;
};

/// `vocab`: (token text, id) pairs, ids 0..N-1 each once. Errors (a token outside the byte map,
/// a missing or repeated id, a merge naming an absent token) name `source` and the place.
BpeModel byte_level_model(const std::vector<std::pair<std::string, int64_t>>& vocab, const std::vector<TextMerge>& merges,
                          bool ignore_merges, const std::string& source);

}  // namespace tg::models
