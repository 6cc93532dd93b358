// The BPE trainer against Hugging Face's BpeTrainer, merge for merge, on the fixtures of
// tests/models/make_bpe_train_fixtures.py (HF trained on tiny Shakespeare and on a text made of
// ties) and make_bpe_fixtures.py (bpe_shakespeare.json: HF's 1,000-token BPE, whole).
#include <nlohmann/json.hpp>

#include "models/tokenizers/bpe_trainer.h"
#include "models/tokenizers/byte_level.h"
#include "nn/file_io.h"
#include "test_util.h"

namespace tg::models {
namespace {

const std::string kSourceDir = std::string(TAPEGRAD_SOURCE_DIR) + "/";

const nlohmann::json& train_fixture() {
  static const nlohmann::json j =
      nlohmann::json::parse(read_file_bytes(kSourceDir + "tests/models/fixtures/bpe_train_parity.json"));
  return j;
}

const nlohmann::json& train_case(const std::string& name) {
  for (const auto& c : train_fixture()["cases"])
    if (c["name"] == name) return c;
  throw std::runtime_error("no case " + name + " in bpe_train_parity.json");
}

BpeTokenizer train_on(const std::string& file, const BpeTrainerOptions& options) {
  BpeTrainer trainer(options);
  trainer.feed(read_file_bytes(kSourceDir + file), file);
  return trainer.train();
}

BpeTokenizer train_case_tokenizer(const nlohmann::json& c) {
  BpeTrainerOptions o;
  o.vocab_size = c["vocab_size"];
  o.min_frequency = c["min_frequency"];
  o.special_tokens = c["special_tokens"].get<std::vector<std::string>>();
  return train_on(c["file"], o);
}

// The merges as tokenizer.json writes them: "left right", each token through the byte map.
std::vector<std::string> merges_text(const BpeModel& m) {
  std::vector<std::string> out;
  for (const auto& [a, b] : m.merges()) out.push_back(bytes_to_unicode(m.token(a)) + " " + bytes_to_unicode(m.token(b)));
  return out;
}

// The first merge where the two lists differ, for a readable failure.
std::string first_difference(const std::vector<std::string>& ours, const std::vector<std::string>& hf) {
  for (size_t i = 0; i < std::min(ours.size(), hf.size()); ++i)
    if (ours[i] != hf[i]) return fmt::format("merge {}: ours \"{}\", HF's \"{}\"", i, ours[i], hf[i]);
  return fmt::format("{} merges against HF's {}", ours.size(), hf.size());
}

void expect_same_as_hf(const std::string& name) {
  const nlohmann::json& c = train_case(name);
  const BpeTokenizer t = train_case_tokenizer(c);
  const std::vector<std::string> hf = c["merges"].get<std::vector<std::string>>();
  const std::vector<std::string> ours = merges_text(t.model());
  EXPECT_TRUE(ours == hf) << name << ": " << first_difference(ours, hf);
  EXPECT_EQ(t.vocab_size(), c["trained_vocab_size"].get<int64_t>()) << name;
  EXPECT_EQ(int64_t(t.encode(read_file_bytes(kSourceDir + c["file"].get<std::string>())).size()),
            c["encoded_length"].get<int64_t>())
      << name;
}

TEST(BpeTrainParity, Shakespeare8192MergesAreHuggingFaces) { expect_same_as_hf("shakespeare_8k"); }

TEST(BpeTrainParity, MinFrequencyStopsWhereHuggingFaceStops) { expect_same_as_hf("shakespeare_min"); }

TEST(BpeTrainParity, TiesAreBrokenAsHuggingFaceBreaksThem) { expect_same_as_hf("ties"); }

TEST(BpeTrainParity, Shakespeare1000IsHuggingFacesTokenizerJsonWhole) {
  // bpe_shakespeare.json: HF's own file; every id and every merge the same.
  const BpeTokenizer hf = BpeTokenizer::load(kSourceDir + "tests/models/fixtures/bpe_shakespeare.json");
  BpeTrainerOptions o;
  o.vocab_size = 1000;
  o.special_tokens = {"<|endoftext|>"};
  const BpeTokenizer ours = train_on("data/tinyshakespeare.txt", o);
  ASSERT_EQ(ours.model().size(), hf.model().size());
  for (int32_t i = 0; i < hf.model().size(); ++i)
    ASSERT_EQ(ours.model().token(i), hf.model().token(i)) << "id " << i;
  EXPECT_EQ(ours.model().merges(), hf.model().merges());
  ASSERT_EQ(ours.added_tokens().size(), 1u);
  EXPECT_EQ(ours.added_tokens()[0].content, "<|endoftext|>");
  EXPECT_EQ(ours.added_tokens()[0].id, hf.added_tokens()[0].id);
}

TEST(BpeTrainParity, TapegradsFileEncodesAsHuggingFaceEncodesWithIt) {
  // hf_ids_of_tapegrad_file: HF's Tokenizer.from_file on the tokenizer.json `tapegrad tokenizer
  // train` wrote, encoding the stress texts; the trainer here, written and read back, must agree.
  const nlohmann::json& c = train_case("shakespeare_8k");
  ASSERT_TRUE(c.contains("hf_ids_of_tapegrad_file")) << "run make_bpe_train_fixtures.py --tapegrad build/tapegrad";
  const BpeTokenizer t = BpeTokenizer::from_tokenizer_json(train_case_tokenizer(c).to_tokenizer_json(), "written");
  const auto& texts = c["stress_texts"];
  const auto& ids = c["hf_ids_of_tapegrad_file"];
  ASSERT_EQ(texts.size(), ids.size());
  for (size_t i = 0; i < texts.size(); ++i) {
    const std::string text = texts[i];
    EXPECT_EQ(t.encode(text), ids[i].get<std::vector<int32_t>>()) << text;
    EXPECT_EQ(t.decode(t.encode(text)), text);
  }
}

}  // namespace
}  // namespace tg::models
