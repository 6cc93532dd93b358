// GPT-2's pattern splits ASCII text without the regex engine (pretokenizer.cpp's fast path):
// it must split every text exactly as PCRE2 does. The reference is the same pattern wrapped in
// a group, which takes PCRE2's path.
#include <random>

#include "models/tokenizers/pretokenizer.h"
#include "test_util.h"

namespace tg::models {
namespace {

std::vector<std::string_view> split_with(const Pretokenizer& p, std::string_view text) {
  std::vector<std::string_view> pieces;
  p.split(text, pieces);
  return pieces;
}

// Random texts of the characters where the pattern's alternatives meet: contractions, every
// ASCII class, whitespace runs at the end, non-ASCII letters, digits, spaces and symbols next to
// ASCII ones, invalid UTF-8.
std::string random_text(std::mt19937& gen) {
  static const std::vector<std::string> atoms = {
      "a", "Z", "s", "t", "l", "v", "e", "r", "d", "m", "'", "'s", "'ll", "'ve", "'re", "'S", "7", "0", " ", " ",
      "  ", "\t", "\n", "\r\n", "\v", "\f", "\x1c", "\x01", "!", ".", ",", "-", "_", "\"", "\xc3\xa9" /* é */,
      "\xd9\xa3" /* Arabic-Indic 3 */, "\xc2\xa0" /* NBSP */, "\xc2\x85" /* NEL */, "\xe2\x80\x83" /* em space */,
      "\xe2\x80\x94" /* em dash */, "\xf0\x9f\x98\x80" /* emoji */, "\xff", "\x80", "\xe2\x80" /* truncated */,
      "\xcc\x81" /* combining acute */};
  std::uniform_int_distribution<size_t> pick(0, atoms.size() - 1), length(0, 24);
  std::string s;
  for (size_t n = length(gen); n > 0; --n) s += atoms[pick(gen)];
  return s;
}

TEST(BpeFastSplit, Gpt2PatternSplitsAsPcre2OnRandomTexts) {
  for (const char* pattern : {kGpt2Pattern, kHfByteLevelPattern}) {
    const Pretokenizer fast(pattern), regex(std::string("(?:") + pattern + ")");
    std::mt19937 gen(18);
    for (int i = 0; i < 20000; ++i) {
      const std::string text = random_text(gen);
      ASSERT_EQ(split_with(fast, text), split_with(regex, text)) << "pattern " << pattern << ", text '" << text << "'";
    }
  }
}

TEST(BpeFastSplit, LongRunsSplitAsPcre2) {
  const Pretokenizer fast(kGpt2Pattern), regex(std::string("(?:") + kGpt2Pattern + ")");
  for (const std::string& text : {std::string(5000, 'a'), std::string(5000, ' '), std::string(5000, ' ') + "x",
                                  std::string(4999, '!') + "\xc3\xa9", " " + std::string(3000, '7') + "\xd9\xa3"})
    EXPECT_EQ(split_with(fast, text), split_with(regex, text)) << text.substr(0, 20);
}

}  // namespace
}  // namespace tg::models
