// GPT-2's original files: vocab.json ({"token": id, ...}, tokens in byte-level text) and
// merges.txt (an optional "#version" line, then "left right" per line, in rank order).
#include <nlohmann/json.hpp>

#include "autograd/error.h"
#include "models/tokenizers/bpe_tokenizer.h"
#include "models/tokenizers/byte_level_vocab.h"
#include "models/tokenizers/text_lines.h"
#include "nn/file_io.h"

namespace tg::models {

BpeTokenizer BpeTokenizer::load_gpt2_files(const std::string& vocab_path, const std::string& merges_path) {
  using json = nlohmann::json;
  const json j = json::parse(read_file_bytes(vocab_path), nullptr, /*allow_exceptions=*/false);
  TG_CHECK(!j.is_discarded(), "{}: not valid JSON", vocab_path);
  TG_CHECK(j.is_object(), "{}: expected a JSON object {{\"token\": id, ...}}", vocab_path);
  std::vector<std::pair<std::string, int64_t>> vocab;
  vocab.reserve(j.size());
  for (const auto& [token, id] : j.items()) {
    TG_CHECK(id.is_number_integer(), "{}: the id of token '{}' is not an integer: {}", vocab_path, token, id.dump());
    vocab.emplace_back(token, id.get<int64_t>());
  }

  const std::string text = read_file_bytes(merges_path);
  std::vector<TextMerge> merges;
  for_each_line(text, [&](std::string_view row, size_t line) {
    if (row.empty() || (line == 1 && row.starts_with("#version"))) return;
    const size_t space = row.find(' ');
    TG_CHECK(space != std::string_view::npos && space > 0 && space + 1 < row.size() &&
                 row.find(' ', space + 1) == std::string_view::npos,
             "{}:{}: expected \"left right\" (two tokens and one space), found '{}'", merges_path, line, row);
    merges.push_back(TextMerge{std::string(row.substr(0, space)), std::string(row.substr(space + 1)),
                               fmt::format("{}:{}", merges_path, line)});
  });
  BpeModel model = byte_level_model(vocab, merges, false, vocab_path);
  std::vector<AddedToken> added;
  if (std::optional<int32_t> eot = model.id_of("<|endoftext|>")) added.push_back(AddedToken{"<|endoftext|>", *eot, true});
  return BpeTokenizer(std::move(model), {kHfByteLevelPattern}, false, std::move(added), vocab_path);
}

}  // namespace tg::models
