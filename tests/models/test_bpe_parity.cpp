// Byte-level BPE against tiktoken and Hugging Face tokenizers, token for token, on the fixtures
// of tests/models/make_bpe_fixtures.py (GPT-2's real ranks; a BPE trained by HF on tiny
// Shakespeare), and decode(encode(x)) == x on random bytes.
#include <nlohmann/json.hpp>

#include <algorithm>
#include <chrono>
#include <random>

#include "models/tokenizers/bpe_tokenizer.h"
#include "models/tokenizers/byte_level.h"
#include "models/tokenizers/chunked_encode.h"
#include "nn/file_io.h"
#include "test_util.h"

namespace tg::models {
namespace {

const std::string kBpeFixtures = std::string(TAPEGRAD_SOURCE_DIR) + "/tests/models/fixtures/";

const BpeTokenizer& gpt2_tiktoken() {
  static const BpeTokenizer t = BpeTokenizer::load(kBpeFixtures + "gpt2.tiktoken");
  return t;
}

const BpeTokenizer& shakespeare_hf() {
  static const BpeTokenizer t = BpeTokenizer::load(kBpeFixtures + "bpe_shakespeare.json");
  return t;
}

const nlohmann::json& parity_cases() {
  static const nlohmann::json j = nlohmann::json::parse(read_file_bytes(kBpeFixtures + "bpe_parity.json"));
  return j;
}

std::vector<int32_t> ids_of(const nlohmann::json& a) { return a.get<std::vector<int32_t>>(); }

// Each case's `key` ids against `encode(text)`, and the text back from them.
template <class Encode>
void expect_parity(const char* key, const Encode& encode, const BpeTokenizer& t, bool round_trips = true) {
  for (const auto& c : parity_cases()["cases"]) {
    const std::string text = c["text"];
    const std::vector<int32_t> ids = encode(text);
    EXPECT_EQ(ids, ids_of(c[key])) << key << " on \"" << text << "\"";
    if (round_trips) {
      EXPECT_EQ(t.decode(ids), text) << key;
    }
  }
}

TEST(BpeParity, Gpt2RanksMatchTiktokenEncodeOrdinary) {
  const BpeTokenizer& t = gpt2_tiktoken();
  EXPECT_EQ(t.vocab_size(), 50257);
  expect_parity("tiktoken", [&](const std::string& s) { return t.encode_ordinary(s); }, t);
}

TEST(BpeParity, Cl100kAndO200kPatternsMatchTiktoken) {
  const BpeTokenizer& g = gpt2_tiktoken();
  const BpeTokenizer cl(g.model(), {pattern_named("cl100k")}, false, {}, "cl100k");
  expect_parity("tiktoken_cl100k", [&](const std::string& s) { return cl.encode_ordinary(s); }, cl);
  const BpeTokenizer o(g.model(), {pattern_named("o200k")}, false, {}, "o200k");
  expect_parity("tiktoken_o200k", [&](const std::string& s) { return o.encode_ordinary(s); }, o);
}

TEST(BpeParity, Gpt2MergesMatchHuggingFaceByteLevel) {
  // HF's model built as the script builds it: the merges derived from the ranks, ranked by merge.
  const BpeModel& m = gpt2_tiktoken().model();
  std::vector<std::string> tokens;
  for (int32_t i = 0; i < m.size(); ++i) tokens.push_back(m.token(i));
  EXPECT_EQ(m.merges().size(), 50000u);  // GPT-2's merges.txt has 50,000 lines
  const BpeTokenizer hf(BpeModel::from_merges(tokens, m.merges(), false, "gpt2 merges"), {kHfByteLevelPattern}, false, {},
                        "gpt2 merges");
  expect_parity("hf_gpt2", [&](const std::string& s) { return hf.encode(s); }, hf);
}

TEST(BpeParity, Gpt2VocabJsonAndMergesTxtMatchHuggingFace) {
  // GPT-2's two files in their format, written from the ranks' model (ids = ranks, merges in
  // order), read back by the reader of vocab.json + merges.txt.
  const BpeModel& m = gpt2_tiktoken().model();
  std::string vocab = "{", merges = "#version: 0.2\n";
  for (int32_t i = 0; i < m.size(); ++i)
    vocab += fmt::format("{}{}: {}", i ? ", " : "", nlohmann::json(bytes_to_unicode(m.token(i))).dump(), i);
  vocab += fmt::format(", \"<|endoftext|>\": {}}}", m.size());
  for (const auto& [a, b] : m.merges())
    merges += bytes_to_unicode(m.token(a)) + " " + bytes_to_unicode(m.token(b)) + "\n";
  tg::testing::TempDir dir("bpe");
  write_file_atomically(dir.file("vocab.json"), vocab);
  write_file_atomically(dir.file("merges.txt"), merges);
  const BpeTokenizer t = BpeTokenizer::load(dir.path.string());
  EXPECT_EQ(t.vocab_size(), 50257);
  expect_parity("hf_gpt2", [&](const std::string& s) { return t.encode_ordinary(s); }, t);
  EXPECT_EQ(t.encode("<|endoftext|>"), std::vector<int32_t>{50256});
}

TEST(BpeParity, TrainedTokenizerJsonMatchesHuggingFace) {
  const BpeTokenizer& t = shakespeare_hf();
  EXPECT_EQ(t.vocab_size(), 1000);
  expect_parity("hf_shakespeare", [&](const std::string& s) { return t.encode(s); }, t);
}

TEST(BpeParity, SplitPreTokenizerThroughWrittenTokenizerJsonMatchesHuggingFace) {
  const BpeTokenizer& t = shakespeare_hf();
  const BpeTokenizer split(t.model(), {kCl100kPattern}, false, t.added_tokens(), "split");
  // Written as Sequence[Split, ByteLevel(use_regex: false)] and read back.
  const BpeTokenizer read = BpeTokenizer::from_tokenizer_json(split.to_tokenizer_json(), "written");
  // Written without the possessive '+' of `\p{N}{1,3}+`, which Oniguruma would read otherwise.
  ASSERT_EQ(read.patterns(), std::vector<std::string>{without_interval_plus(kCl100kPattern)});
  ASSERT_EQ(std::string(kCl100kPattern).find("{1,3}+") + 5, find_interval_plus(kCl100kPattern));
  ASSERT_EQ(find_interval_plus(read.patterns()[0]), std::string::npos);
  expect_parity("hf_shakespeare_split", [&](const std::string& s) { return read.encode(s); }, read);
}

TEST(BpeParity, AddPrefixSpaceMatchesHuggingFace) {
  const BpeTokenizer& t = shakespeare_hf();
  const BpeTokenizer prefixed(t.model(), {kHfByteLevelPattern}, true, t.added_tokens(), "prefixed");
  const BpeTokenizer read = BpeTokenizer::from_tokenizer_json(prefixed.to_tokenizer_json(), "written");
  ASSERT_TRUE(read.add_prefix_space());
  // decode gives the added space back, as HF's ByteLevel decoder does: no round trip.
  expect_parity("hf_shakespeare_prefix", [&](const std::string& s) { return read.encode(s); }, read, false);
  EXPECT_EQ(read.decode(read.encode("Hello")), " Hello");
}

TEST(BpeParity, WrittenTokenizerJsonEncodesAsTheOriginal) {
  for (const BpeTokenizer* t : {&gpt2_tiktoken(), &shakespeare_hf()}) {
    const BpeTokenizer back = BpeTokenizer::from_tokenizer_json(t->to_tokenizer_json(), "written");
    EXPECT_EQ(back.vocab_size(), t->vocab_size());
    EXPECT_EQ(back.model().merges(), t->model().merges());
    for (const auto& c : parity_cases()["cases"]) {
      const std::string text = c["text"];
      EXPECT_EQ(back.encode(text), t->encode(text)) << text;
    }
  }
}

TEST(BpeParity, SpecialTokensSplitOutAsHuggingFaceDoes) {
  const BpeTokenizer& t = shakespeare_hf();
  const std::vector<int32_t> ids = t.encode("a<|endoftext|><|endoftext|>b");
  ASSERT_EQ(ids.size(), 4u);
  EXPECT_EQ(ids[1], 0);
  EXPECT_EQ(ids[2], 0);
  EXPECT_EQ(t.decode(ids), "a<|endoftext|><|endoftext|>b");
  // tiktoken's gpt2: <|endoftext|> is id 50256 for encode, ordinary text for encode_ordinary.
  EXPECT_EQ(gpt2_tiktoken().encode("<|endoftext|>"), std::vector<int32_t>{50256});
  EXPECT_GT(gpt2_tiktoken().encode_ordinary("<|endoftext|>").size(), 1u);
}

TEST(BpeParity, AllOfTinyShakespeareMatchesTiktoken) {
  const std::string text = read_file_bytes(std::string(TAPEGRAD_SOURCE_DIR) + "/data/tinyshakespeare.txt");
  const std::vector<int32_t> ids = gpt2_tiktoken().encode_ordinary(text);
  uint64_t h = 0xCBF29CE484222325ull;
  for (int32_t id : ids)
    for (int k = 0; k < 4; ++k) h = (h ^ ((uint32_t(id) >> (8 * k)) & 0xFF)) * 0x100000001B3ull;
  const auto& ref = parity_cases()["tinyshakespeare"];
  EXPECT_EQ(ids.size(), ref["count"].get<size_t>());
  EXPECT_EQ(fmt::format("{:016x}", h), ref["fnv1a"].get<std::string>());
  EXPECT_EQ(gpt2_tiktoken().decode(ids), text);
  // On 2 threads (the 1.1 MB text is cut in two at a "\n<letter>"): the same ids.
  EXPECT_EQ(encode_in_chunks(gpt2_tiktoken(), text, /*ordinary=*/true, 2), ids);
}

TEST(BpeParity, EncodingInSmallChunksOnThreadsGivesTheSameIds) {
  // Every stress text and a slice of Shakespeare, with special tokens between them, cut every
  // 16 bytes or so wherever the cutter allows: the ids of encoding the text whole.
  std::string text = read_file_bytes(std::string(TAPEGRAD_SOURCE_DIR) + "/data/tinyshakespeare.txt").substr(0, 20000);
  for (const auto& c : parity_cases()["cases"]) text += c["text"].get<std::string>() + "\n<|endoftext|>x\ny  \nz";
  const BpeTokenizer& g = gpt2_tiktoken();
  const BpeTokenizer cl(g.model(), {pattern_named("cl100k")}, false, g.added_tokens(), "cl100k");
  const BpeTokenizer o(g.model(), {pattern_named("o200k")}, false, g.added_tokens(), "o200k");
  for (const BpeTokenizer* t : {&g, &shakespeare_hf(), &cl, &o})
    for (bool ordinary : {true, false}) {
      const std::vector<int32_t> whole = ordinary ? t->encode_ordinary(text) : t->encode(text);
      size_t chunks = 0;
      EXPECT_EQ(encode_in_chunks(*t, text, ordinary, 2, [&](size_t, size_t) { ++chunks; }, 16), whole);
      EXPECT_GT(chunks, 100u);  // it did cut
    }
}

TEST(BpeRoundTrip, RandomBytesDecodeToThemselves) {
  std::mt19937 rng(18);
  for (int n = 0; n < 300; ++n) {
    std::string s(rng() % 80, '\0');
    // Half the strings all bytes, half mostly ASCII and UTF-8 lead/continuation bytes.
    static const char kPool[] = "ab \n\t'1\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80\x80\xff";
    for (char& c : s) c = char(n % 2 ? rng() % 256 : kPool[rng() % (sizeof kPool - 1)]);
    for (const BpeTokenizer* t : {&gpt2_tiktoken(), &shakespeare_hf()}) {
      EXPECT_EQ(t->decode(t->encode(s)), s);
      EXPECT_EQ(t->decode(t->encode_ordinary(s)), s);
    }
  }
}

TEST(BpeRoundTrip, LongRunsOfOneCharacterEncodeInLinearTime) {
  // One pre-token of 512 KB: the merge loop must not be quadratic (seconds would become hours).
  // Checked by how the time grows, not by a time limit (machines and sanitizers differ): a
  // word 16x as long takes 15-35x as long here (n log n, and the long one leaves the L2 cache), a
  // quadratic loop 256x; the bound is halfway. Best of 3 at each length, so that a pause of
  // the machine does not count.
  const auto best_seconds = [](const std::string& text) {
    double best = 1e30;
    for (int round = 0; round < 3; ++round) {
      const auto start = std::chrono::steady_clock::now();
      const std::vector<int32_t> ids = gpt2_tiktoken().encode_ordinary(text);
      best = std::min(best, std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
      EXPECT_EQ(gpt2_tiktoken().decode(ids), text);
    }
    return best;
  };
  for (const std::string unit : {"a", " ", "\xe4\xbd\xa0"}) {
    std::string text;
    while (text.size() < (1u << 15)) text += unit;
    const double short_seconds = best_seconds(text);
    while (text.size() < (1u << 19)) text += text;
    const double long_seconds = best_seconds(text);
    EXPECT_LT(long_seconds, 128 * short_seconds) << "unit '" << unit << "': " << short_seconds << " s at 32 KB, "
                                                << long_seconds << " s at 512 KB";
  }
}

}  // namespace
}  // namespace tg::models
