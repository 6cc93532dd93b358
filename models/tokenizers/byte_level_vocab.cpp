#include "models/tokenizers/byte_level_vocab.h"

#include <unordered_map>

#include "autograd/error.h"
#include "models/tokenizers/byte_level.h"

namespace tg::models {

BpeModel byte_level_model(const std::vector<std::pair<std::string, int64_t>>& vocab, const std::vector<TextMerge>& merges,
                          bool ignore_merges, const std::string& source) {
  const int64_t n = int64_t(vocab.size());
  std::vector<std::string> tokens(n);
  std::vector<char> seen(n, 0);
  std::unordered_map<std::string, int32_t> id_of_text;
  id_of_text.reserve(n);
  for (const auto& [text, id] : vocab) {
    TG_CHECK(id >= 0 && id < n, "{}: token '{}' has id {}, outside [0, {}) (ids must be 0..{} each once)", source, text,
             id, n, n - 1);
    TG_CHECK(!seen[id], "{}: id {} is given to two tokens (one is '{}')", source, id, text);
    std::optional<std::string> bytes = unicode_to_bytes(text);
    TG_CHECK(bytes.has_value() && !bytes->empty(),
             "{}: token '{}' (id {}) is not byte-level text (a code point outside GPT-2's bytes-to-unicode map)", source,
             text, id);
    tokens[id] = std::move(*bytes);
    seen[id] = 1;
    id_of_text.emplace(text, int32_t(id));
  }
  std::vector<std::pair<int32_t, int32_t>> pairs;
  pairs.reserve(merges.size());
  for (const TextMerge& m : merges) {
    auto a = id_of_text.find(m.left), b = id_of_text.find(m.right);
    TG_CHECK(a != id_of_text.end(), "{}: the merge \"{} {}\" names '{}', which is not in the vocabulary", m.where, m.left,
             m.right, m.left);
    TG_CHECK(b != id_of_text.end(), "{}: the merge \"{} {}\" names '{}', which is not in the vocabulary", m.where, m.left,
             m.right, m.right);
    TG_CHECK(id_of_text.count(m.left + m.right), "{}: the merge \"{} {}\" makes '{}{}', which is not in the vocabulary",
             m.where, m.left, m.right, m.left, m.right);
    pairs.emplace_back(a->second, b->second);
  }
  return BpeModel::from_merges(std::move(tokens), pairs, ignore_merges, source);
}

}  // namespace tg::models
