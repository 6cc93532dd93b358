#include "models/tokenizers/pretokenizer.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include "autograd/error.h"

namespace tg::models {

const char* const kGpt2Pattern =
    R"('(?:[sdmt]|ll|ve|re)| ?\p{L}++| ?\p{N}++| ?[^\s\p{L}\p{N}]++|\s++$|\s+(?!\S)|\s)";
const char* const kHfByteLevelPattern =
    R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+)";
const char* const kCl100kPattern =
    R"('(?i:[sdmt]|ll|ve|re)|[^\r\n\p{L}\p{N}]?+\p{L}++|\p{N}{1,3}+| ?[^\s\p{L}\p{N}]++[\r\n]*+|\s++$|\s*[\r\n]|\s+(?!\S)|\s)";
const char* const kO200kPattern =
    R"([^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+(?i:'s|'t|'re|'ve|'m|'ll|'d)?)"
    R"(|[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*(?i:'s|'t|'re|'ve|'m|'ll|'d)?)"
    R"(|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n/]*|\s*[\r\n]+|\s+(?!\S)|\s+)";

std::string pattern_named(const std::string& name_or_regex) {
  if (name_or_regex == "gpt2") return kGpt2Pattern;
  if (name_or_regex == "cl100k") return kCl100kPattern;
  if (name_or_regex == "o200k") return kO200kPattern;
  return name_or_regex;
}

size_t find_interval_plus(std::string_view pattern) {
  for (size_t close = pattern.find("}+"); close != std::string_view::npos; close = pattern.find("}+", close + 1)) {
    // Back over "{digits[,digits]" to an unescaped '{'.
    size_t at = close;
    bool digits = false, comma = false;
    while (at > 0) {
      const char c = pattern[at - 1];
      if (c >= '0' && c <= '9') {
        digits = true;
      } else if (c == ',' && !comma) {
        comma = true;
      } else {
        break;
      }
      --at;
    }
    if (digits && at > 0 && pattern[at - 1] == '{' && pattern[at] != ',' && (at < 2 || pattern[at - 2] != '\\'))
      return close + 1;
  }
  return std::string_view::npos;
}

std::string without_interval_plus(std::string pattern) {
  for (size_t at = find_interval_plus(pattern); at != std::string::npos; at = find_interval_plus(pattern))
    pattern.erase(at, 1);
  return pattern;
}

struct Pretokenizer::Compiled {
  pcre2_code* code = nullptr;
  ~Compiled() { pcre2_code_free(code); }
};

Pretokenizer::Pretokenizer(std::string pattern, const std::string& source)
    : pattern_(std::move(pattern)), compiled_(std::make_unique<Compiled>()) {
  int error = 0;
  PCRE2_SIZE offset = 0;
  // MATCH_INVALID_UTF: text need not be valid UTF-8; invalid bytes never match, so split()
  // hands them on as stretches between matches (and decode gives them back unchanged).
  const uint32_t options = PCRE2_UTF | PCRE2_UCP | PCRE2_MATCH_INVALID_UTF | PCRE2_DOLLAR_ENDONLY;
  compiled_->code = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(pattern_.data()), pattern_.size(), options, &error,
                                  &offset, nullptr);
  if (compiled_->code == nullptr) {
    PCRE2_UCHAR message[256];
    pcre2_get_error_message(error, message, sizeof message);
    fail("{}: the regex does not compile at offset {}: {} (regex: {})", source, size_t(offset),
         reinterpret_cast<const char*>(message), pattern_);
  }
  // Without JIT (unsupported CPU) PCRE2's interpreter runs instead: slower, same pieces.
  pcre2_jit_compile(compiled_->code, PCRE2_JIT_COMPLETE);
}

Pretokenizer::~Pretokenizer() = default;
Pretokenizer::Pretokenizer(Pretokenizer&&) noexcept = default;
Pretokenizer& Pretokenizer::operator=(Pretokenizer&&) noexcept = default;

void Pretokenizer::split(std::string_view text, std::vector<std::string_view>& pieces) const {
  if (text.empty()) return;
  struct MatchData {
    pcre2_match_data* p;
    explicit MatchData(const pcre2_code* code) : p(pcre2_match_data_create_from_pattern(code, nullptr)) {}
    ~MatchData() { pcre2_match_data_free(p); }
  } match(compiled_->code);
  TG_CHECK(match.p != nullptr, "pre-tokenizer: out of memory for PCRE2 match data");
  const auto* subject = reinterpret_cast<PCRE2_SPTR>(text.data());
  size_t at = 0;      // where the next search starts
  size_t covered = 0; // bytes handed out so far
  while (at < text.size()) {
    const int rc = pcre2_match(compiled_->code, subject, text.size(), at, 0, match.p, nullptr);
    if (rc == PCRE2_ERROR_NOMATCH) break;
    if (rc < 0) {
      PCRE2_UCHAR message[256];
      pcre2_get_error_message(rc, message, sizeof message);
      fail("pre-tokenizer: PCRE2 failed at byte {} of the text: {}", at, reinterpret_cast<const char*>(message));
    }
    const PCRE2_SIZE* ovector = pcre2_get_ovector_pointer(match.p);
    const size_t start = ovector[0], end = ovector[1];
    if (end <= start) {
      // An empty match: move on by one byte, or by a whole character when it is valid UTF-8
      // (a start inside a character is an error for PCRE2).
      at = start + 1;
      while (at < text.size() && (static_cast<unsigned char>(text[at]) & 0xC0) == 0x80 && at - start < 4) ++at;
      continue;
    }
    if (start > covered) pieces.push_back(text.substr(covered, start - covered));
    pieces.push_back(text.substr(start, end - start));
    covered = at = end;
  }
  if (covered < text.size()) pieces.push_back(text.substr(covered));
}

}  // namespace tg::models
