#pragma once
// The attention bench: variants (attention's, and flex:PATTERN of ops/flex_spec.h) × head widths ×
// sequence lengths, each cell checked against dense (where dense fits) before it is timed; the
// median time after warm-up, achieved GFLOP/s (useful FLOPs: 4·D per visible query-key pair
// forward, ×3.5 for forward+backward), that rate as a share of the sgemm peak measured in the same
// rounds with the same threads, and the peak memory the allocator saw above the inputs.
// The variants of one (D, T) are timed in rounds, side by side: each round runs every variant
// once and one sgemm product, so load that comes and goes on a shared machine falls on all of
// them alike and their ratios hold (each a median over the rounds). A (D, T) holds every
// variant's inputs at once while its rounds run.
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

namespace tg::bench {

struct AttentionBenchConfig {
  std::vector<std::string> variants = {"dense", "flash", "sliding:256", "sparse", "linear"};
  std::vector<int64_t> seq_lens = {256, 512, 1024, 2048, 4096, 8192};
  int64_t batch = 1, heads = 8;
  /// The head width of the per-cell functions (attention_cell_bytes); run_attention_bench sets it
  /// to each of head_dims in turn (empty head_dims: this one alone).
  int64_t head_dim = 64;
  std::vector<int64_t> head_dims;
  bool causal = false;
  std::string mode = "fwdbwd";  ///< "fwd" or "fwdbwd"
  int reps = 5;  ///< rounds: each times every variant of a (D, T) once
  int64_t max_memory = int64_t(8) << 30;  ///< cells estimated above this (or the memory available) are skipped
  bool check = true;                      ///< compare with the dense reference before timing
  bool measure_peak = true;               ///< time an sgemm product in every round, for each cell's share of it
};

struct AttentionCell {
  std::string variant;
  int64_t seq_len = 0;
  int64_t head_dim = 0;
  double time_ms = 0;       ///< median over reps
  double gflops = 0;        ///< useful FLOPs (visible query-key pairs) per second
  double sgemm_gflops = 0;  ///< the median sgemm rate of the rounds this cell ran in (0: not measured)
  double peak_share = -1;   ///< gflops / sgemm_gflops; -1 when the peak was not measured
  int64_t peak_bytes = 0;   ///< allocator peak above the inputs during one run
  double check_error = -1;  ///< max|out - ref| / max|ref|; -1 when not checked
  bool ok = true;           ///< false when skipped or the check failed
  std::string note;         ///< why a cell was skipped or failed
  double blocks_run = -1;   ///< flex:PATTERN: the share of (query block, key block) tiles that run
};

/// Bytes a cell allocates at most (with the dense reference of its check when `with_check`),
/// every buffer counted, masks included: see the list in attention_sweep.cpp. Throws tg::Error
/// naming --seq-lens (and --batch, --heads, --head-dim) when a product overflows int64.
int64_t attention_cell_bytes(const AttentionBenchConfig& config, const std::string& variant, int64_t seq_len,
                             bool with_check);

/// Why a cell of `bytes` is skipped: above config.max_memory or above the memory available now;
/// std::nullopt when it may run.
std::optional<std::string> attention_cell_skip_reason(const AttentionBenchConfig& config, int64_t bytes);

/// The sgemm rate of this machine with tapegrad's threads: the median GFLOP/s of `reps`
/// 1024 x 1024 x 1024 f32 products through tapegrad's GEMM (OpenBLAS's cblas_sgemm in parallel
/// panels, one per thread), after a warm-up.
double sgemm_peak_gflops(int reps = 3);

/// Runs the sweep (refused before any cell runs when a cell's size overflows, see
/// attention_cell_bytes); `progress` receives a line as each cell is prepared (checked, its
/// memory measured), before the rounds of its (D, T). With measure_peak, an sgemm product runs in
/// every round (on a shared machine the load moves: each cell is compared with the rate of its
/// own rounds), and the median over the (D, T) groups is written to *peak_gflops.
std::vector<AttentionCell> run_attention_bench(const AttentionBenchConfig& config,
                                               const std::function<void(const std::string&)>& progress,
                                               double* peak_gflops = nullptr);

/// The CSV the bench writes: header
/// variant,seq_len,batch,heads,head_dim,causal,mode,time_ms,gflops,sgemm_gflops,peak_percent,
/// peak_bytes,blocks_run and a row per measured cell (sgemm_gflops, the cell's own peak, and
/// peak_percent empty when the peak was not measured; blocks_run empty but for flex:PATTERN cells).
std::string attention_csv(const AttentionBenchConfig& config, const std::vector<AttentionCell>& cells);

/// Two log-log panels: time vs T and peak memory vs T, one line per variant (per variant and
/// head width when several are swept).
std::string attention_svg(const AttentionBenchConfig& config, const std::vector<AttentionCell>& cells);

}  // namespace tg::bench
