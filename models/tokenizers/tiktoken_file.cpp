// tiktoken's .tiktoken rank files: one token a line, "<base64 bytes> <rank>", ranks 0..N-1 each
// once (in any order). The file holds no pattern and no special tokens: the pattern is given,
// and `<|endoftext|>` takes rank N, as tiktoken's gpt2/r50k encodings define it.
#include <algorithm>
#include <charconv>

#include "autograd/error.h"
#include "models/tokenizers/bpe_tokenizer.h"
#include "models/tokenizers/text_lines.h"
#include "nn/file_io.h"

namespace tg::models {
namespace {

// Standard base64 (with '=' padding); nullopt when `text` is not base64.
std::optional<std::string> base64_decode(std::string_view text) {
  auto value = [](char c) -> int {
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == '+') return 62;
    if (c == '/') return 63;
    return -1;
  };
  if (text.empty() || text.size() % 4 != 0) return std::nullopt;
  std::string out;
  for (size_t i = 0; i < text.size(); i += 4) {
    int v[4], pad = 0;
    for (int k = 0; k < 4; ++k) {
      const char c = text[i + k];
      if (c == '=' && i + 4 == text.size() && k >= 2) {
        v[k] = 0;
        ++pad;
      } else {
        if (pad > 0) return std::nullopt;  // data after '='
        v[k] = value(c);
        if (v[k] < 0) return std::nullopt;
      }
    }
    const uint32_t bits = (v[0] << 18) | (v[1] << 12) | (v[2] << 6) | v[3];
    out += char(bits >> 16);
    if (pad < 2) out += char((bits >> 8) & 0xFF);
    if (pad < 1) out += char(bits & 0xFF);
  }
  return out;
}

}  // namespace

BpeTokenizer BpeTokenizer::from_tiktoken(const std::string& text, const std::string& pattern, const std::string& source) {
  std::vector<std::string> tokens;
  std::vector<size_t> line_of;  // rank -> line, 0 when not seen yet
  // Ranks are 0..N-1 for N lines at most: a rank beyond the file's lines is refused before the
  // tables grow to it (a file's claim is never allocated unchecked).
  const int64_t lines = int64_t(std::count(text.begin(), text.end(), '\n')) + 1;
  for_each_line(text, [&](std::string_view row, size_t line) {
    if (row.empty()) return;
    const size_t space = row.find(' ');
    TG_CHECK(space != std::string_view::npos, "{}:{}: expected \"<base64 token> <rank>\", found no space", source, line);
    const std::optional<std::string> bytes = base64_decode(row.substr(0, space));
    TG_CHECK(bytes.has_value(), "{}:{}: the token '{}' is not base64", source, line, row.substr(0, space));
    const std::string_view rank_text = row.substr(space + 1);
    int64_t rank = -1;
    const auto [ptr, ec] = std::from_chars(rank_text.data(), rank_text.data() + rank_text.size(), rank);
    TG_CHECK(ec == std::errc() && ptr == rank_text.data() + rank_text.size() && rank >= 0 && rank < (int64_t(1) << 30),
             "{}:{}: the rank '{}' is not a number in [0, 2^30)", source, line, rank_text);
    TG_CHECK(rank < lines, "{}:{}: rank {} is beyond the file's {} lines (ranks must be 0..N-1 each once)", source,
             line, rank, lines);
    if (size_t(rank) >= tokens.size()) {
      tokens.resize(rank + 1);
      line_of.resize(rank + 1, 0);
    }
    TG_CHECK(line_of[rank] == 0, "{}:{}: rank {} appears twice (lines {} and {})", source, line, rank, line_of[rank], line);
    tokens[rank] = *bytes;
    line_of[rank] = line;
  });
  TG_CHECK(!tokens.empty(), "{}: no ranks in the file", source);
  for (size_t r = 0; r < tokens.size(); ++r)
    TG_CHECK(line_of[r] != 0, "{}: rank {} is missing (ranks must be 0..{} each once)", source, r, tokens.size() - 1);
  const int32_t eot = int32_t(tokens.size());
  BpeModel model = BpeModel::from_ranks(std::move(tokens), source);
  return BpeTokenizer(std::move(model), {pattern_named(pattern)}, false, {AddedToken{"<|endoftext|>", eot, true}},
                      source);
}

BpeTokenizer BpeTokenizer::load_tiktoken(const std::string& path, const std::string& pattern) {
  return from_tiktoken(read_file_bytes(path), pattern, path);
}

}  // namespace tg::models
