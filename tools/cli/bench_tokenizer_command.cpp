// `tapegrad bench tokenizer`: the BPE encoder's throughput on a text file, without process
// start-up, the tokenizer's loading or file I/O in the time (bench/bpe_compare.py sets it beside
// tiktoken and Hugging Face tokenizers).
//   bench tokenizer --tokenizer PATH --input TEXTFILE [--threads N] [--reps R] [--pattern P] [--json]
// One untimed encode first (its ids' count and FNV-1a hash are printed, for a check against the
// references), then R timed encodes of the whole text; the median and the fastest are reported.
#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <thread>

#include "autograd/error.h"
#include "models/tokenizers/bpe_tokenizer.h"
#include "models/tokenizers/chunked_encode.h"
#include "nn/file_io.h"
#include "tools/cli/commands.h"

namespace tg::cli {
namespace {

struct BenchTokenizerArgs {
  std::string tokenizer, input, pattern = "gpt2";
  int threads = 1, reps = 5;
  bool json = false;
};

uint64_t fnv1a_of_ids(const std::vector<int32_t>& ids) {
  uint64_t h = 0xCBF29CE484222325ull;
  for (int32_t id : ids)
    for (int k = 0; k < 4; ++k) h = (h ^ ((uint32_t(id) >> (8 * k)) & 0xFF)) * 0x100000001B3ull;
  return h;
}

int run_bench_tokenizer(const BenchTokenizerArgs& a) {
  const bool tiktoken = a.tokenizer.ends_with(".tiktoken");
  TG_CHECK(tiktoken || a.pattern == "gpt2", "--pattern applies to a .tiktoken file only");
  auto t0 = std::chrono::steady_clock::now();
  models::BpeTokenizer t = [&] {
    try {
      return models::BpeTokenizer::load(a.tokenizer, a.pattern);
    } catch (const Error& e) {
      fail("--tokenizer: {}", e.what());
    }
  }();
  const double load_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  const std::string text = read_file_bytes(a.input);
  const int threads = a.threads > 0 ? a.threads : int(std::max(1u, std::thread::hardware_concurrency()));
  auto encode = [&] { return models::encode_in_chunks(t, text, tiktoken, threads); };
  const std::vector<int32_t> ids = encode();
  std::vector<double> seconds;
  for (int r = 0; r < a.reps; ++r) {
    const auto start = std::chrono::steady_clock::now();
    const std::vector<int32_t> again = encode();
    seconds.push_back(std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
    TG_CHECK(again == ids, "bench tokenizer: repetition {} gave other ids than the first encode", r);
  }
  std::sort(seconds.begin(), seconds.end());
  const double median = seconds[seconds.size() / 2], mb = double(text.size()) / 1e6;
  if (a.json) {
    fmt::print("{{\"bytes\": {}, \"tokens\": {}, \"fnv1a\": {}, \"threads\": {}, \"median_s\": {:.6f}, \"min_s\": {:.6f}, "
               "\"load_s\": {:.6f}}}\n",
               text.size(), ids.size(), fnv1a_of_ids(ids), threads, median, seconds.front(), load_s);
  } else {
    fmt::print("{}: {} bytes -> {} tokens (fnv1a {:016x}) on {} thread{}: median {:.4f} s ({:.1f} MB/s), fastest "
               "{:.4f} s, over {} runs; loading the tokenizer took {:.3f} s\n",
               a.input, text.size(), ids.size(), fnv1a_of_ids(ids), threads, threads == 1 ? "" : "s", median,
               mb / median, seconds.front(), a.reps, load_s);
  }
  return 0;
}

}  // namespace

void add_bench_tokenizer_command(CLI::App& bench) {
  auto a = std::make_shared<BenchTokenizerArgs>();
  CLI::App* cmd = bench.add_subcommand("tokenizer", "BPE encoding throughput on a text file (median of --reps)");
  cmd->add_option("--tokenizer", a->tokenizer,
                  "A tokenizer.json, a .tiktoken file, or a directory holding tokenizer.json or vocab.json + merges.txt")
      ->required();
  cmd->add_option("--input", a->input, "The text file to encode (all of it, each repetition)")->required();
  cmd->add_option("--pattern", a->pattern, "A .tiktoken file's pre-tokenization: gpt2, cl100k, o200k or a regex")
      ->capture_default_str();
  cmd->add_option("--threads", a->threads, "Threads (0 = all cores)")->check(CLI::Range(0, 1024))->capture_default_str();
  cmd->add_option("--reps", a->reps, "Timed repetitions after one untimed encode")
      ->check(CLI::Range(1, 1000))
      ->capture_default_str();
  cmd->add_flag("--json", a->json, "Print one JSON object instead of a sentence");
  cmd->callback([a] { throw CLI::RuntimeError(run_bench_tokenizer(*a)); });
}

}  // namespace tg::cli
