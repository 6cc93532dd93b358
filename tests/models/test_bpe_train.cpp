// The BPE trainer's rules on small texts worked out by hand (ids, counts before ties, the tie
// order, overlapping pairs), the words it counts, tokenizer.json round trips, and bad input.
// Parity with Hugging Face's trainer: test_bpe_train_parity.cpp.
#include <map>

#include "models/tokenizers/bpe_trainer.h"
#include "models/tokenizers/byte_level.h"
#include "nn/file_io.h"
#include "test_util.h"

namespace tg::models {
namespace {

BpeTokenizer train_text(const std::string& text, int64_t vocab_size, std::vector<std::string> specials = {}) {
  BpeTrainerOptions o;
  o.vocab_size = vocab_size;
  o.special_tokens = std::move(specials);
  BpeTrainer trainer(o);
  trainer.feed(text, "text");
  return trainer.train();
}

std::vector<std::string> merges_text(const BpeModel& m) {
  std::vector<std::string> out;
  for (const auto& [a, b] : m.merges()) out.push_back(bytes_to_unicode(m.token(a)) + " " + bytes_to_unicode(m.token(b)));
  return out;
}

TEST(BpeTrain, IdsAreSpecialsThenBytesByCodePointThenMerges) {
  const BpeTokenizer t = train_text("xy ab", 256 + 1 + 2, {"<|endoftext|>"});
  const BpeModel& m = t.model();
  ASSERT_EQ(m.size(), 259);
  EXPECT_EQ(m.token(0), "<|endoftext|>");
  ASSERT_EQ(t.added_tokens().size(), 1u);
  EXPECT_EQ(t.added_tokens()[0].id, 0);
  EXPECT_TRUE(t.added_tokens()[0].special);
  for (int b = 0; b < 256; ++b) {
    int below = 0;  // bytes shown by a smaller code point
    for (int c = 0; c < 256; ++c) below += byte_to_unicode(uint8_t(c)) < byte_to_unicode(uint8_t(b));
    EXPECT_EQ(m.id_of(std::string(1, char(b))), 1 + below) << "byte " << b;
  }
  EXPECT_EQ(m.id_of("!"), 1);
  EXPECT_EQ(m.id_of(" "), 1 + 188 + 0x20);  // 'Ġ' comes after the 188 printable bytes
  // Every pair occurs once: the smaller ids merge first ('a' < 'x' < 'Ġ').
  EXPECT_EQ(merges_text(m), (std::vector<std::string>{"a b", "x y"}));
  EXPECT_EQ(m.id_of("ab"), 257);
  EXPECT_EQ(m.id_of("xy"), 258);
}

TEST(BpeTrain, HigherCountsMergeFirstThenSmallerIds) {
  // (y,z) twice; then (a,b), (Ġ,a), (Ġ,y)... once each: (a,b) has the smallest first id; then
  // (Ġ,yz) and (Ġ,ab) tie on 'Ġ' and yz (257) < ab (258).
  EXPECT_EQ(merges_text(train_text("yz yz ab", 256 + 3).model()), (std::vector<std::string>{"y z", "a b", "Ġ yz"}));
}

TEST(BpeTrain, OverlappingPairsMergeLeftToRight) {
  // "aaaa": (a,a) three times as pairs, merged as aa|aa; then (aa,aa) once.
  EXPECT_EQ(merges_text(train_text("aaaa", 256 + 2).model()), (std::vector<std::string>{"a a", "aa aa"}));
  // "aaa": a|a then aa|a.
  EXPECT_EQ(merges_text(train_text("aaa", 256 + 2).model()), (std::vector<std::string>{"a a", "aa a"}));
  // Out of pairs: training stops below the vocabulary size.
  EXPECT_EQ(train_text("aaa", 1000).model().size(), 258);
}

TEST(BpeTrain, WordsAreEachLinePreTokenized) {
  BpeWordCounter counter;
  counter.add("a \nb", "text");  // " \n" ends its line: one word (the whole text would split " ", "\n")
  std::vector<std::pair<std::string, uint64_t>> got;
  for (const WordCount& w : counter.words()) got.emplace_back(w.bytes, w.count);
  EXPECT_EQ(got, (std::vector<std::pair<std::string, uint64_t>>{{" \n", 1}, {"a", 1}, {"b", 1}}));
  EXPECT_EQ(counter.total_words(), 3u);

  // A text of several parts (> 256 KB) with CRLF lines and no final newline, counted on TBB
  // threads, against the lines split one by one here.
  std::string text;
  for (int i = 0; text.size() < (size_t(700) << 10); ++i)
    text += fmt::format("line {} has  words, caf\xc3\xa9 {}{}", i, i % 7 == 0 ? "\t " : "", i % 3 ? "\n" : "\r\n");
  text += "   last";
  BpeWordCounter big;
  big.add(text, "big");
  const Pretokenizer split(kHfByteLevelPattern);
  std::map<std::string, uint64_t> expected;
  for (size_t at = 0; at < text.size();) {
    size_t eol = text.find('\n', at);
    eol = eol == std::string::npos ? text.size() : eol + 1;
    std::vector<std::string_view> pieces;
    split.split(std::string_view(text).substr(at, eol - at), pieces);
    for (std::string_view p : pieces) ++expected[std::string(p)];
    at = eol;
  }
  std::map<std::string, uint64_t> counted;
  for (const WordCount& w : big.words()) counted[w.bytes] = w.count;
  EXPECT_EQ(counted, expected);
}

TEST(BpeTrain, TokenizerJsonRoundTripsAndEncodesTheSame) {
  std::string text;
  for (int i = 0; i < 300; ++i)
    text += fmt::format("Speak {} times, the king's men! \xd0\x9f\xd1\x80\xd0\xb8 {} \n", i % 13, i % 3 ? "ho" : "hey");
  const BpeTokenizer t = train_text(text, 300, {"<|endoftext|>", "<pad>"});
  testing::TempDir dir("bpetrain");
  const std::string path = dir.file("tokenizer.json");
  t.save_tokenizer_json(path);
  const BpeTokenizer back = BpeTokenizer::load(path);
  ASSERT_EQ(back.model().size(), t.model().size());
  for (int32_t i = 0; i < t.model().size(); ++i) EXPECT_EQ(back.model().token(i), t.model().token(i));
  EXPECT_EQ(back.model().merges(), t.model().merges());
  ASSERT_EQ(back.added_tokens().size(), 2u);
  EXPECT_EQ(back.added_tokens()[1].content, "<pad>");
  EXPECT_EQ(back.added_tokens()[1].id, 1);
  const std::string probe = text.substr(0, 500) + "<|endoftext|>new text, the king<pad>\xff bytes";
  const std::vector<int32_t> ids = t.encode(probe);
  EXPECT_EQ(back.encode(probe), ids);
  EXPECT_EQ(back.decode(ids), probe);
  EXPECT_EQ(std::count(ids.begin(), ids.end(), 0), 1);  // the special token, split out
  EXPECT_LT(ids.size(), probe.size() / 2);               // the merges are used
}

TEST(BpeTrain, SpecialTokensRepeatedOrEqualToAByteKeepOneId) {
  const BpeTokenizer t = train_text("abc", 256 + 1, {"<s>", "<s>"});
  EXPECT_EQ(t.added_tokens().size(), 1u);
  EXPECT_EQ(t.model().size(), 257);  // <s> and 256 bytes: no room for a merge
  // A special token "a" is the byte token "a" (HF finds it in the vocabulary): 256 tokens.
  const BpeTokenizer a = train_text("abab", 256 + 1, {"a"});
  EXPECT_EQ(a.model().id_of("a"), 0);
  EXPECT_EQ(merges_text(a.model()), (std::vector<std::string>{"a b"}));
}

TEST(BpeTrain, EmptyTextGivesTheByteAlphabet) {
  const BpeTokenizer t = train_text("", 1000, {"<|endoftext|>"});
  EXPECT_EQ(t.model().size(), 257);
  EXPECT_TRUE(t.model().merges().empty());
  EXPECT_EQ(t.decode(t.encode("any \xff text")), "any \xff text");
}

TEST(BpeTrain, BadOptionsAndTextAreClearErrors) {
  BpeTrainerOptions o;
  o.vocab_size = 256;
  o.special_tokens = {"<|endoftext|>"};
  EXPECT_TG_ERROR(BpeTrainer{o}, "a vocabulary of 256 tokens is too small");
  o.special_tokens = {""};
  o.vocab_size = 300;
  EXPECT_TG_ERROR(BpeTrainer{o}, "a special token is empty");
  o.special_tokens = {"<end of text>"};
  EXPECT_TG_ERROR(BpeTrainer{o}, "'<end of text>' has a character that byte-level text cannot show");
  o.special_tokens = {};
  o.vocab_size = 256;
  EXPECT_NO_THROW(BpeTrainer{o});  // the alphabet alone

  BpeTrainerOptions small;
  small.vocab_size = 300;
  BpeTrainer trainer(small);
  EXPECT_TG_ERROR(trainer.feed("fine\nstill fine\nnot \xe9t\xe9\n", "latin1.txt"),
                  "latin1.txt: line 3, byte 5 of the line (byte 20 of the file): invalid UTF-8 (0xE9)");
  std::string big(size_t(600) << 10, 'a');
  big[(size_t(500) << 10) + 3] = '\n';
  big.back() = '\x80';  // in a later part than the first
  EXPECT_TG_ERROR(trainer.feed(big, "big.txt"), "big.txt: line 2");
}

TEST(BpeTrain, FindsInvalidUtf8) {
  EXPECT_EQ(find_invalid_utf8("plain ascii text, long enough for eight-byte steps"), std::string_view::npos);
  EXPECT_EQ(find_invalid_utf8("caf\xc3\xa9 \xe6\x97\xa5 \xf0\x9f\x98\x80"), std::string_view::npos);
  EXPECT_EQ(find_invalid_utf8("ab\x80"), 2u);                // a stray continuation byte
  EXPECT_EQ(find_invalid_utf8("ab\xc3"), 2u);                // truncated
  EXPECT_EQ(find_invalid_utf8("\xc0\xaf"), 0u);              // overlong '/'
  EXPECT_EQ(find_invalid_utf8("x\xed\xa0\x80"), 1u);         // a surrogate
  EXPECT_EQ(find_invalid_utf8("xy\xf4\x90\x80\x80"), 2u);    // above U+10FFFF
  EXPECT_EQ(find_invalid_utf8("0123456789\xff"), 10u);       // after an ASCII block
}

}  // namespace
}  // namespace tg::models
