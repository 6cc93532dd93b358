// The attention bench's size of a cell (issue 15): every buffer a cell allocates is counted,
// masks included, so --max-memory bounds what a cell really takes; a size that overflows int64
// is refused naming --seq-lens. No cell builds a [T, T] mask to count its visible pairs.
#include "test_util.h"
#include "tools/bench/attention_sweep.h"

namespace tg {
namespace {

TEST(AttentionCellBytes, CoversWhatACellAllocatesMasksIncluded) {
  bench::AttentionBenchConfig c;
  c.variants = {"dense", "flash", "sliding:8", "sparse:8:1:1:1", "linear"};
  c.seq_lens = {64};
  c.heads = 2, c.head_dim = 8, c.reps = 1, c.check = false;
  auto cells = bench::run_attention_bench(c, [](const std::string&) {});
  for (const auto& cell : cells) {
    SCOPED_TRACE(cell.variant);
    ASSERT_TRUE(cell.ok) << cell.note;
    const int64_t bytes = bench::attention_cell_bytes(c, cell.variant, 64, false);
    EXPECT_GE(bytes, cell.peak_bytes);
    EXPECT_GT(bench::attention_cell_bytes(c, cell.variant, 64, true), bytes);  // the check's reference
  }
}

// The visible pairs are counted row by row (attention_visible_pairs), with no [T, T] mask: the
// cells of variants linear in T take memory linear in T, and run under a --max-memory that a
// [T, T] buffer would exceed, while dense's [B, H, T, T] weights still skip its cell.
TEST(AttentionCellBytes, LinearInTWithoutATByTMask) {
  bench::AttentionBenchConfig c;
  c.heads = 1, c.head_dim = 4, c.reps = 1, c.check = false;
  for (const char* v : {"flash", "linear"})
    EXPECT_EQ(bench::attention_cell_bytes(c, v, 4096, false), 2 * bench::attention_cell_bytes(c, v, 2048, false)) << v;
  c.variants = {"flash", "dense"};
  c.seq_lens = {2048};
  // flash's inputs and outputs are 8·T·H·D·4 = 256 KB (a T·T mask would be 4 MB); dense's weights 32 MB.
  c.max_memory = 1 << 20;
  auto cells = bench::run_attention_bench(c, [](const std::string&) {});
  ASSERT_EQ(cells.size(), 2u);
  EXPECT_TRUE(cells[0].ok) << cells[0].note;
  EXPECT_FALSE(cells[1].ok);
  EXPECT_NE(cells[1].note.find("above --max-memory"), std::string::npos) << cells[1].note;
}

TEST(AttentionCellBytes, OverflowIsRefusedNamingSeqLens) {
  bench::AttentionBenchConfig c;
  c.seq_lens = {int64_t(1'000'000'000'000'000)};  // 8·B·T·H·D·4 bytes overflows
  EXPECT_TG_ERROR(bench::attention_cell_bytes(c, "flash", c.seq_lens[0], false),
                  "--seq-lens 1000000000000000 with --batch 1 --heads 8 --head-dim 64");
  EXPECT_TG_ERROR(bench::run_attention_bench(c, [](const std::string&) {}), "--seq-lens 1000000000000000");
  c.seq_lens = {3'000'000'000};  // T·T fits int64, B·H·T·T·4 does not
  EXPECT_TG_ERROR(bench::attention_cell_bytes(c, "dense", c.seq_lens[0], false), "dense's [B, H, T, T] weights");
}

}  // namespace
}  // namespace tg
