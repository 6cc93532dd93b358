// `tapegrad bench attention [flags]`: sweeps attention variants × head widths × sequence lengths,
// prints a table (time, GFLOP/s and its share of the sgemm peak measured in the same run, peak
// memory), and writes a CSV and a picture (time and memory against T, log-log).
#include <fmt/format.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <optional>

#include "autograd/autograd.h"
#include "autograd/checked_size.h"
#include "ops/attention.h"
#include "ops/flex_spec.h"
#include "tools/bench/attention_sweep.h"
#include "nn/file_checks.h"
#include "nn/file_io.h"
#include "tools/cli/commands.h"
#include "tools/plot/svg_plot.h"

namespace tg::cli {
namespace {

struct BenchAttentionArgs {
  std::string variants = "dense,flash,sliding:256,sparse,linear";
  std::string seq_lens = "256,512,1024,2048,4096,8192";
  int64_t batch = 1, heads = 8;
  std::string head_dims = "64";
  bool causal = false;
  std::string mode = "fwdbwd";
  int threads = 0, reps = 5;
  std::string csv, plot_file, max_memory = "8G";
  bool no_check = false;
};

std::vector<std::string> split_list(const std::string& text) {
  std::vector<std::string> out;
  size_t start = 0;
  while (start <= text.size()) {
    size_t end = text.find(',', start);
    if (end == std::string::npos) end = text.size();
    if (end > start) out.push_back(text.substr(start, end - start));
    start = end + 1;
  }
  return out;
}

int64_t parse_positive(const std::string& text, const char* flag) {
  char* end = nullptr;
  errno = 0;
  long long v = std::strtoll(text.c_str(), &end, 10);
  TG_CHECK(!text.empty() && end && *end == '\0' && v > 0, "{}: '{}' is not a positive integer", flag, text);
  TG_CHECK(errno != ERANGE, "{}: '{}' is too large to represent (above {})", flag, text, INT64_MAX);
  return v;
}

// "8G", "512M", "1000000" -> bytes.
int64_t parse_bytes(const std::string& text) {
  TG_CHECK(!text.empty(), "--max-memory: empty value");
  char unit = text.back();
  int64_t scale = unit == 'K' ? 1 << 10 : unit == 'M' ? 1 << 20 : unit == 'G' ? int64_t(1) << 30 : 1;
  std::string digits = scale == 1 ? text : text.substr(0, text.size() - 1);
  std::optional<int64_t> bytes = checked_mul(parse_positive(digits, "--max-memory"), scale);
  TG_CHECK(bytes, "--max-memory: '{}' is too large to represent (above {} bytes)", text, INT64_MAX);
  return *bytes;
}

int run_bench_attention(const BenchAttentionArgs& a) {
  if (a.threads > 0) set_num_threads(a.threads);
  bench::AttentionBenchConfig c;
  c.variants = split_list(a.variants);
  TG_CHECK(!c.variants.empty(), "--variants: no variant given");
  for (const std::string& v : c.variants) {
    try {
      if (is_flex_pattern(v))
        parse_flex_pattern(v);
      else
        parse_attention_variant(v);  // names a bad one
    } catch (const Error& e) {
      fail("--variants: {}", e.what());
    }
  }
  c.seq_lens.clear();
  for (const std::string& s : split_list(a.seq_lens)) c.seq_lens.push_back(parse_positive(s, "--seq-lens"));
  TG_CHECK(!c.seq_lens.empty(), "--seq-lens: no length given");
  for (const std::string& s : split_list(a.head_dims)) {
    const int64_t D = parse_positive(s, "--head-dim");
    TG_CHECK(D <= (int64_t(1) << 12), "--head-dim: {} is above the largest head width, {}", D, int64_t(1) << 12);
    c.head_dims.push_back(D);
  }
  TG_CHECK(!c.head_dims.empty(), "--head-dim: no head width given");
  c.head_dim = c.head_dims.front();
  c.batch = a.batch, c.heads = a.heads;
  c.causal = a.causal, c.mode = a.mode, c.reps = a.reps, c.check = !a.no_check;
  c.max_memory = parse_bytes(a.max_memory);
  // The outputs are checked before the sweep, not after it has run for minutes.
  if (!a.csv.empty()) check_output_file(a.csv, "--csv");
  if (!a.plot_file.empty()) {
    TG_CHECK(a.plot_file.ends_with(".svg"), "--plot: the picture is written as SVG; give a .svg file name, got {}",
             a.plot_file);
    check_output_file(a.plot_file, "--plot");
    TG_CHECK(!same_or_inside(a.csv, a.plot_file), "--csv and --plot name the same file, {}", a.csv);
  }

  bool tty = isatty(STDERR_FILENO);
  auto progress = [&](const std::string& line) {
    if (tty)
      fmt::print(stderr, "\r\033[K{}", line);
    else
      fmt::print(stderr, "{}\n", line);
    std::fflush(stderr);
  };
  fmt::print("attention bench: B={} H={} D={} {} {} threads={} reps={} (median)\n", c.batch, c.heads, a.head_dims,
             c.causal ? "causal" : "bidirectional", c.mode, get_num_threads(), c.reps);
  double peak = 0;
  std::vector<bench::AttentionCell> cells = bench::run_attention_bench(c, progress, &peak);
  if (tty) fmt::print(stderr, "\r\033[K");
  fmt::print("sgemm peak: median {:.1f} GFLOP/s (1024^3 f32 products, {} threads; one in every round, each "
             "round timing every variant of a (D, T) once: a cell's % peak is against its rounds' median, column "
             "sgemm); GFLOP/s counts 4·D per visible query-key pair{}\n",
             peak, get_num_threads(), c.mode == "fwdbwd" ? ", x3.5 for forward+backward" : "");

  fmt::print("{:<18} {:>5} {:>7} {:>11} {:>9} {:>7} {:>7} {:>12} {:>10} {:>7}  {}\n", "variant", "D", "T",
             "time ms", "GFLOP/s", "sgemm", "% peak", "peak MB", "check", "blocks", "note");
  bool failed = false;
  for (const auto& cell : cells) {
    failed |= cell.note.starts_with("CHECK FAILED");
    std::string check = cell.check_error < 0 ? "-" : fmt::format("{:.1e}", cell.check_error);
    // flex: the share of tiles that run.
    std::string blocks = cell.blocks_run < 0 ? "-" : fmt::format("{:.1f}%", 100 * cell.blocks_run);
    if (cell.ok)
      fmt::print("{:<18} {:>5} {:>7} {:>11.2f} {:>9.1f} {:>7.1f} {:>7.1f} {:>12.1f} {:>10} {:>7}\n", cell.variant,
                 cell.head_dim, cell.seq_len, cell.time_ms, cell.gflops, cell.sgemm_gflops, 100 * cell.peak_share,
                 double(cell.peak_bytes) / (1 << 20), check, blocks);
    else
      fmt::print("{:<18} {:>5} {:>7} {:>11} {:>9} {:>7} {:>7} {:>12} {:>10} {:>7}  {}\n", cell.variant,
                 cell.head_dim, cell.seq_len, "-", "-", "-", "-", "-", check, blocks, cell.note);
  }
  if (!a.csv.empty()) {
    write_file_atomically(a.csv, bench::attention_csv(c, cells));
    fmt::print("wrote {}\n", a.csv);
  }
  if (!a.plot_file.empty()) {
    write_file_atomically(a.plot_file, bench::attention_svg(c, cells));
    fmt::print("wrote {}\n", a.plot_file);
  }
  return failed ? 1 : 0;
}

}  // namespace

void add_bench_command(CLI::App& app) {
  CLI::App* bench = app.add_subcommand("bench", "Benchmarks: time and memory");
  bench->require_subcommand(1);
  auto a = std::make_shared<BenchAttentionArgs>();
  CLI::App* cmd = bench->add_subcommand("attention", "Attention variants: time and peak memory against T");
  cmd->add_option("--variants", a->variants,
                  "Comma-separated: dense,flash,sliding:W,sparse,linear, and flex:PATTERN (flex:causal, "
                  "flex:sliding:W, flex:document:N, flex:prefix:N, flex:alibi, flex:softcap:C, ...)")
      ->capture_default_str();
  cmd->add_option("--seq-lens", a->seq_lens, "Comma-separated sequence lengths")->capture_default_str();
  cmd->add_option("--batch", a->batch, "Batch size B")->check(CLI::Range(int64_t(1), int64_t(1) << 20))->capture_default_str();
  cmd->add_option("--heads", a->heads, "Heads H")->check(CLI::Range(int64_t(1), int64_t(1) << 12))->capture_default_str();
  cmd->add_option("--head-dim", a->head_dims, "Comma-separated head widths D, each swept (e.g. 16,32,64,128)")
      ->capture_default_str();
  cmd->add_flag("--causal", a->causal, "Causal attention");
  cmd->add_option("--mode", a->mode, "fwd or fwdbwd")->check(CLI::IsMember({"fwd", "fwdbwd"}))->capture_default_str();
  cmd->add_option("--threads", a->threads, "Threads for TBB and OpenBLAS (default: all cores)")->check(CLI::Range(1, 1024));
  cmd->add_option("--reps", a->reps,
                  "Timed rounds after one warm-up, each running every variant of a (D, T) once (median reported)")
      ->check(CLI::Range(1, 1000))->capture_default_str();
  cmd->add_option("--csv", a->csv, "Write the results as CSV to this file");
  cmd->add_option("--plot", a->plot_file, "Draw time and memory against T to this .svg file");
  cmd->add_option("--max-memory", a->max_memory, "Skip cells whose buffers, masks included, need more bytes (suffix K, M, G)")
      ->capture_default_str();
  cmd->add_flag("--no-check", a->no_check, "Do not compare with dense before timing");
  cmd->callback([a] { throw CLI::RuntimeError(run_bench_attention(*a)); });
  add_bench_tokenizer_command(*bench);
}

}  // namespace tg::cli
