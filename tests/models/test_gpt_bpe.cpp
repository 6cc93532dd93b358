// A GPT speaking a byte-level BPE: trained on a text encoded with a tokenizer.json or GPT-2's
// .tiktoken, the checkpoint carries the tokenizer's file, evaluation and sampling speak it, and a
// tokenizer that is not the model's is refused naming both.
#include <filesystem>
#include <fstream>

#include <nlohmann/json.hpp>

#include "models/decoders/generate.h"
#include "models/gpt/gpt_checkpoint.h"
#include "models/training/gpt_train.h"
#include "models/data/token_data.h"
#include "models/tokenizers/bpe_tokenizer.h"
#include "nn/file_io.h"
#include "test_util.h"

namespace tg {
namespace {

namespace fs = std::filesystem;
using testing::TempDir;

const std::string kBpeDir = std::string(TAPEGRAD_SOURCE_DIR) + "/tests/models/fixtures/";
const std::string kShakespeareJson = kBpeDir + "bpe_shakespeare.json";  // HF-trained, 1000 tokens
const std::string kGpt2Tiktoken = kBpeDir + "gpt2.tiktoken";            // GPT-2's ranks

std::string write_text(const TempDir& dir) {
  std::string text;
  for (int i = 0; i < 120; ++i) text += fmt::format("ROMEO: line {} of the play, to be or not to be.\n", i * 7 % 23);
  const std::string path = dir / "corpus.txt";
  std::ofstream(path) << text;
  return path;
}

models::GPTTrainOptions tiny_bpe(const std::string& data, const std::string& out, const std::string& tokenizer) {
  models::GPTTrainOptions o;
  o.data = data;
  o.out = out;
  o.tokenizer = tokenizer;
  o.n_layer = 1, o.n_head = 2, o.n_embd = 16, o.block_size = 16, o.optim.batch_size = 4;
  o.optim.max_iters = 4, o.optim.lr_decay_iters = 4, o.optim.eval_interval = 4, o.optim.eval_iters = 1;
  o.optim.warmup_iters = 1, o.optim.progress = false, o.optim.threads = 1;
  return o;
}

TEST(GPTBpe, TrainsOnATokenizerJsonAndTheCheckpointCarriesItByteForByte) {
  TempDir dir;
  const std::string data = write_text(dir);
  models::train_gpt(tiny_bpe(data, dir / "ckpt", kShakespeareJson));
  const models::LoadedGPT loaded = models::load_gpt(dir / "ckpt");
  const models::GPTTokenizer given = models::GPTTokenizer::load(kShakespeareJson);
  EXPECT_EQ(loaded.config.vocab_size, given.vocab_size());  // the tokenizer's vocabulary, unpadded
  EXPECT_EQ(read_file_bytes(dir / "ckpt/tokenizer.json"), read_file_bytes(kShakespeareJson));
  std::optional<models::GPTTokenizer> own = models::load_tokenizer(dir / "ckpt", loaded.config.vocab_size);
  ASSERT_TRUE(own && own->bpe());
  EXPECT_TRUE(own->same_as(given));

  // Evaluation of the text equals evaluation of its .bin encoded by the same tokenizer.
  const std::string text = read_file_bytes(data);
  const std::vector<int64_t> ids = own->encode(text);
  EXPECT_EQ(own->decode(ids), text);
  data::write_tokens(dir / "corpus.bin", ids);
  EXPECT_EQ(models::evaluate_gpt(dir / "ckpt", data, 16, 4), models::evaluate_gpt(dir / "ckpt", dir / "corpus.bin", 16, 4));
  // --tokenizer naming the same tokenizer is accepted; a .bin trains as the text did.
  EXPECT_EQ(models::evaluate_gpt(dir / "ckpt", data, 16, 4, {}, kShakespeareJson),
            models::evaluate_gpt(dir / "ckpt", data, 16, 4));
  models::train_gpt(tiny_bpe(dir / "corpus.bin", dir / "from_bin", kShakespeareJson));
  EXPECT_EQ(read_file_bytes(dir / "from_bin/tokenizer.json"), read_file_bytes(kShakespeareJson));
}

TEST(GPTBpe, PacksDocumentsOfATextAtItsEndOfTextId) {
  TempDir dir;
  std::string text;
  for (int i = 0; i < 60; ++i) text += fmt::format("ROMEO: scene {}, to be or not to be.<|endoftext|>", i % 7);
  std::ofstream(dir / "docs.txt") << text;
  models::GPTTrainOptions o = tiny_bpe(dir / "docs.txt", dir / "ckpt", kShakespeareJson);
  o.pack_documents = true;
  const models::GPTTrainResult r = models::train_gpt(o);
  // bpe_shakespeare.json's own <|endoftext|> is id 0 (GPT-2's 50256 is the default otherwise).
  EXPECT_NE(r.packing.find("split after end-of-text id 0"), std::string::npos) << r.packing;
}

TEST(GPTBpe, SamplesTheSameTextWithAndWithoutTheKVCache) {
  TempDir dir;
  models::train_gpt(tiny_bpe(write_text(dir), dir / "ckpt", kShakespeareJson));
  models::LoadedGPT loaded = models::load_gpt(dir / "ckpt");
  const models::GPTTokenizer tok = *models::load_tokenizer(dir / "ckpt", loaded.config.vocab_size);
  const std::vector<int64_t> prompt = tok.encode("ROMEO: to be");
  ASSERT_GT(prompt.size(), 1u);
  std::string texts[2];
  for (bool cache : {false, true}) {
    Generator gen(7);
    std::vector<int64_t> out = models::generate(*loaded.model, prompt, 24, 1.0, 0, gen, cache);
    ASSERT_EQ(out.size(), prompt.size() + 24);
    texts[cache] = tok.decode(out);
  }
  EXPECT_EQ(texts[0], texts[1]);
  EXPECT_TRUE(texts[1].starts_with("ROMEO: to be")) << texts[1];
}

TEST(GPTBpe, TiktokenIsCopiedUnderItsOwnNameAndEncodesOrdinary) {
  TempDir dir;
  const std::string data = dir / "special.txt";
  std::string text;
  for (int i = 0; i < 40; ++i) text += "to be or not to be<|endoftext|>that is the question\n";
  std::ofstream(data) << text;
  models::GPTTrainOptions o = tiny_bpe(data, dir / "ckpt", kGpt2Tiktoken);
  o.optim.max_iters = 1, o.optim.lr_decay_iters = 1, o.optim.eval_interval = 1;
  models::train_gpt(o);
  EXPECT_EQ(models::load_gpt_config(dir / "ckpt").vocab_size, 50257);  // 50256 ranks + <|endoftext|>
  EXPECT_FALSE(fs::exists(dir / "ckpt/tokenizer.json"));
  EXPECT_EQ(read_file_bytes(dir / "ckpt/tokenizer.tiktoken"), read_file_bytes(kGpt2Tiktoken));
  const models::GPTTokenizer own = *models::load_tokenizer(dir / "ckpt", 50257);
  // As `tokenizer encode` does a .tiktoken (tiktoken's encode_ordinary): <|endoftext|> is text.
  const std::vector<int64_t> ids = own.encode("a<|endoftext|>");
  EXPECT_EQ(std::count(ids.begin(), ids.end(), 50256), 0);
  EXPECT_GT(ids.size(), 2u);
}

TEST(GPTBpe, AHuggingFaceDirectorysVocabAndMergesAreReadAndBecomeTokenizerJson) {
  TempDir dir;
  const std::string data = write_text(dir);
  models::train_gpt(tiny_bpe(data, dir / "ckpt", kShakespeareJson));
  // A Hugging Face GPT-2 directory: config.json, model.safetensors, vocab.json + merges.txt.
  const models::BpeTokenizer hf = models::BpeTokenizer::load(kShakespeareJson);
  const nlohmann::json written = nlohmann::json::parse(hf.to_tokenizer_json());
  fs::create_directories(dir / "hf");
  for (const char* f : {"config.json", "model.safetensors"}) fs::copy_file(fs::path(dir / "ckpt") / f, fs::path(dir / "hf") / f);
  std::ofstream(dir / "hf/vocab.json") << written["model"]["vocab"].dump();
  std::string merges_txt = "#version: 0.2\n";
  for (const auto& m : written["model"]["merges"]) merges_txt += m.get<std::string>() + "\n";
  std::ofstream(dir / "hf/merges.txt") << merges_txt;
  std::optional<models::GPTTokenizer> t = models::load_tokenizer(dir / "hf", 1000);
  ASSERT_TRUE(t && t->bpe());
  const std::string s = "ROMEO: what light through yonder window breaks?";
  const std::vector<int32_t> want = hf.encode(s);
  EXPECT_EQ(t->encode(s), std::vector<int64_t>(want.begin(), want.end()));
  EXPECT_EQ(models::evaluate_gpt(dir / "hf", data, 16, 4), models::evaluate_gpt(dir / "ckpt", data, 16, 4));
  // Fine-tuned from it: the checkpoint holds a tokenizer.json (vocab.json is an encoder's file).
  models::GPTTrainOptions more = tiny_bpe(data, dir / "tuned", "");
  more.init_from = dir / "hf";
  models::train_gpt(more);
  EXPECT_FALSE(fs::exists(dir / "tuned/vocab.json"));
  std::optional<models::GPTTokenizer> tuned = models::load_tokenizer(dir / "tuned", 1000);
  ASSERT_TRUE(tuned && tuned->bpe());
  EXPECT_TRUE(tuned->same_as(*t));
}

TEST(GPTBpe, AForeignTokenizerIsRefusedNamingBoth) {
  TempDir dir;
  const std::string data = write_text(dir);
  models::train_gpt(tiny_bpe(data, dir / "ckpt", kShakespeareJson));
  // The checkpoint's own and a different --tokenizer: refused, both named.
  EXPECT_TG_ERROR(models::evaluate_gpt(dir / "ckpt", data, 16, 4, {}, kGpt2Tiktoken),
                  "`tokenizer` " + kGpt2Tiktoken + " differs from the checkpoint's own tokenizer");
  models::GPTTrainOptions more = tiny_bpe(data, dir / "more", kGpt2Tiktoken);
  more.init_from = dir / "ckpt";
  EXPECT_TG_ERROR(models::train_gpt(more), "differs from the checkpoint's own tokenizer");
  // Without its own, a tokenizer of another size than the model's embedding: refused.
  fs::create_directories(dir / "bare");
  for (const char* f : {"config.json", "model.safetensors"}) fs::copy_file(fs::path(dir / "ckpt") / f, fs::path(dir / "bare") / f);
  EXPECT_TG_ERROR(models::evaluate_gpt(dir / "bare", data, 16, 4, {}, kGpt2Tiktoken),
                  kGpt2Tiktoken + " has 50257 tokens, but the model's embedding has 1000 rows");
  EXPECT_TG_ERROR(models::evaluate_gpt(dir / "bare", data, 16, 4), "a text file needs a tokenizer");
  // With the right one it evaluates as the checkpoint did.
  EXPECT_EQ(models::evaluate_gpt(dir / "bare", data, 16, 4, {}, kShakespeareJson),
            models::evaluate_gpt(dir / "ckpt", data, 16, 4));
  // A .bin holding an id beyond the tokenizer.
  data::write_tokens(dir / "big.bin", std::vector<int64_t>(40, 1500));
  EXPECT_TG_ERROR(models::train_gpt(tiny_bpe(dir / "big.bin", dir / "x", kShakespeareJson)),
                  "is id 1500, beyond the vocabulary of " + kShakespeareJson);
  EXPECT_TG_ERROR(models::train_gpt(tiny_bpe(data, dir / "y", dir / "nothing.json")),
                  "`tokenizer`: " + (dir / "nothing.json") + ": no such file");
}

}  // namespace
}  // namespace tg
