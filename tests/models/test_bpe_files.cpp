// Byte-level BPE files: the readers on bad input (errors name the file and the line), the
// bytes-to-unicode map, the pre-tokenizer's pieces, loading by path.
#include <fstream>

#include "models/tokenizers/bpe_tokenizer.h"
#include "models/tokenizers/byte_level.h"
#include "test_util.h"

namespace tg::models {
namespace {

using tg::testing::TempDir;

std::string put(const TempDir& dir, const char* name, const std::string& text) {
  std::ofstream(dir.file(name), std::ios::binary) << text;
  return dir.file(name);
}

// A small GPT-2 style vocabulary: the 256 byte tokens, then "Ġt", "he", "Ġthe".
std::string vocab_json(bool with_merged = true) {
  std::string s = "{";
  for (int b = 0; b < 256; ++b) {
    const std::string text = bytes_to_unicode(std::string(1, char(b)));
    s += fmt::format("\"{}\": {}, ", text == "\"" ? "\\\"" : text == "\\" ? "\\\\" : text, b);
  }
  if (with_merged) s += "\"Ġt\": 256, \"he\": 257, \"Ġthe\": 258, ";
  s += "\"<|endoftext|>\": 259}";
  return s;
}

TEST(BpeFiles, ByteToUnicodeIsGpt2sMap) {
  EXPECT_EQ(bytes_to_unicode(" "), "Ġ");
  EXPECT_EQ(bytes_to_unicode("\n"), "Ċ");
  EXPECT_EQ(bytes_to_unicode("A~"), "A~");
  EXPECT_EQ(byte_to_unicode(0), char32_t(0x100));
  EXPECT_EQ(byte_to_unicode(0xAD), char32_t(0x143));
  for (int b = 0; b < 256; ++b) {
    const std::string one(1, char(b));
    EXPECT_EQ(unicode_to_bytes(bytes_to_unicode(one)), one);
  }
  EXPECT_FALSE(unicode_to_bytes("\xe4\xbd\xa0").has_value());  // a code point outside the map
  EXPECT_FALSE(unicode_to_bytes("\xc4").has_value());          // truncated UTF-8
}

TEST(BpeFiles, PretokenizerSplitsAsGpt2AndKeepsInvalidBytes) {
  const Pretokenizer p(kGpt2Pattern);
  std::vector<std::string_view> pieces;
  p.split("I'm  here 123\n", pieces);
  EXPECT_EQ(pieces, (std::vector<std::string_view>{"I", "'m", " ", " here", " 123", "\n"}));
  pieces.clear();
  p.split("a\xff\xfe b", pieces);  // invalid UTF-8 never matches: a piece of its own
  EXPECT_EQ(pieces, (std::vector<std::string_view>{"a", "\xff\xfe", " b"}));
  EXPECT_TG_ERROR(Pretokenizer("(unclosed", "my.json"), "my.json: the regex does not compile");
}

TEST(BpeFiles, Gpt2VocabAndMergesLoadAndEncode) {
  TempDir dir("bpe");
  put(dir, "vocab.json", vocab_json());
  put(dir, "merges.txt", "#version: 0.2\nĠ t\nh e\nĠt he\n");
  const BpeTokenizer t = BpeTokenizer::load(dir.path.string());
  EXPECT_EQ(t.vocab_size(), 260);
  EXPECT_EQ(t.encode(" the<|endoftext|>"), (std::vector<int32_t>{258, 259}));
  EXPECT_EQ(t.encode("the"), (std::vector<int32_t>{'t', 257}));
  EXPECT_EQ(t.decode(std::vector<int32_t>{258, 259}), " the<|endoftext|>");
}

TEST(BpeFiles, BadMergesNameTheFileAndLine) {
  TempDir dir("bpe");
  const std::string vocab = put(dir, "vocab.json", vocab_json());
  std::string merges = put(dir, "merges.txt", "#version: 0.2\nĠ t\nh x9\n");
  EXPECT_TG_ERROR(BpeTokenizer::load_gpt2_files(vocab, merges), "merges.txt:3: the merge \"h x9\" names 'x9'");
  put(dir, "merges.txt", "Ġ t\nh e\nt h\n");
  EXPECT_TG_ERROR(BpeTokenizer::load_gpt2_files(vocab, merges), "merges.txt:3: the merge \"t h\" makes 'th'");
  put(dir, "merges.txt", "Ġ t\nhe\n");
  EXPECT_TG_ERROR(BpeTokenizer::load_gpt2_files(vocab, merges), "merges.txt:2: expected \"left right\"");
  put(dir, "merges.txt", "Ġ t\nĠ t\n");
  EXPECT_TG_ERROR(BpeTokenizer::load_gpt2_files(vocab, merges), "same pair");
  put(dir, "vocab.json", "{\"a\": 0,");
  EXPECT_TG_ERROR(BpeTokenizer::load_gpt2_files(vocab, merges), "vocab.json: not valid JSON");
  put(dir, "vocab.json", "{\"a\": 0, \"b\": 0}");
  EXPECT_TG_ERROR(BpeTokenizer::load_gpt2_files(vocab, merges), "vocab.json: id 0 is given to two tokens");
  put(dir, "vocab.json", "{\"a\": 0, \"\xe4\xbd\xa0\": 1}");
  EXPECT_TG_ERROR(BpeTokenizer::load_gpt2_files(vocab, merges), "is not byte-level text");
}

TEST(BpeFiles, BadTiktokenNamesTheFileAndLine) {
  TempDir dir("bpe");
  const std::string path = dir.file("r.tiktoken");
  put(dir, "r.tiktoken", "YQ== 0\nYg==1\n");
  EXPECT_TG_ERROR(BpeTokenizer::load_tiktoken(path), "r.tiktoken:2: expected \"<base64 token> <rank>\"");
  put(dir, "r.tiktoken", "YQ== 0\nY!== 1\n");
  EXPECT_TG_ERROR(BpeTokenizer::load_tiktoken(path), "r.tiktoken:2: the token 'Y!==' is not base64");
  put(dir, "r.tiktoken", "YQ== 0\nYg== 0\n");
  EXPECT_TG_ERROR(BpeTokenizer::load_tiktoken(path), "r.tiktoken:2: rank 0 appears twice (lines 1 and 2)");
  put(dir, "r.tiktoken", "YQ== 0\nYg== 2\n");
  EXPECT_TG_ERROR(BpeTokenizer::load_tiktoken(path), "r.tiktoken: rank 1 is missing");
  // Found by fuzz_bpe_files: a rank the file cannot hold was allocated before it was checked.
  put(dir, "r.tiktoken", "YQ== 0\nYg== 900000000\n");
  EXPECT_TG_ERROR(BpeTokenizer::load_tiktoken(path), "r.tiktoken:2: rank 900000000 is beyond the file's 3 lines");
  put(dir, "r.tiktoken", "YQ== 0\nYg== x\n");
  EXPECT_TG_ERROR(BpeTokenizer::load_tiktoken(path), "r.tiktoken:2: the rank 'x' is not a number");
  put(dir, "r.tiktoken", "YQ== 0\nYQ== 1\n");
  EXPECT_TG_ERROR(BpeTokenizer::load_tiktoken(path), "tokens 0 and 1 are the same bytes");
  put(dir, "r.tiktoken", "YQ== 0\nYg== 1\nYWI= 2\n");
  EXPECT_TG_ERROR(BpeTokenizer::load_tiktoken(path, "(?<"), "r.tiktoken: the regex does not compile");
  const BpeTokenizer t = BpeTokenizer::load_tiktoken(path);
  EXPECT_EQ(t.encode_ordinary("abab"), (std::vector<int32_t>{2, 2}));
  EXPECT_TG_ERROR(t.encode_ordinary("abc"), "byte 0x63 has no single-byte token");
  EXPECT_TG_ERROR(t.decode(std::vector<int32_t>{0, 4}), "id 4 (at position 1) is not a token");
  EXPECT_TG_ERROR(t.decode(std::vector<int32_t>{-1}), "id -1");
}

TEST(BpeFiles, BadTokenizerJsonNamesTheFileAndField) {
  TempDir dir("bpe");
  const std::string path = dir.file("tokenizer.json");
  auto with = [&](const std::string& model, const std::string& rest = "") {
    put(dir, "tokenizer.json", "{\"model\": " + model + rest + "}");
  };
  const std::string good = "{\"type\": \"BPE\", \"vocab\": " + vocab_json() + ", \"merges\": [\"Ġ t\", [\"h\", \"e\"]]}";
  with(good);
  EXPECT_EQ(BpeTokenizer::load(path).vocab_size(), 260);
  put(dir, "tokenizer.json", "{\"model\": ");
  EXPECT_TG_ERROR(BpeTokenizer::load(path), "tokenizer.json: not valid JSON");
  put(dir, "tokenizer.json", "{}");
  EXPECT_TG_ERROR(BpeTokenizer::load(path), "tokenizer.json: missing the \"model\" object");
  with("{\"type\": 7, \"vocab\": {}}");  // found by fuzz_bpe_files: nlohmann's type_error escaped
  EXPECT_TG_ERROR(BpeTokenizer::load(path), "tokenizer.json: model: \"type\" must be a string, found 7");
  with("{\"type\": \"WordPiece\", \"vocab\": {}}");
  EXPECT_TG_ERROR(BpeTokenizer::load(path), "model type \"WordPiece\" is not supported");
  with("{\"type\": \"BPE\", \"vocab\": " + vocab_json() + ", \"merges\": [\"Ġ q9\"]}");
  EXPECT_TG_ERROR(BpeTokenizer::load(path), "tokenizer.json: model.merges[0]: the merge \"Ġ q9\" names 'q9'");
  with("{\"type\": \"BPE\", \"vocab\": " + vocab_json() + ", \"merges\": [7]}");
  EXPECT_TG_ERROR(BpeTokenizer::load(path), "model.merges[0]: expected \"left right\" or");
  with(good, ", \"normalizer\": {\"type\": \"NFC\"}");
  EXPECT_TG_ERROR(BpeTokenizer::load(path), "a normalizer is not supported");
  with(good, ", \"pre_tokenizer\": {\"type\": \"Whitespace\"}");
  EXPECT_TG_ERROR(BpeTokenizer::load(path), "pre_tokenizer: pre-tokenizer type \"Whitespace\" is not supported");
  with(good, ", \"pre_tokenizer\": {\"type\": \"Split\", \"pattern\": {\"Regex\": \"[\"}, \"behavior\": \"Isolated\"}");
  EXPECT_TG_ERROR(BpeTokenizer::load(path), "tokenizer.json: the regex does not compile");
  with(good, ", \"pre_tokenizer\": {\"type\": \"Split\", \"pattern\": {\"Regex\": \"\\\\p{N}{1,3}+\"}}");
  EXPECT_TG_ERROR(BpeTokenizer::load(path), "pre_tokenizer.pattern: the regex has an interval quantifier followed by '+'");
  with(good, ", \"pre_tokenizer\": {\"type\": \"Split\", \"pattern\": {\"Regex\": \"a\"}, \"behavior\": \"Removed\"}");
  EXPECT_TG_ERROR(BpeTokenizer::load(path), "Split behavior \"Removed\" is not supported");
  with(good, ", \"added_tokens\": [{\"id\": 5, \"content\": \"x\", \"lstrip\": true}]");
  EXPECT_TG_ERROR(BpeTokenizer::load(path), "tokenizer.json: added_tokens[0]: lstrip = true is not supported");
  with("{\"type\": \"BPE\", \"vocab\": " + vocab_json() + ", \"merges\": [], \"byte_fallback\": true}");
  EXPECT_TG_ERROR(BpeTokenizer::load(path), "model.byte_fallback = true is not supported");
  with(good, ", \"decoder\": {\"type\": \"WordPiece\"}");
  EXPECT_TG_ERROR(BpeTokenizer::load(path), "decoder");
}

TEST(BpeFiles, LoadByPathSaysWhatItExpects) {
  TempDir dir("bpe");
  EXPECT_TG_ERROR(BpeTokenizer::load(dir.path.string()), "holds neither tokenizer.json nor vocab.json + merges.txt");
  EXPECT_TG_ERROR(BpeTokenizer::load(dir.file("none.json")), "none.json: no such file");
  put(dir, "x.txt", "hello");
  EXPECT_TG_ERROR(BpeTokenizer::load(dir.file("x.txt")), "x.txt: not a tokenizer");
}

TEST(BpeFiles, SaveWritesATokenizerJsonThatLoadsBack) {
  TempDir dir("bpe");
  put(dir, "vocab.json", vocab_json());
  put(dir, "merges.txt", "Ġ t\nh e\nĠt he\n");
  const BpeTokenizer t = BpeTokenizer::load(dir.path.string());
  t.save_tokenizer_json(dir.file("out.json"));
  const BpeTokenizer back = BpeTokenizer::load(dir.file("out.json"));
  EXPECT_EQ(back.encode(" the the<|endoftext|>x"), t.encode(" the the<|endoftext|>x"));
  EXPECT_EQ(back.model().merges(), t.model().merges());
}

}  // namespace
}  // namespace tg::models
