// The attention bench end to end at toy sizes: every cell checked and timed, the CSV and the
// picture written as documented.
#include "test_util.h"
#include "tools/bench/attention_sweep.h"

namespace tg {
namespace {

TEST(AttentionBench, SweepsChecksAndWrites) {
  bench::AttentionBenchConfig c;
  c.variants = {"dense", "flash", "sliding:8", "sparse:8:1:1:1", "linear"};
  c.seq_lens = {32, 64};
  c.heads = 2, c.head_dim = 8, c.reps = 1, c.causal = true;
  c.measure_peak = false;  // SweepsHeadWidthsAgainstTheSgemmPeak checks it
  std::vector<std::string> progress;
  auto cells = bench::run_attention_bench(c, [&](const std::string& line) { progress.push_back(line); });
  ASSERT_EQ(cells.size(), 10u);
  EXPECT_EQ(progress.size(), 10u);
  for (const auto& cell : cells) {
    SCOPED_TRACE(cell.variant + " " + std::to_string(cell.seq_len));
    EXPECT_TRUE(cell.ok) << cell.note;
    EXPECT_GE(cell.check_error, 0.0);
    EXPECT_LT(cell.check_error, 1e-5);
    EXPECT_GT(cell.time_ms, 0.0);
    EXPECT_GT(cell.peak_bytes, 0);
  }
  std::string csv = bench::attention_csv(c, cells);
  EXPECT_EQ(csv.substr(0, csv.find('\n')), "variant,seq_len,batch,heads,head_dim,causal,mode,time_ms,gflops,sgemm_gflops,peak_percent,peak_bytes,blocks_run");
  EXPECT_EQ(std::count(csv.begin(), csv.end(), '\n'), 11);
  std::string svg = bench::attention_svg(c, cells);
  EXPECT_EQ(svg.substr(0, 4), "<svg");
  size_t lines = 0;
  for (size_t at = svg.find("<polyline"); at != std::string::npos; at = svg.find("<polyline", at + 1)) ++lines;
  EXPECT_EQ(lines, 10u);  // a line per variant in each of the two panels
}

// flex:PATTERN rows: checked against the plain computation, with the share of tiles that run.
TEST(AttentionBench, FlexRowsCheckAndCountTheBlocksThatRun) {
  bench::AttentionBenchConfig c;
  c.variants = {"flex:causal", "flex:document:4", "flex:sliding:8", "flex:alibi", "flex:softcap:5"};
  c.seq_lens = {256};
  c.heads = 2, c.head_dim = 8, c.reps = 1, c.causal = true;
  c.measure_peak = false;  // SweepsHeadWidthsAgainstTheSgemmPeak checks it
  auto cells = bench::run_attention_bench(c, [](const std::string&) {});
  ASSERT_EQ(cells.size(), 5u);
  for (const auto& cell : cells) {
    SCOPED_TRACE(cell.variant);
    EXPECT_TRUE(cell.ok) << cell.note;
    EXPECT_GE(cell.check_error, 0.0);
    EXPECT_LT(cell.check_error, 1e-5);
  }
  // 256 keys in blocks of 128: causal runs 3 of 4 tiles; 4 documents of 64 keys, the 2 diagonal.
  EXPECT_DOUBLE_EQ(cells[0].blocks_run, 0.75);
  EXPECT_DOUBLE_EQ(cells[1].blocks_run, 0.5);
  std::string csv = bench::attention_csv(c, cells);
  EXPECT_NE(csv.find("flex:document:4,256,1,2,8,1,fwdbwd,"), std::string::npos) << csv;
  EXPECT_NE(csv.find(",0.5000\n"), std::string::npos) << csv;
}

// Several head widths: a cell per (D, T), each with its width in the CSV, and its share of the
// sgemm peak measured just before it.
TEST(AttentionBench, SweepsHeadWidthsAgainstTheSgemmPeak) {
  bench::AttentionBenchConfig c;
  c.variants = {"flash"};
  c.seq_lens = {40};
  c.heads = 2, c.head_dims = {8, 16}, c.reps = 1;
  double peak = 0;
  auto cells = bench::run_attention_bench(c, [](const std::string&) {}, &peak);
  ASSERT_EQ(cells.size(), 2u);
  EXPECT_GT(peak, 0.0);
  for (size_t i = 0; i < cells.size(); ++i) {
    EXPECT_TRUE(cells[i].ok) << cells[i].note;
    EXPECT_EQ(cells[i].head_dim, c.head_dims[i]);
    EXPECT_GT(cells[i].sgemm_gflops, 0.0);
    EXPECT_DOUBLE_EQ(cells[i].peak_share, cells[i].gflops / cells[i].sgemm_gflops);
  }
  std::string csv = bench::attention_csv(c, cells);
  EXPECT_NE(csv.find("flash,40,1,2,8,0,fwdbwd,"), std::string::npos) << csv;
  EXPECT_NE(csv.find("flash,40,1,2,16,0,fwdbwd,"), std::string::npos) << csv;
  size_t lines = 0;
  std::string svg = bench::attention_svg(c, cells);
  for (size_t at = svg.find("<polyline"); at != std::string::npos; at = svg.find("<polyline", at + 1)) ++lines;
  EXPECT_EQ(lines, 4u);  // a line per (variant, D) in each panel
  EXPECT_NE(svg.find("flash D=16"), std::string::npos);
}

TEST(AttentionBench, SkipsCellsAboveTheMemoryLimit) {
  bench::AttentionBenchConfig c;
  c.variants = {"dense", "flash"};
  c.seq_lens = {512};
  c.heads = 1, c.head_dim = 8, c.reps = 1;
  c.measure_peak = false;
  c.max_memory = 1 << 20;  // dense needs 2 MB for its weights
  auto cells = bench::run_attention_bench(c, [](const std::string&) {});
  ASSERT_EQ(cells.size(), 2u);
  EXPECT_FALSE(cells[0].ok);
  EXPECT_NE(cells[0].note.find("above --max-memory"), std::string::npos) << cells[0].note;
  EXPECT_TRUE(cells[1].ok);
  EXPECT_LT(cells[1].check_error, 0);  // no dense reference within the limit: not checked
}

}  // namespace
}  // namespace tg
