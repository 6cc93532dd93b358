// `tapegrad tokenizer train|encode|decode`: byte-level BPE (models/tokenizers/) from the command line.
//   train --data TEXTFILE... --vocab-size N --out tokenizer.json [--special-tokens A,B]
//         [--min-frequency N] [--threads N]
//     A BPE learned from the files as Hugging Face's BpeTrainer learns it (bpe_trainer.h),
//     written as a tokenizer.json that HF's Tokenizer.from_file loads. Text must be UTF-8.
//   encode --tokenizer PATH --input TEXTFILE [--out FILE.bin] [--dtype uint16|uint32]
//          [--pattern gpt2|cl100k|o200k|REGEX] [--threads N]
//     The whole file as HF's Tokenizer.encode(text).ids (no BOS/EOS); for a .tiktoken file as
//     tiktoken's encode_ordinary. Without --out: the ids space-separated on one line. With --out:
//     nanoGPT's train.bin (little-endian uint16 when the vocabulary fits, else uint32).
//   decode --tokenizer PATH --input IDSFILE [--dtype uint16|uint32]
//     IDSFILE: ids as encode prints them (whitespace-separated), or a .bin token file. Prints the
//     text byte for byte, no added newline.
#include <fmt/format.h>
#include <fmt/ranges.h>

#include <charconv>
#include <filesystem>
#include <optional>
#include <cstdio>
#include <thread>
#include <utility>

#include "autograd/error.h"
#include "models/tokenizers/bpe_tokenizer.h"
#include "models/tokenizers/bpe_trainer.h"
#include "models/tokenizers/chunked_encode.h"
#include "models/training/progress.h"
#include "nn/file_checks.h"
#include "nn/file_io.h"
#include "ops/kernels/parallel.h"
#include "tools/cli/commands.h"

namespace tg::cli {
namespace {

using models::BpeTokenizer;

struct TokenizerArgs {
  std::string tokenizer, input, out, dtype, pattern = "gpt2";
  int threads = 0;
  bool pattern_given = false;
};

bool is_tiktoken(const std::string& path) { return path.size() > 9 && path.ends_with(".tiktoken"); }

// The width of a token in a .bin file: --dtype, or the smallest that holds the vocabulary.
int token_bytes(const std::string& dtype, int64_t vocab_size) {
  if (dtype.empty()) return vocab_size <= 65536 ? 2 : 4;
  TG_CHECK(dtype == "uint16" || dtype == "uint32", "--dtype must be uint16 or uint32, got '{}'", dtype);
  TG_CHECK(dtype == "uint32" || vocab_size <= 65536,
           "--dtype uint16 cannot hold this vocabulary of {} tokens (ids up to {}); use --dtype uint32", vocab_size,
           vocab_size - 1);
  return dtype == "uint16" ? 2 : 4;
}

BpeTokenizer load(const TokenizerArgs& a) {
  TG_CHECK(!a.pattern_given || is_tiktoken(a.tokenizer),
           "--pattern applies to a .tiktoken file only (a tokenizer.json or vocab.json carries its own pre-tokenization)");
  try {
    return BpeTokenizer::load(a.tokenizer, a.pattern);
  } catch (const Error& e) {
    fail("--tokenizer: {}", e.what());
  }
}

int run_encode(const TokenizerArgs& a) {
  TG_CHECK(a.threads >= 0, "--threads must be >= 0 (0 = all cores), got {}", a.threads);
  const BpeTokenizer t = load(a);
  const int width = token_bytes(a.dtype, t.vocab_size());
  if (!a.out.empty()) {
    check_output_file(a.out, "--out");
    for (const auto& [flag, path] : {std::pair{"--input", a.input}, {"--tokenizer", a.tokenizer}})
      TG_CHECK(!same_or_inside(a.out, path), "--out: {} is the {} file (or inside its directory); the ids would "
                                             "write over it",
               a.out, flag);
  }
  const std::string text = read_file_bytes(a.input);
  const int threads = a.threads > 0 ? a.threads : int(std::max(1u, std::thread::hardware_concurrency()));
  std::vector<int32_t> ids;
  if (a.out.empty()) {
    ids = models::encode_in_chunks(t, text, is_tiktoken(a.tokenizer), threads);
    std::string line;
    line.reserve(ids.size() * 6);
    for (size_t i = 0; i < ids.size(); ++i) fmt::format_to(std::back_inserter(line), "{}{}", i ? " " : "", ids[i]);
    line += '\n';
    std::fwrite(line.data(), 1, line.size(), stdout);
    return 0;
  }
  ProgressBar bar(int64_t(std::max<size_t>(text.size(), 1)));
  ids = models::encode_in_chunks(t, text, is_tiktoken(a.tokenizer), threads, [&](size_t done, size_t) {
    bar.update(int64_t(std::max<size_t>(done, 1)), "bytes encoded");
  });
  bar.finish();
  std::string bytes(ids.size() * width, '\0');
  for (size_t i = 0; i < ids.size(); ++i)
    for (int k = 0; k < width; ++k) bytes[i * width + k] = char((uint32_t(ids[i]) >> (8 * k)) & 0xFF);
  write_file_atomically(a.out, bytes);
  fmt::print(stderr, "wrote {}: {} tokens as {} ({} bytes of text)\n", a.out, ids.size(), width == 2 ? "uint16" : "uint32",
             text.size());
  return 0;
}

int run_decode(const TokenizerArgs& a) {
  const BpeTokenizer t = load(a);
  const std::string data = read_file_bytes(a.input);
  std::vector<int32_t> ids;
  if (a.input.ends_with(".bin")) {
    const int width = token_bytes(a.dtype, t.vocab_size());
    TG_CHECK(data.size() % width == 0, "{}: {} bytes is not a whole number of {}-byte tokens", a.input, data.size(), width);
    ids.resize(data.size() / width);
    for (size_t i = 0; i < ids.size(); ++i) {
      uint32_t v = 0;
      for (int k = 0; k < width; ++k) v |= uint32_t(static_cast<unsigned char>(data[i * width + k])) << (8 * k);
      TG_CHECK(v < uint32_t(t.vocab_size()), "{}: token {} is id {}, beyond the vocabulary of {}", a.input, i, v,
               t.vocab_size());
      ids[i] = int32_t(v);
    }
  } else {
    const char* p = data.data();
    const char* end = p + data.size();
    auto space = [](char c) { return c == ' ' || c == '\n' || c == '\t' || c == '\r'; };
    while (p < end) {
      if (space(*p)) {
        ++p;
        continue;
      }
      int64_t v = -1;
      const auto [q, ec] = std::from_chars(p, end, v);
      TG_CHECK(ec == std::errc() && (q == end || space(*q)) && v >= 0 && v < t.vocab_size(),
               "{}: at byte {}: '{}' is not an id in [0, {})", a.input, p - data.data(),
               std::string(p, std::find_if(p, end, space)).substr(0, 40), t.vocab_size());
      ids.push_back(int32_t(v));
      p = q;
    }
  }
  std::string text;
  try {
    text = t.decode(ids);
  } catch (const Error& e) {
    fail("{}: {}", a.input, e.what());
  }
  std::fwrite(text.data(), 1, text.size(), stdout);
  std::fflush(stdout);
  return 0;
}

struct TrainArgs {
  std::vector<std::string> data, special_tokens;
  int64_t vocab_size = 0;
  uint64_t min_frequency = 0;
  std::string out;
  int threads = 0;
};

int run_train(const TrainArgs& a) {
  TG_CHECK(a.threads >= 0, "--threads must be >= 0 (0 = all cores), got {}", a.threads);
  if (a.threads > 0) set_num_threads(a.threads);
  models::BpeTrainerOptions options;
  options.vocab_size = a.vocab_size;
  options.min_frequency = a.min_frequency;
  for (const std::string& list : a.special_tokens)  // each --special-tokens given: "A,B,..." ("": none)
    for (size_t at = 0; !list.empty() && at <= list.size();) {
      const size_t comma = std::min(list.find(',', at), list.size());
      TG_CHECK(comma > at, "--special-tokens: an empty token in '{}' (tokens are separated by commas)", list);
      options.special_tokens.push_back(list.substr(at, comma - at));
      at = comma + 1;
    }
  std::optional<models::BpeTrainer> trainer;
  try {
    trainer.emplace(options);
  } catch (const Error& e) {
    fail("--vocab-size/--special-tokens: {}", e.what());
  }
  size_t total = 0;
  for (const std::string& path : a.data) {
    check_input_file(path, "--data");
    std::error_code ec;
    const auto size = std::filesystem::file_size(path, ec);
    total += ec ? 0 : size_t(size);
  }
  TG_CHECK(total > 0, "--data: {} {} no text to learn from (empty)", fmt::join(a.data, ", "),
           a.data.size() == 1 ? "holds" : "hold");
  check_output_file(a.out, "--out");
  for (const std::string& path : a.data)
    TG_CHECK(!same_or_inside(a.out, path), "--out: {} is the --data file {}; the tokenizer would be written over the text",
             a.out, path);

  ProgressBar counting(int64_t(std::max<size_t>(total, 1)));
  size_t before = 0;
  for (const std::string& path : a.data) {
    const std::string text = read_file_bytes(path);
    trainer->feed(text, path, [&](size_t done) {
      counting.update(int64_t(std::max<size_t>(before + done, 1)), "bytes read into words");
    });
    before += text.size();
  }
  counting.finish();
  const models::BpeWordCounter& words = trainer->word_counter();
  fmt::print(stderr, "{} bytes: {} words, {} distinct\n", total, words.total_words(), words.distinct_words());
  std::optional<ProgressBar> merging;
  const models::BpeTokenizer t = trainer->train([&](int64_t done, int64_t most) {
    if (!merging) merging.emplace(std::max<int64_t>(most, 1));
    merging->update(std::max<int64_t>(done, 1), "tokens learned");
  });
  if (merging) merging->finish();
  t.save_tokenizer_json(a.out);
  fmt::print(stderr, "wrote {}: {} tokens ({} merges, {} special)\n", a.out, t.vocab_size(), t.model().merges().size(),
             t.added_tokens().size());
  return 0;
}

}  // namespace

void add_tokenizer_command(CLI::App& app) {
  CLI::App* tok = app.add_subcommand("tokenizer", "Byte-level BPE (GPT-2, tiktoken, Hugging Face tokenizer.json)");
  tok->require_subcommand(1);
  auto t = std::make_shared<TrainArgs>();
  CLI::App* train = tok->add_subcommand("train", "Text files -> a byte-level BPE tokenizer.json (as HF's BpeTrainer)");
  train->add_option("--data", t->data, "The text files to learn from (UTF-8)")->required();
  train->add_option("--vocab-size", t->vocab_size, "Tokens in the vocabulary, the 256 bytes and the specials included")
      ->required();
  train->add_option("--out", t->out, "The tokenizer.json to write")->required();
  train->add_option("--special-tokens", t->special_tokens,
                    "Special tokens, comma-separated (e.g. \"<|endoftext|>\"): the first ids, split out when encoding");
  train->add_option("--min-frequency", t->min_frequency, "Merge no pair occurring fewer times")->capture_default_str();
  train->add_option("--threads", t->threads, "Threads (0 = all cores)")->capture_default_str();
  train->callback([t] { throw CLI::RuntimeError(run_train(*t)); });
  auto a = std::make_shared<TokenizerArgs>();
  auto common = [&](CLI::App* c) {
    c->add_option("--tokenizer", a->tokenizer,
                  "A tokenizer.json, a .tiktoken file, or a directory holding tokenizer.json or vocab.json + merges.txt")
        ->required();
    c->add_option("--pattern", a->pattern, "A .tiktoken file's pre-tokenization: gpt2, cl100k, o200k or a regex")
        ->capture_default_str()
        ->each([a](const std::string&) { a->pattern_given = true; });
    c->add_option("--dtype", a->dtype, "uint16 or uint32: the width of a .bin token (default: uint16 when it fits)");
  };
  CLI::App* enc = tok->add_subcommand("encode", "Text file -> ids (printed, or nanoGPT's .bin with --out)");
  common(enc);
  enc->add_option("--input", a->input, "The text file to encode (all of it)")->required();
  enc->add_option("--out", a->out, "Write the ids here as a .bin (little-endian uint16/uint32) instead of printing");
  enc->add_option("--threads", a->threads, "Threads (0 = all cores)")->capture_default_str();
  enc->callback([a] { throw CLI::RuntimeError(run_encode(*a)); });
  CLI::App* dec = tok->add_subcommand("decode", "Ids (whitespace-separated, or a .bin) -> the text, byte for byte");
  common(dec);
  dec->add_option("--input", a->input, "The ids: as encode prints them, or a .bin token file")->required();
  dec->callback([a] { throw CLI::RuntimeError(run_decode(*a)); });
}

}  // namespace tg::cli
