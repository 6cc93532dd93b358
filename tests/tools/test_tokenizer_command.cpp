// `tapegrad tokenizer train|encode|decode` run in-process: a trained tokenizer.json that encodes
// as the trainer's tokenizer does, ids printed and as a .bin, decoded back byte for byte, and the
// flag errors.
#include <fstream>

#include "models/tokenizers/bpe_tokenizer.h"
#include "models/tokenizers/bpe_trainer.h"
#include "nn/file_io.h"
#include "test_util.h"
#include "tools/cli/run.h"

namespace tg {
namespace {

const std::string kTiktoken = std::string(TAPEGRAD_SOURCE_DIR) + "/tests/models/fixtures/gpt2.tiktoken";
const std::string kTrained = std::string(TAPEGRAD_SOURCE_DIR) + "/tests/models/fixtures/bpe_shakespeare.json";

// Runs `tapegrad args...`; returns the exit status, stdout in `out`, stderr in `err`.
int tapegrad(const std::vector<std::string>& args, std::string& out, std::string& err) {
  std::ostringstream errs;
  ::testing::internal::CaptureStdout();
  const int status = cli::run(args, errs);
  std::fflush(stdout);
  out = ::testing::internal::GetCapturedStdout();
  err = errs.str();
  return status;
}

TEST(TokenizerCommand, EncodePrintsIdsAndDecodeGivesTheTextBack) {
  testing::TempDir dir("tokcmd");
  const std::string text = "Hello world, caf\xc3\xa9 \xff\xfe and <|endoftext|> twice  \n";
  std::ofstream(dir.file("in.txt"), std::ios::binary) << text;
  std::string out, err;
  ASSERT_EQ(tapegrad({"tokenizer", "encode", "--tokenizer", kTiktoken, "--input", dir.file("in.txt")}, out, err), 0) << err;
  const std::vector<int32_t> ids = models::BpeTokenizer::load(kTiktoken).encode_ordinary(text);
  std::string expected;
  for (size_t i = 0; i < ids.size(); ++i) {
    if (i > 0) expected += ' ';
    expected += std::to_string(ids[i]);
  }
  EXPECT_EQ(out, expected + "\n");
  std::ofstream(dir.file("ids.txt")) << out;
  ASSERT_EQ(tapegrad({"tokenizer", "decode", "--tokenizer", kTiktoken, "--input", dir.file("ids.txt")}, out, err), 0) << err;
  EXPECT_EQ(out, text);
}

TEST(TokenizerCommand, BinRoundTripsAsUint16AndUint32) {
  testing::TempDir dir("tokcmd");
  const std::string text = "To be, or not to be<|endoftext|>that is the question:\n";
  std::ofstream(dir.file("in.txt"), std::ios::binary) << text;
  const std::vector<int32_t> ids = models::BpeTokenizer::load(kTrained).encode(text);
  for (const std::string dtype : {"uint16", "uint32"}) {
    std::string out, err;
    ASSERT_EQ(tapegrad({"tokenizer", "encode", "--tokenizer", kTrained, "--input", dir.file("in.txt"), "--out",
                        dir.file("t.bin"), "--dtype", dtype},
                       out, err),
              0)
        << err;
    const std::string bin = read_file_bytes(dir.file("t.bin"));
    const size_t width = dtype == "uint16" ? 2 : 4;
    ASSERT_EQ(bin.size(), ids.size() * width);
    EXPECT_EQ(static_cast<unsigned char>(bin[0]) | static_cast<unsigned char>(bin[1]) << 8, ids[0]);
    ASSERT_EQ(tapegrad({"tokenizer", "decode", "--tokenizer", kTrained, "--input", dir.file("t.bin"), "--dtype", dtype},
                       out, err),
              0)
        << err;
    EXPECT_EQ(out, text);
  }
}

TEST(TokenizerCommand, BadInputNamesTheFlagOrFile) {
  testing::TempDir dir("tokcmd");
  std::ofstream(dir.file("in.txt")) << "hi";
  std::ofstream(dir.file("ids.txt")) << "1 2 99999999";
  std::ofstream(dir.file("odd.bin")) << "abc";
  // A vocabulary beyond uint16: an added token with id 70000.
  std::ofstream(dir.file("big.json")) << R"({"model": {"type": "BPE", "vocab": {"a": 0}, "merges": []},
      "added_tokens": [{"id": 70000, "content": "<big>", "special": true}]})";
  struct Case {
    std::vector<std::string> args;
    std::string message;
  };
  const std::vector<Case> cases = {
      {{"tokenizer", "encode", "--tokenizer", dir.file("none.json"), "--input", dir.file("in.txt")}, "--tokenizer: "},
      {{"tokenizer", "encode", "--tokenizer", dir.file("big.json"), "--input", dir.file("in.txt"), "--out",
        dir.file("o.bin"), "--dtype", "uint16"},
       "--dtype uint16 cannot hold this vocabulary of 70001 tokens"},
      {{"tokenizer", "encode", "--tokenizer", kTrained, "--input", dir.file("in.txt"), "--dtype", "int8"},
       "--dtype must be uint16 or uint32"},
      {{"tokenizer", "decode", "--tokenizer", kTrained, "--input", dir.file("ids.txt")},
       "ids.txt: at byte 4: '99999999' is not an id in [0, 1000)"},
      {{"tokenizer", "decode", "--tokenizer", kTrained, "--input", dir.file("odd.bin")},
       "odd.bin: 3 bytes is not a whole number of 2-byte tokens"},
      {{"tokenizer", "encode", "--tokenizer", kTiktoken, "--pattern", "(", "--input", dir.file("in.txt")},
       "the regex does not compile"},
      {{"tokenizer", "encode", "--tokenizer", kTrained, "--pattern", "cl100k", "--input", dir.file("in.txt")},
       "--pattern applies to a .tiktoken file only"},
  };
  for (const Case& c : cases) {
    std::string out, err;
    EXPECT_EQ(tapegrad(c.args, out, err), 1) << c.message;
    EXPECT_NE(err.find(c.message), std::string::npos) << "expected '" << c.message << "' in: " << err;
  }
}

TEST(TokenizerCommand, TrainWritesATokenizerJsonThatEncodes) {
  testing::TempDir dir("tokcmd");
  std::string text;
  for (int i = 0; i < 200; ++i)
    text += fmt::format("To be, or not to be{} that is the question {}: nobler{}\n", i % 2 ? "," : ":", i % 9 * 37,
                        i % 5 ? " minds" : "");
  std::ofstream(dir.file("a.txt"), std::ios::binary) << text;
  std::ofstream(dir.file("b.txt"), std::ios::binary) << "Whether 'tis nobler in the mind to suffer\n";
  std::string out, err;
  ASSERT_EQ(tapegrad({"tokenizer", "train", "--data", dir.file("a.txt"), dir.file("b.txt"), "--vocab-size", "300", "--out",
                      dir.file("tok.json"), "--special-tokens", "<|endoftext|>,<pad>"},
                     out, err),
            0)
      << err;
  const models::BpeTokenizer t = models::BpeTokenizer::load(dir.file("tok.json"));
  EXPECT_EQ(t.vocab_size(), 300);
  EXPECT_EQ(t.model().merges().size(), 300u - 256 - 2);
  ASSERT_EQ(t.added_tokens().size(), 2u);
  EXPECT_EQ(t.added_tokens()[0].content, "<|endoftext|>");
  EXPECT_EQ(t.added_tokens()[1].content, "<pad>");
  // The same as the trainer run here on both files' words.
  models::BpeTrainer trainer(models::BpeTrainerOptions{.vocab_size = 300, .special_tokens = {"<|endoftext|>", "<pad>"}});
  trainer.feed(text, "a");
  trainer.feed(read_file_bytes(dir.file("b.txt")), "b");
  EXPECT_EQ(trainer.train().model().merges(), t.model().merges());
  // `encode` with the written file.
  const std::string probe = "To be<|endoftext|>nobler";
  std::ofstream(dir.file("probe.txt"), std::ios::binary) << probe;
  ASSERT_EQ(tapegrad({"tokenizer", "encode", "--tokenizer", dir.file("tok.json"), "--input", dir.file("probe.txt")}, out,
                     err),
            0)
      << err;
  std::string expected;
  for (int32_t id : t.encode(probe)) {
    if (!expected.empty()) expected += ' ';
    expected += std::to_string(id);
  }
  EXPECT_EQ(out, expected + "\n");
}

TEST(TokenizerCommand, TrainBadInputNamesTheFlagOrFile) {
  testing::TempDir dir("tokcmd");
  std::ofstream(dir.file("in.txt")) << "some text\n";
  std::ofstream(dir.file("latin1.txt"), std::ios::binary) << "ok\ncaf\xe9\n";
  struct Case {
    std::vector<std::string> args;
    std::string message;
  };
  auto train = [&](std::vector<std::string> extra) {
    std::vector<std::string> args = {"tokenizer", "train"};
    args.insert(args.end(), extra.begin(), extra.end());
    return args;
  };
  const std::string in = dir.file("in.txt"), out_json = dir.file("out.json");
  const std::vector<Case> cases = {
      {train({"--data", in, "--vocab-size", "100", "--out", out_json}),
       "--vocab-size/--special-tokens: BPE trainer: a vocabulary of 100 tokens is too small"},
      {train({"--data", in, "--vocab-size", "256", "--out", out_json, "--special-tokens", "<|endoftext|>"}),
       "already make 257"},
      {train({"--data", dir.file("none.txt"), "--vocab-size", "300", "--out", out_json}), "--data"},
      {train({"--data", in, "--vocab-size", "300", "--out", in}), "is the --data file"},
      {train({"--data", in, "--vocab-size", "300", "--out", dir.file("no/such/dir/t.json")}), "--out"},
      {train({"--data", dir.file("latin1.txt"), "--vocab-size", "300", "--out", out_json}),
       "latin1.txt: line 2, byte 4 of the line (byte 6 of the file): invalid UTF-8"},
      {train({"--data", in, "--vocab-size", "300", "--out", out_json, "--special-tokens", "<a>,,<b>"}),
       "--special-tokens: an empty token"},
      {train({"--data", in, "--vocab-size", "300", "--out", out_json, "--threads", "-2"}), "--threads must be >= 0"},
  };
  for (const Case& c : cases) {
    std::string out, err;
    EXPECT_EQ(tapegrad(c.args, out, err), 1) << c.message;
    EXPECT_NE(err.find(c.message), std::string::npos) << "expected '" << c.message << "' in: " << err;
  }
  EXPECT_FALSE(std::filesystem::exists(out_json));  // nothing written on an error
}

}  // namespace
}  // namespace tg
