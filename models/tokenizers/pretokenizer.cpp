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

namespace {

// The class of each byte in GPT-2's pattern, asked of PCRE2 itself (UTF + UCP) for ASCII so that
// the fast path below and the regex can never disagree; every byte >= 0x80 is kGpt2NonAscii.
enum Gpt2ByteClass : uint8_t { kGpt2Other, kGpt2Letter, kGpt2Digit, kGpt2Space, kGpt2NonAscii };

struct Gpt2AsciiClasses {
  uint8_t of[256];
  Gpt2AsciiClasses() {
    auto matcher = [](const char* regex) {
      int error = 0;
      PCRE2_SIZE offset = 0;
      return pcre2_compile(reinterpret_cast<PCRE2_SPTR>(regex), PCRE2_ZERO_TERMINATED, PCRE2_UTF | PCRE2_UCP, &error,
                           &offset, nullptr);
    };
    pcre2_code* letter = matcher(R"(\p{L})");
    pcre2_code* digit = matcher(R"(\p{N})");
    pcre2_code* space = matcher(R"(\s)");
    pcre2_match_data* md = pcre2_match_data_create(1, nullptr);
    auto is = [&](pcre2_code* code, unsigned char c) {
      return pcre2_match(code, &c, 1, 0, PCRE2_ANCHORED, md, nullptr) > 0;
    };
    for (int c = 0; c < 256; ++c)
      of[c] = c >= 0x80 ? kGpt2NonAscii
              : is(letter, uint8_t(c)) ? kGpt2Letter
              : is(digit, uint8_t(c))  ? kGpt2Digit
              : is(space, uint8_t(c))  ? kGpt2Space
                                       : kGpt2Other;
    pcre2_match_data_free(md);
    pcre2_code_free(letter), pcre2_code_free(digit), pcre2_code_free(space);
  }
};

constexpr size_t kGpt2Undecided = std::string_view::npos;

// The end of GPT-2's pattern's match at `i` (text[i] ASCII, where the pattern always matches),
// alternative by alternative as the regex tries them:
//   '(?:[sdmt]|ll|ve|re) | ?\p{L}++ | ?\p{N}++ | ?[^\s\p{L}\p{N}]++ | \s++$ | \s+(?!\S) | \s
// or kGpt2Undecided when the match could reach a byte >= 0x80 (a non-ASCII letter, digit, space
// or symbol, or invalid UTF-8): PCRE2 decides those. Cost: the match's length.
size_t gpt2_ascii_match(const uint8_t* cls, std::string_view t, size_t i) {
  const size_t n = t.size();
  auto at = [&](size_t k) { return cls[static_cast<unsigned char>(t[k])]; };
  if (t[i] == '\'' && i + 1 < n) {
    const char c = t[i + 1];
    if (c == 's' || c == 'd' || c == 'm' || c == 't') return i + 2;
    if (i + 2 < n) {
      const char d = t[i + 2];
      if ((c == 'l' && d == 'l') || (c == 'v' && d == 'e') || (c == 'r' && d == 'e')) return i + 3;
    }
  }
  size_t j = i;  // the run's first byte: after an optional leading space
  if (t[i] == ' ' && i + 1 < n && at(i + 1) != kGpt2Space) j = i + 1;
  const uint8_t run = at(j);
  if (run == kGpt2NonAscii) return kGpt2Undecided;
  size_t k = j + 1;
  while (k < n && at(k) == run) ++k;
  if (k < n && at(k) == kGpt2NonAscii) return kGpt2Undecided;
  if (run != kGpt2Space) return k;
  // Whitespace from i to k: all of it at the end of the text; else all but the last, so that
  // the last one joins the next word (a run of one stays alone).
  if (k == n) return n;
  return k - i >= 2 ? k - 1 : i + 1;
}

const Gpt2AsciiClasses& gpt2_ascii_classes() {
  static const Gpt2AsciiClasses classes;
  return classes;
}

}  // namespace

struct Pretokenizer::Compiled {
  pcre2_code* code = nullptr;
  const uint8_t* gpt2_classes = nullptr;  // GPT-2's pattern: the ASCII fast path's byte classes
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
  // GPT-2's pattern, as tiktoken or Hugging Face's ByteLevel write it (they split alike): ASCII
  // text is split without the regex engine (several times faster), the rest by PCRE2.
  if (pattern_ == kGpt2Pattern || pattern_ == kHfByteLevelPattern) compiled_->gpt2_classes = gpt2_ascii_classes().of;
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
  const uint8_t* fast = compiled_->gpt2_classes;
  while (at < text.size()) {
    if (fast != nullptr && static_cast<unsigned char>(text[at]) < 0x80) {
      const size_t end = gpt2_ascii_match(fast, text, at);
      if (end != kGpt2Undecided) {
        if (at > covered) pieces.push_back(text.substr(covered, at - covered));
        pieces.push_back(text.substr(at, end - at));
        covered = at = end;
        continue;
      }
    }
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
