#include "tools/bench/attention_sweep.h"

#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <memory>
#include <optional>

#include "autograd/available_memory.h"
#include "autograd/checked_size.h"
#include "tapegrad.h"
#include "ops/attention.h"
#include "ops/attention_reference.h"
#include "ops/flex_spec.h"
#include "ops/kernels/gemm.h"
#include "tools/bench/flex_cell.h"
#include "tools/plot/svg_plot.h"

namespace tg::bench {
namespace {

struct Inputs {
  Tensor q, k, v, dout;  // [B, T, H, D] each
};

Inputs make_inputs(const AttentionBenchConfig& c, int64_t T, bool requires_grad) {
  Generator gen(1234);
  Shape s = {c.batch, T, c.heads, c.head_dim};
  Inputs in{randn(s, gen), randn(s, gen), randn(s, gen), randn(s, gen)};
  if (requires_grad) {
    in.q.requires_grad_();
    in.k.requires_grad_();
    in.v.requires_grad_();
  }
  return in;
}

AttentionSpec spec_for(const std::string& variant, bool causal) {
  AttentionSpec spec;
  spec.variant = parse_attention_variant(variant, &spec);
  spec.causal = causal;
  return spec;
}

// A cell's computation: the attention (or flex_attention) it times, and what it is checked against.
using Forward = std::function<Tensor(const Inputs&)>;

// One forward (and backward) pass, as timed.
void run_once(const Inputs& in, const Forward& forward, bool backward_too) {
  if (!backward_too) {
    NoGradGuard no_grad;
    forward(in);
    return;
  }
  Tensor out = forward(in);
  backward(out, in.dout);
  for (const Tensor* t : {&in.q, &in.k, &in.v}) const_cast<Tensor*>(t)->set_grad(Tensor());
}

// Relative error of the cell against the same computation done the plain way.
double check_against_reference(const Inputs& in, const Forward& forward, const Forward& reference) {
  NoGradGuard no_grad;
  std::vector<double> a = forward(in).to_vector();
  std::vector<double> b = reference(in).to_vector();
  double err = 0, mag = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    err = std::max(err, std::fabs(a[i] - b[i]));
    mag = std::max(mag, std::fabs(b[i]));
  }
  return std::isnan(err) ? INFINITY : err / std::max(mag, 1e-30);
}

// One cell of the sweep at c.head_dim, ready to time: skipped when too large (cell.ok false),
// checked, its peak memory measured over one pass; then timed in the rounds of its (D, T).
struct PreparedCell {
  AttentionCell cell;
  Inputs in;
  AttentionSpec spec;
  FlexCell flex_cell;
  Forward forward;
  bool bwd = false;
  double fwd_flops = 0;   // useful FLOPs of one forward
  std::vector<double> ms;  // one time per round
};

std::unique_ptr<PreparedCell> prepare_cell(const AttentionBenchConfig& c, const std::string& variant, int64_t T) {
  auto p = std::make_unique<PreparedCell>();
  PreparedCell* x = p.get();  // the closures below point into it (a stable address)
  AttentionCell& cell = p->cell;
  p->bwd = c.mode == "fwdbwd";
  cell.variant = variant;
  cell.seq_len = T;
  cell.head_dim = c.head_dim;
  if (std::optional<std::string> skip = attention_cell_skip_reason(c, attention_cell_bytes(c, variant, T, false))) {
    cell.ok = false;
    cell.note = "skipped: " + *skip;
    return p;
  }
  p->in = make_inputs(c, T, p->bwd);
  // flex:PATTERN runs flex_attention with its block mask; the rest, attention() with a spec.
  const bool flex = is_flex_pattern(variant);
  double pairs = 0;
  Forward reference;
  if (flex) {
    p->flex_cell = make_flex_cell(variant, c.heads, T, c.causal);
    cell.blocks_run = p->flex_cell.blocks_run;
    pairs = double(p->flex_cell.visible_pairs);
    p->forward = [x](const Inputs& in) { return run_flex_cell(x->flex_cell, in.q, in.k, in.v); };
    reference = [x](const Inputs& in) { return flex_cell_reference(x->flex_cell, in.q, in.k, in.v); };
  } else {
    p->spec = spec_for(variant, c.causal);
    pairs = double(attention_visible_pairs(p->spec, T, T));
    p->forward = [x](const Inputs& in) { return attention(in.q, in.k, in.v, x->spec); };
    reference = [x](const Inputs& in) { return attention_reference(in.q, in.k, in.v, x->spec); };
  }
  if (c.check && !attention_cell_skip_reason(c, attention_cell_bytes(c, variant, T, true))) {
    cell.check_error = check_against_reference(p->in, p->forward, reference);
    if (!(cell.check_error <= 1e-4)) {
      cell.ok = false;
      cell.note = fmt::format("CHECK FAILED: relative error {:.2e} against dense", cell.check_error);
      return p;
    }
  }
  // Peak memory of one pass (also the warm-up), above what is allocated (the inputs).
  int64_t base = memory_allocated();
  reset_peak_memory_stats();
  run_once(p->in, p->forward, p->bwd);
  cell.peak_bytes = max_memory_allocated() - base;
  p->fwd_flops = !flex && p->spec.variant == AttentionVariant::linear
                     ? 4.0 * c.batch * c.heads * T * c.head_dim * c.head_dim
                     : 4.0 * c.batch * c.heads * pairs * c.head_dim;
  return p;
}

// Milliseconds of one call of fn.
template <class F>
double time_ms(F&& fn) {
  auto start = std::chrono::steady_clock::now();
  fn();
  return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
}

double median(std::vector<double> x) {
  std::sort(x.begin(), x.end());
  return x.empty() ? 0.0 : x[x.size() / 2];
}

// The sgemm probe: one 1024³ f32 product through tapegrad's GEMM (2 GFLOP: about 10 ms on two
// idle cores of this kind).
struct SgemmProbe {
  static constexpr int64_t n = 1024;
  std::vector<float> a = std::vector<float>(size_t(n * n), 0.5f), b = std::vector<float>(size_t(n * n), 0.25f),
                     out = std::vector<float>(size_t(n * n));
  double gflops_once() {
    const double ms = time_ms([&] {
      kernels::gemm<float>(false, false, n, n, n, 1.0f, a.data(), n, b.data(), n, 0.0f, out.data(), n);
    });
    return 2.0 * n * n * n / (ms * 1e-3) / 1e9;
  }
};

// Times the prepared cells of one (D, T) in rounds: each round runs every cell once and, with
// `probe`, the sgemm product once, so load that comes and goes falls on all of them alike. Each
// cell gets the median of its rounds and the median sgemm rate of the same rounds (pushed to
// `peaks`).
void time_in_rounds(const AttentionBenchConfig& c, std::vector<std::unique_ptr<PreparedCell>>& group,
                    SgemmProbe* probe, std::vector<double>& peaks) {
  std::vector<double> rates;
  if (probe) probe->gflops_once();  // warm-up
  for (int r = 0; r < std::max(c.reps, 1); ++r) {
    if (probe) rates.push_back(probe->gflops_once());
    for (auto& p : group)
      if (p->cell.ok) p->ms.push_back(time_ms([&] { run_once(p->in, p->forward, p->bwd); }));
  }
  const double peak = median(rates);
  if (peak > 0) peaks.push_back(peak);
  for (auto& p : group) {
    if (!p->cell.ok) continue;
    AttentionCell& cell = p->cell;
    cell.time_ms = median(p->ms);
    cell.gflops = p->fwd_flops * (p->bwd ? 3.5 : 1.0) / (cell.time_ms * 1e-3) / 1e9;
    if (peak > 0) cell.sgemm_gflops = peak, cell.peak_share = cell.gflops / peak;
  }
}

}  // namespace

int64_t attention_cell_bytes(const AttentionBenchConfig& c, const std::string& variant, int64_t T, bool with_check) {
  const std::string sizes = fmt::format("--seq-lens {} with --batch {} --heads {} --head-dim {}", T, c.batch,
                                        c.heads, c.head_dim);
  const int64_t B = c.batch, H = c.heads, D = c.head_dim, f32 = 4, f64 = 8;
  if (is_flex_pattern(variant)) {
    parse_flex_pattern(variant);  // names a bad one
    // q, k, v, dout, out, dq, dk, dv; the log-sum-exp and its gradient's row sums; the [T]
    // mask row that counts the visible pairs; the check's [B, H, T, T] scores and values.
    return sum_or_fail({product_or_fail({8, B, T, H, D, f32}, sizes + ": the cell's inputs and outputs"),
                        product_or_fail({2, B, H, T, f32}, sizes + ": the log-sum-exp"),
                        with_check ? product_or_fail({B, H, T, T, f32}, sizes + ": the reference's scores") : 0,
                        with_check ? product_or_fail({2, B, T, H, D, f64}, sizes + ": the check's values") : 0},
                       sizes + ": the cell's bytes");
  }
  AttentionSpec spec;
  const AttentionVariant v = parse_attention_variant(variant, &spec);
  // Sliding window and sparse save their weights (and backward their score gradients) for the
  // visible pairs of each head only: at most T·(64 + 2·window) pairs for the band in block-rows
  // of up to 64 queries; for BigBird's blocks, each block-row's window, global and random
  // blocks plus the global rows' full width. Never more than T·T.
  const std::string layout = "--variants " + variant;
  int64_t banded_pairs = 0;
  if (v == AttentionVariant::sliding_window) {
    const int64_t band = sum_or_fail({64, product_or_fail({2, spec.window}, layout)}, layout);
    banded_pairs = product_or_fail({T, std::min(T, band)}, sizes + ": sliding window's visible pairs");
  } else if (v == AttentionVariant::sparse) {
    const SparseLayout& l = spec.sparse;
    const int64_t blocks = sum_or_fail({l.window_blocks, l.global_blocks, l.random_blocks}, layout);
    const int64_t width = std::min(T, product_or_fail({l.block_size, blocks}, layout));
    const int64_t global_rows = std::min(T, product_or_fail({l.block_size, l.global_blocks}, layout));
    const int64_t pairs = sum_or_fail({product_or_fail({T, width}, sizes + ": sparse's visible pairs"),
                                       product_or_fail({global_rows, T}, sizes + ": sparse's global rows")},
                                      sizes + ": sparse's visible pairs");
    banded_pairs = std::min(pairs, product_or_fail({T, T}, sizes + ": [T, T]"));
  }
  // Each product overflow-checked, naming the sizes; a part a cell does not allocate is 0.
  auto part = [&](bool allocated, std::initializer_list<int64_t> factors, const char* what) {
    return allocated ? product_or_fail(factors, sizes + ": " + what) : 0;
  };
  return sum_or_fail(
      {// Every cell: q, k, v, dout, the output and dq, dk, dv ([B, T, H, D] each).
       part(true, {8, B, T, H, D, f32}, "the cell's inputs and outputs"),
       // Dense: its [B, H, T, T] weights and their gradient in backward; sliding window and
       // sparse: the same for their visible pairs.
       part(v == AttentionVariant::dense, {2, B, H, T, T, f32}, "dense's [B, H, T, T] weights"),
       part(banded_pairs > 0, {2, B, H, banded_pairs, f32}, "the weights of the visible pairs"),
       // The check: the reference's [T, T] pattern and dense [B, H, T, T] weights (linear's
       // reference: its complement mask and three [B, H, T, T] products instead), and both
       // results as doubles.
       part(with_check, {T, T}, "the reference's [T, T] pattern"),
       part(with_check && v != AttentionVariant::linear, {B, H, T, T, f32}, "the reference's weights"),
       part(with_check && v == AttentionVariant::linear, {T, T}, "the reference's complement mask"),
       part(with_check && v == AttentionVariant::linear, {3, B, H, T, T, f32}, "the reference's products"),
       part(with_check, {2, B, T, H, D, f64}, "the check's values")},
      sizes + ": the cell's bytes");
}

std::optional<std::string> attention_cell_skip_reason(const AttentionBenchConfig& c, int64_t bytes) {
  if (bytes > c.max_memory)
    return fmt::format("needs about {} MB, above --max-memory", bytes >> 20);
  std::optional<AvailableMemory> available = available_memory();
  if (available && bytes > available->bytes)
    return fmt::format("needs about {} MB, above the {} MB available ({})", bytes >> 20, available->bytes >> 20,
                       available->source);
  return std::nullopt;
}

double sgemm_peak_gflops(int reps) {
  SgemmProbe probe;
  probe.gflops_once();  // warm-up
  std::vector<double> gflops;
  for (int r = 0; r < std::max(reps, 1); ++r) gflops.push_back(probe.gflops_once());
  return median(gflops);
}

std::vector<AttentionCell> run_attention_bench(const AttentionBenchConfig& config,
                                               const std::function<void(const std::string&)>& progress,
                                               double* peak_gflops) {
  const std::vector<int64_t> dims = config.head_dims.empty() ? std::vector<int64_t>{config.head_dim} : config.head_dims;
  AttentionBenchConfig c = config;
  // Every cell's size is representable, or the sweep is refused before it starts.
  for (int64_t D : dims) {
    c.head_dim = D;
    for (int64_t T : c.seq_lens)
      for (const std::string& variant : c.variants) attention_cell_bytes(c, variant, T, c.check);
  }
  std::vector<AttentionCell> cells;
  std::vector<double> peaks;
  std::optional<SgemmProbe> probe;
  if (c.measure_peak) probe.emplace();
  size_t total = dims.size() * c.variants.size() * c.seq_lens.size(), index = 0;
  for (int64_t D : dims) {
    c.head_dim = D;
    for (int64_t T : c.seq_lens) {
      std::vector<std::unique_ptr<PreparedCell>> group;
      for (const std::string& variant : c.variants) {
        progress(fmt::format("[{}/{}] {} D={} T={}", ++index, total, variant, D, T));
        group.push_back(prepare_cell(c, variant, T));
      }
      time_in_rounds(c, group, probe ? &*probe : nullptr, peaks);
      for (auto& p : group) cells.push_back(std::move(p->cell));
    }
  }
  if (peak_gflops) *peak_gflops = median(peaks);
  return cells;
}

std::string attention_csv(const AttentionBenchConfig& c, const std::vector<AttentionCell>& cells) {
  std::string csv =
      "variant,seq_len,batch,heads,head_dim,causal,mode,time_ms,gflops,sgemm_gflops,peak_percent,peak_bytes,"
      "blocks_run\n";
  for (const AttentionCell& cell : cells) {
    if (!cell.ok) continue;
    csv += fmt::format("{},{},{},{},{},{},{},{:.4f},{:.3f},{},{},{},{}\n", cell.variant, cell.seq_len, c.batch,
                       c.heads, cell.head_dim, c.causal ? 1 : 0, c.mode, cell.time_ms, cell.gflops,
                       cell.sgemm_gflops > 0 ? fmt::format("{:.3f}", cell.sgemm_gflops) : "",
                       cell.peak_share < 0 ? "" : fmt::format("{:.2f}", 100 * cell.peak_share), cell.peak_bytes,
                       cell.blocks_run < 0 ? "" : fmt::format("{:.4f}", cell.blocks_run));
  }
  return csv;
}

std::string attention_svg(const AttentionBenchConfig& c, const std::vector<AttentionCell>& cells) {
  // The head widths of the cells, in sweep order: a line per (variant, D), named by D when several.
  std::vector<int64_t> dims;
  for (const AttentionCell& cell : cells)
    if (std::find(dims.begin(), dims.end(), cell.head_dim) == dims.end()) dims.push_back(cell.head_dim);
  if (dims.empty()) dims.push_back(c.head_dim);
  std::string widths;
  for (int64_t D : dims) widths += (widths.empty() ? "" : ",") + std::to_string(D);
  std::string setting = fmt::format("B={} H={} D={}{} {}", c.batch, c.heads, widths, c.causal ? " causal" : "",
                                    c.mode == "fwd" ? "forward" : "forward+backward");
  plot::Panel time{"time, " + setting, "sequence length T", "median time (ms)", true, true, {}};
  plot::Panel mem{"peak memory above inputs", "sequence length T", "MB", true, true, {}};
  for (int64_t D : dims)
  for (const std::string& v : c.variants) {
    const std::string name = dims.size() > 1 ? fmt::format("{} D={}", v, D) : v;
    plot::Series st{name, {}, {}}, sm{name, {}, {}};
    for (const AttentionCell& cell : cells) {
      if (cell.variant != v || cell.head_dim != D || !cell.ok) continue;
      st.x.push_back(double(cell.seq_len));
      st.y.push_back(cell.time_ms);
      sm.x.push_back(double(cell.seq_len));
      sm.y.push_back(double(cell.peak_bytes) / (1 << 20));
    }
    time.series.push_back(st);
    mem.series.push_back(sm);
  }
  return plot::render_svg({time, mem});
}

}  // namespace tg::bench
