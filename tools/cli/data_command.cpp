// `tapegrad data listops --out DIR [--train N --val N --test N --min-len N --max-len N
//  --max-depth N --max-args N --seed S]`: writes LRA's ListOps splits (train.tsv, val.tsv,
// test.tsv) with a progress line while generating.
#include <fmt/format.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <filesystem>

#include "autograd/available_memory.h"
#include "autograd/checked_size.h"
#include "autograd/error.h"
#include "models/data/listops.h"
#include "nn/file_checks.h"
#include "tools/cli/commands.h"

namespace tg::cli {
namespace {

struct ListOpsArgs {
  std::string out;
  int64_t train = 96000, val = 2000, test = 2000;  // LRA's split sizes
  int64_t min_len = 500, max_len = 2000;           // LRA's lengths
  int64_t max_depth = 10, max_args = 10;
  uint64_t seed = 0;
};

// The examples are all generated in memory, then written: refuses up front a request that
// cannot fit in memory or on the disk of --out. Each example is longer than --min-len tokens,
// and a token takes at least 2 characters (itself and a space), so N·2·(min_len + 1) bytes of
// text is a floor for both, plus each example's bookkeeping in memory.
void check_room_for_examples(const ListOpsArgs& a, int64_t total) {
  const double text_bytes = double(total) * 2.0 * (double(a.min_len) + 1.0);
  const std::string what = fmt::format("data listops with --train {} --val {} --test {} (examples longer than --min-len {})",
                                       a.train, a.val, a.test, a.min_len);
  check_memory_fits(text_bytes + double(total) * double(sizeof(data::ListOpsExample)), what);
  // The disk: of --out, or of its nearest existing parent when it is still to be created.
  std::error_code ec;
  std::filesystem::path dir = std::filesystem::absolute(a.out, ec);
  while (!std::filesystem::exists(dir, ec) && dir.has_parent_path() && dir.parent_path() != dir) dir = dir.parent_path();
  std::filesystem::space_info disk = std::filesystem::space(dir, ec);
  if (!ec)
    TG_CHECK(text_bytes <= double(disk.available), "--out: {} writes at least {}, more than the {} free on {}", what,
             format_gb(text_bytes), format_gb(double(disk.available)), dir.string());
}

// Flag checks with messages that name the flag (the library's would name its arguments).
void check_flags(const ListOpsArgs& a) {
  TG_CHECK(!a.out.empty(), "--out: give the directory to write train.tsv, val.tsv and test.tsv to");
  std::error_code ec;
  TG_CHECK(!std::filesystem::exists(a.out, ec) || std::filesystem::is_directory(a.out, ec),
           "--out: {} exists and is not a directory", a.out);
  TG_CHECK(a.train >= 0, "--train must be >= 0, got {}", a.train);
  TG_CHECK(a.val >= 0, "--val must be >= 0, got {}", a.val);
  TG_CHECK(a.test >= 0, "--test must be >= 0, got {}", a.test);
  const int64_t total = sum_or_fail({a.train, a.val, a.test}, "--train + --val + --test");
  TG_CHECK(total >= 1, "--train, --val, --test: ask for at least one example");
  TG_CHECK(a.min_len >= 0, "--min-len must be >= 0, got {}", a.min_len);
  TG_CHECK(a.max_len >= a.min_len + 2,
           "--max-len must be at least --min-len + 2: examples keep min-len < length < max-len, as LRA "
           "(got --min-len {} --max-len {})",
           a.min_len, a.max_len);
  TG_CHECK(a.max_depth >= 1 && a.max_depth <= 10000, "--max-depth must be in [1, 10000], got {}", a.max_depth);
  TG_CHECK(a.max_args >= 2 && a.max_args <= 10000,
           "--max-args must be in [2, 10000] (an operator takes 2..max-args arguments), got {}", a.max_args);
  int64_t longest = data::listops_longest(a.max_depth, a.max_args);
  TG_CHECK(longest > a.min_len,
           "--min-len {} is out of reach: with --max-depth {} and --max-args {} the longest expression has {} "
           "tokens",
           a.min_len, a.max_depth, a.max_args, longest);
  // One expression is built whole before its length is judged: up to this many tokens of a few
  // bytes each (a word, a space, the tree's bookkeeping).
  const int64_t one_expression = std::min(a.max_len, longest);
  check_memory_fits(double(one_expression) * 16.0,
                    fmt::format("data listops with --max-len {} --max-depth {} --max-args {} (one expression can "
                                "reach {} tokens while it is built)",
                                a.max_len, a.max_depth, a.max_args, one_expression));
  check_room_for_examples(a, total);
}

int run_listops(const ListOpsArgs& a) {
  check_flags(a);
  // Before generating: the three files can be written there.
  std::error_code ec;
  std::filesystem::create_directories(a.out, ec);
  TG_CHECK(!ec, "--out: cannot create the directory {}: {}", a.out, ec.message());
  for (const char* name : {"train.tsv", "val.tsv", "test.tsv"})
    check_output_file((std::filesystem::path(a.out) / name).string(), "--out");
  bool tty = isatty(STDERR_FILENO);
  auto start = std::chrono::steady_clock::now();
  auto last = start;
  auto progress = [&](int64_t done, int64_t total) {
    auto now = std::chrono::steady_clock::now();
    // On a terminal the line is redrawn; otherwise a line every few seconds and at the end.
    if (done != total && now - last < std::chrono::milliseconds(tty ? 100 : 5000)) return;
    last = now;
    double secs = std::chrono::duration<double>(now - start).count();
    std::string line = fmt::format("generating listops: {}/{} examples ({:.0f}%), {:.1f} s", done, total,
                                   100.0 * double(done) / double(total), secs);
    if (tty)
      fmt::print(stderr, "\r\033[K{}", line);
    else
      fmt::print(stderr, "{}\n", line);
    std::fflush(stderr);
  };
  data::ListOpsSplitSizes sizes{a.train, a.val, a.test};
  data::write_listops_splits(a.out, sizes, a.min_len, a.max_len, a.max_depth, a.max_args, a.seed, progress);
  if (tty) fmt::print(stderr, "\n");
  std::filesystem::path d(a.out);
  fmt::print("wrote {} ({}), {} ({}), {} ({}); lengths {} < L < {}, max depth {}, max args {}, seed {}\n",
             (d / "train.tsv").string(), a.train, (d / "val.tsv").string(), a.val, (d / "test.tsv").string(), a.test,
             a.min_len, a.max_len, a.max_depth, a.max_args, a.seed);
  return 0;
}

}  // namespace

void add_data_command(CLI::App& app) {
  CLI::App* data = app.add_subcommand("data", "Datasets: generate and convert");
  data->require_subcommand(1);
  auto a = std::make_shared<ListOpsArgs>();
  CLI::App* cmd = data->add_subcommand(
      "listops", "ListOps as the Long Range Arena generates it: train.tsv, val.tsv, test.tsv (Source<TAB>Target)");
  cmd->add_option("--out", a->out, "Directory to write the three files to (created)")->required();
  cmd->add_option("--train", a->train, "Training examples")->capture_default_str();
  cmd->add_option("--val", a->val, "Validation examples")->capture_default_str();
  cmd->add_option("--test", a->test, "Test examples")->capture_default_str();
  cmd->add_option("--min-len", a->min_len, "Keep examples longer than this many tokens (parentheses not counted)")
      ->capture_default_str();
  cmd->add_option("--max-len", a->max_len, "Keep examples shorter than this many tokens")->capture_default_str();
  cmd->add_option("--max-depth", a->max_depth, "Deepest nesting (the root is depth 1; depth max-depth is a digit)")
      ->capture_default_str();
  cmd->add_option("--max-args", a->max_args, "Most arguments of an operator (at least 2)")->capture_default_str();
  cmd->add_option("--seed", a->seed, "Random seed (the same seed gives the same files)")->capture_default_str();
  cmd->callback([a] { throw CLI::RuntimeError(run_listops(*a)); });
}

}  // namespace tg::cli
