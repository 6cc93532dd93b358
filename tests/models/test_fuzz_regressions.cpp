// Inputs tools/fuzz.sh found that crashed a parser, each kept in fuzz/corpus/<target>/regress_*
// and checked here to be rejected with a tg::Error that names the problem.
#include <gtest/gtest.h>

#include <string>

#include "models/tokenizers/char_tokenizer.h"
#include "nn/file_io.h"
#include "test_util.h"

namespace tg {
namespace {

std::string corpus_file(const std::string& target, const std::string& name) {
  return read_file_bytes(std::string(TAPEGRAD_SOURCE_DIR) + "/fuzz/corpus/" + target + "/" + name);
}

// {"type": [20, 0, ...]}: nlohmann's json::value("type", "") threw its own type_error, which
// escaped from_json (and terminated the fuzzer) instead of a tg::Error.
TEST(FuzzRegressions, CharTokenizerTypeNotAString) {
  std::string text = corpus_file("fuzz_char_tokenizer", "regress_type_not_string.json");
  EXPECT_TG_ERROR(models::CharTokenizer::from_json(text, "t.json"), "t.json: \"type\" must be \"char\"");
  EXPECT_TG_ERROR(models::CharTokenizer::from_json("{\"type\": 1, \"bytes\": [65]}", "t.json"), "\"type\"");
  EXPECT_TG_ERROR(models::CharTokenizer::from_json("{\"bytes\": [65]}", "t.json"), "\"type\"");
}

}  // namespace
}  // namespace tg
