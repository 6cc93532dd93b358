// `tapegrad tokenizer encode|decode` run in-process: ids printed and as a .bin, decoded back
// byte for byte, and the flag errors.
#include <fstream>

#include "models/tokenizers/bpe_tokenizer.h"
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

}  // namespace
}  // namespace tg
