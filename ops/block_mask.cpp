// BlockMask: classification of (query block, key block) pairs under a mask_mod, and the index
// lists the flex kernel walks (non-empty key blocks per query block, and the transpose).
#include "ops/block_mask.h"

#include <algorithm>
#include <limits>
#include <sstream>

#include "autograd/error.h"
#include "ops/kernels/parallel.h"

namespace tg {

struct BlockMask::Data {
  int64_t B = 1, H = 1, T = 0, S = 0, q_offset = 0, block = 1, nq = 0, nk = 0;
  std::vector<uint8_t> kind;        // [B, H, nq, nk]
  std::vector<int64_t> kv_start;    // [B * H * nq + 1]
  std::vector<int32_t> kv_index;    // non-empty key blocks per (b, h, i), increasing
  std::vector<int64_t> q_start;     // [B * H * nk + 1]
  std::vector<int32_t> q_index;     // non-empty query blocks per (b, h, j), increasing
  std::vector<int64_t> run_start;   // [B, H, nq, nk]: a partial block's runs in `runs`, or -1
  std::vector<int32_t> runs;        // per row of such a block: the keys [first, end) it sees
  int64_t counts[3] = {0, 0, 0};    // empty, partial, full
  MaskMod mask_mod;
};

namespace {

int64_t block_count(int64_t n, int64_t b) { return (n + b - 1) / b; }

// A row of n flags for combining two mask rows: on the stack for a tile row (n <= 256), on the
// heap for longer ones (create_block_mask's whole rows). Each call has its own, so nested
// and_masks / or_masks do not share one.
struct RowScratch {
  bool small[256];
  std::unique_ptr<bool[]> big;
  bool* data;
  explicit RowScratch(int64_t n) : data(n <= 256 ? small : (big.reset(new bool[size_t(n)]), big.get())) {}
};

// One row of a query block against one key block: how many keys it sees, the first and the
// one after the last (first = end = 0 when none).
struct RowInBlock {
  int32_t count = 0, first = 0, end = 0;
};

RowInBlock scan(const bool* row, int64_t s0, int64_t s1) {
  RowInBlock r;
  for (int64_t s = s0; s < s1; ++s)
    if (row[s]) {
      if (r.count++ == 0) r.first = int32_t(s);
      r.end = int32_t(s + 1);
    }
  return r;
}

// When every row of partial block (row block, key block j) sees one run of keys (or none),
// appends each row's [first, end) to `runs` and returns where they start; else -1 (the kernel
// then evaluates the mask_mod on the block's rows).
int64_t record_runs(const std::vector<RowInBlock>& seen, int64_t rows, int64_t nk, int64_t j,
                    std::vector<int32_t>& runs) {
  for (int64_t r = 0; r < rows; ++r) {
    const RowInBlock& x = seen[size_t(r * nk + j)];
    if (x.count != x.end - x.first) return -1;
  }
  const int64_t start = int64_t(runs.size());
  for (int64_t r = 0; r < rows; ++r) {
    const RowInBlock& x = seen[size_t(r * nk + j)];
    runs.push_back(x.first);
    runs.push_back(x.end);
  }
  return start;
}

// Fills the index lists and counts from `kind`.
void index_blocks(BlockMask::Data& m) {
  const int64_t bh = m.B * m.H;
  m.kv_start.assign(size_t(bh * m.nq + 1), 0);
  m.q_start.assign(size_t(bh * m.nk + 1), 0);
  m.kv_index.clear();
  m.q_index.clear();
  for (int64_t x = 0; x < bh; ++x)
    for (int64_t i = 0; i < m.nq; ++i) {
      for (int64_t j = 0; j < m.nk; ++j) {
        uint8_t k = m.kind[size_t((x * m.nq + i) * m.nk + j)];
        ++m.counts[k];
        if (k != kernels::kBlockEmpty) m.kv_index.push_back(int32_t(j));
      }
      m.kv_start[size_t(x * m.nq + i + 1)] = int64_t(m.kv_index.size());
    }
  for (int64_t x = 0; x < bh; ++x)
    for (int64_t j = 0; j < m.nk; ++j) {
      for (int64_t i = 0; i < m.nq; ++i)
        if (m.kind[size_t((x * m.nq + i) * m.nk + j)] != kernels::kBlockEmpty)
          m.q_index.push_back(int32_t(i));
      m.q_start[size_t(x * m.nk + j + 1)] = int64_t(m.q_index.size());
    }
}

}  // namespace

MaskMod and_masks(const MaskMod& a, const MaskMod& b) {
  TG_CHECK(a.defined() && b.defined(), "and_masks: both mask_mods must be defined");
  MaskMod m;
  m.name = "and(" + a.name + ", " + b.name + ")";
  m.row = [ra = a.row, rb = b.row](int64_t bb, int64_t h, int64_t q, int64_t k0, int64_t n, bool* out) {
    RowScratch tmp(n);
    ra(bb, h, q, k0, n, out);
    rb(bb, h, q, k0, n, tmp.data);
    for (int64_t c = 0; c < n; ++c) out[c] = out[c] && tmp.data[c];
  };
  m.check = [ca = a.check, cb = b.check](int64_t B, int64_t H, int64_t T, int64_t S, int64_t off) {
    if (ca) ca(B, H, T, S, off);
    if (cb) cb(B, H, T, S, off);
  };
  return m;
}

MaskMod or_masks(const MaskMod& a, const MaskMod& b) {
  TG_CHECK(a.defined() && b.defined(), "or_masks: both mask_mods must be defined");
  MaskMod m = and_masks(a, b);  // for check
  m.name = "or(" + a.name + ", " + b.name + ")";
  m.row = [ra = a.row, rb = b.row](int64_t bb, int64_t h, int64_t q, int64_t k0, int64_t n, bool* out) {
    RowScratch tmp(n);
    ra(bb, h, q, k0, n, out);
    rb(bb, h, q, k0, n, tmp.data);
    for (int64_t c = 0; c < n; ++c) out[c] = out[c] || tmp.data[c];
  };
  return m;
}

BlockMask create_block_mask(const MaskMod& mask_mod, int64_t B, int64_t H, int64_t T, int64_t S,
                            int64_t block_size, int64_t q_offset) {
  TG_CHECK(mask_mod.defined(), "create_block_mask: the mask_mod is undefined");
  TG_CHECK(block_size >= 1, "create_block_mask: block size must be positive, got {} (mask {}, B {} H {} T {} S {})",
           block_size, mask_mod.name, B, H, T, S);
  TG_CHECK(B >= 1 && H >= 1 && T >= 0 && S >= 0,
           "create_block_mask: sizes must be B >= 1, H >= 1, T >= 0, S >= 0; got B {} H {} T {} S {} (mask {})",
           B, H, T, S, mask_mod.name);
  TG_CHECK(q_offset >= 0 && q_offset <= S,
           "create_block_mask: query offset {} is beyond the keys: it must be in [0, S = {}] (mask {}, T {})",
           q_offset, S, mask_mod.name, T);
  if (mask_mod.check) mask_mod.check(B, H, T, S, q_offset);
  auto m = std::make_shared<BlockMask::Data>();
  m->B = B, m->H = H, m->T = T, m->S = S, m->q_offset = q_offset, m->block = block_size;
  m->nq = block_count(T, block_size), m->nk = block_count(S, block_size);
  m->mask_mod = mask_mod;
  m->kind.assign(size_t(B * H * m->nq * m->nk), kernels::kBlockEmpty);
  m->run_start.assign(m->kind.size(), -1);
  const int64_t nq = m->nq, nk = m->nk;
  // Each query block's runs (see record_runs), offsets first relative to its own list.
  std::vector<std::vector<int32_t>> runs_of(size_t(B * H * nq));
  const bool keep_runs = S <= std::numeric_limits<int32_t>::max();  // runs hold key positions as int32
  // One task per query block: evaluate each of its rows over all keys; per (row, key block) the
  // visible keys' count and first and last position.
  kernels::parallel_for(0, B * H * nq, 1, [&](int64_t lo, int64_t hi) {
    std::unique_ptr<bool[]> row(new bool[size_t(S)]);
    std::vector<RowInBlock> seen(size_t(std::min(block_size, T) * nk));  // [row, key block]
    for (int64_t x = lo; x < hi; ++x) {
      int64_t b = x / nq / H, h = x / nq % H, i = x % nq;
      int64_t t0 = i * block_size, rows = std::min(block_size, T - t0);
      for (int64_t r = 0; r < rows; ++r) {
        mask_mod.row(b, h, q_offset + t0 + r, 0, S, row.get());
        for (int64_t j = 0; j < nk; ++j)
          seen[size_t(r * nk + j)] = scan(row.get(), j * block_size, std::min(S, (j + 1) * block_size));
      }
      for (int64_t j = 0; j < nk; ++j) {
        int64_t cells = rows * std::min(block_size, S - j * block_size), v = 0;
        for (int64_t r = 0; r < rows; ++r) v += seen[size_t(r * nk + j)].count;
        const size_t at = size_t(x * nk + j);
        m->kind[at] = v == 0 ? kernels::kBlockEmpty : v == cells ? kernels::kBlockFull : kernels::kBlockPartial;
        if (m->kind[at] == kernels::kBlockPartial && keep_runs)
          m->run_start[at] = record_runs(seen, rows, nk, j, runs_of[size_t(x)]);
      }
    }
  });
  // The lists one after another; each block's offset moved by its list's start.
  for (int64_t x = 0; x < B * H * nq; ++x) {
    const int64_t base = int64_t(m->runs.size());
    for (int64_t j = 0; j < nk; ++j)
      if (int64_t& start = m->run_start[size_t(x * nk + j)]; start >= 0) start += base;
    m->runs.insert(m->runs.end(), runs_of[size_t(x)].begin(), runs_of[size_t(x)].end());
  }
  index_blocks(*m);
  TG_CHECK(T == 0 || S == 0 || m->counts[0] < int64_t(m->kind.size()),
           "create_block_mask: mask_mod {} hides every (query, key) pair of [B, H, T, S] = [{}, {}, {}, {}] "
           "(q_offset {}): every row would be zeros",
           mask_mod.name, B, H, T, S, q_offset);
  BlockMask out;
  out.data_ = std::move(m);
  return out;
}

BlockMask BlockMask::full(int64_t T, int64_t S, int64_t block_size, int64_t q_offset) {
  TG_CHECK(block_size >= 1, "BlockMask::full: block size must be positive, got {}", block_size);
  TG_CHECK(T >= 0 && S >= 0 && q_offset >= 0 && q_offset <= S,
           "BlockMask::full: needs T, S >= 0 and a query offset in [0, S]; got T {} S {} q_offset {}", T, S, q_offset);
  auto m = std::make_shared<Data>();
  m->T = T, m->S = S, m->block = block_size, m->q_offset = q_offset;
  m->nq = block_count(T, block_size), m->nk = block_count(S, block_size);
  m->kind.assign(size_t(m->nq * m->nk), kernels::kBlockFull);
  m->mask_mod.name = "none";
  index_blocks(*m);
  BlockMask out;
  out.data_ = std::move(m);
  return out;
}

int64_t BlockMask::batch() const { return data_ ? data_->B : 0; }
int64_t BlockMask::heads() const { return data_ ? data_->H : 0; }
int64_t BlockMask::q_len() const { return data_ ? data_->T : 0; }
int64_t BlockMask::kv_len() const { return data_ ? data_->S : 0; }
int64_t BlockMask::q_offset() const { return data_ ? data_->q_offset : 0; }
int64_t BlockMask::block_size() const { return data_ ? data_->block : 0; }
int64_t BlockMask::q_blocks() const { return data_ ? data_->nq : 0; }
int64_t BlockMask::kv_blocks() const { return data_ ? data_->nk : 0; }

const MaskMod& BlockMask::mask_mod() const {
  TG_CHECK(defined(), "BlockMask: undefined");
  return data_->mask_mod;
}

BlockKind BlockMask::kind(int64_t b, int64_t h, int64_t i, int64_t j) const {
  TG_CHECK(defined(), "BlockMask::kind: undefined mask");
  const Data& m = *data_;
  TG_CHECK(i >= 0 && i < m.nq && j >= 0 && j < m.nk && b >= 0 && h >= 0,
           "BlockMask::kind: block ({}, {}) of (b {}, h {}) is outside {} x {} blocks", i, j, b, h, m.nq, m.nk);
  int64_t x = (m.B == 1 ? 0 : b % m.B) * m.H + (m.H == 1 ? 0 : h % m.H);
  return static_cast<BlockKind>(m.kind[size_t((x * m.nq + i) * m.nk + j)]);
}

int64_t BlockMask::count(BlockKind kind) const { return data_ ? data_->counts[int(kind)] : 0; }

int64_t BlockMask::bytes() const {
  if (!data_) return 0;
  const Data& m = *data_;
  return int64_t(m.kind.size() + 8 * (m.kv_start.size() + m.q_start.size() + m.run_start.size()) +
                 4 * (m.kv_index.size() + m.q_index.size() + m.runs.size()));
}

std::string BlockMask::to_string(int64_t b, int64_t h) const {
  if (!data_) return "BlockMask(undefined: every block full)\n";
  const Data& m = *data_;
  std::ostringstream os;
  os << "BlockMask(" << m.mask_mod.name << ": B " << m.B << " H " << m.H << " T " << m.T << " S " << m.S
     << " q_offset " << m.q_offset << ", block " << m.block << "): " << m.counts[2] << " full, " << m.counts[1]
     << " partial, " << m.counts[0] << " empty; b " << b << " h " << h << "\n";
  for (int64_t i = 0; i < m.nq; ++i) {
    for (int64_t j = 0; j < m.nk; ++j) {
      BlockKind k = kind(b, h, i, j);
      os << (k == BlockKind::full ? '#' : k == BlockKind::partial ? '+' : '.');
    }
    os << '\n';
  }
  return os.str();
}

std::ostream& operator<<(std::ostream& os, const BlockMask& mask) { return os << mask.to_string(); }

kernels::FlexBlocks BlockMask::view() const {
  const Data& m = *data_;
  kernels::FlexBlocks v;
  v.bq = v.bk = m.block;
  v.nq = m.nq, v.nk = m.nk, v.mB = m.B, v.mH = m.H;
  v.kind = m.kind.data();
  v.kv_start = m.kv_start.data(), v.kv_index = m.kv_index.data();
  v.q_start = m.q_start.data(), v.q_index = m.q_index.data();
  if (!m.run_start.empty()) v.run_start = m.run_start.data(), v.runs = m.runs.data();
  return v;
}

}  // namespace tg
