#pragma once
// mask_mod and BlockMask: the "which keys may a query see" half of programmable attention.
//
// A mask_mod(b, h, q, k) -> bool says whether query position q of head h in batch b may attend
// to key k (true = may). A BlockMask is built from it once for (B, H, T, S) and a block size:
// for every (query block, key block) it records whether the block is empty (skipped), full (the
// mask_mod is not evaluated) or partial (evaluated per element, one tile row at a time). A
// partial block each of whose rows sees one run of keys (causal's diagonal, a sliding window's
// edges, documents) also keeps each row's run [first, end), so the register-tiled kernel masks
// its tiles without the mask_mod and skips those no row sees. Its memory is O(B·H·T·S / block²)
// plus 8 bytes a row of those partial blocks (O(T) for such patterns), never O(T·S); copies
// share it, so one mask serves every layer and step. Build it with B = 1 (H = 1) to share it across batches (heads): its mask_mod must
// then not depend on b (h), since the classification only asks about b = 0 (h = 0).
#include <functional>
#include <memory>
#include <ostream>
#include <string>
#include <vector>

#include "ops/kernels/attention_flex.h"

namespace tg {

/// A mask_mod, type-erased once per tile row: row(b, h, q, k0, n, out) writes
/// out[c] = mask_mod(b, h, q, k0 + c) for c < n.
struct MaskMod {
  std::string name;
  kernels::MaskRowFn row;
  /// Optional: checks the sizes the mask is used with (a captured vector's length), throwing
  /// tg::Error naming the op; called by create_block_mask.
  std::function<void(int64_t B, int64_t H, int64_t T, int64_t S, int64_t q_offset)> check;

  bool defined() const { return static_cast<bool>(row); }
};

/// A MaskMod from f(int64_t b, int64_t h, int64_t q, int64_t k) -> bool. f is inlined into the
/// row loop: one indirect call per tile row, none per element. Tiles run on several threads at
/// once, so f must only read what it captures (as must a score_mod).
template <class F>
MaskMod mask_mod(std::string name, F f) {
  MaskMod m;
  m.name = std::move(name);
  m.row = [f = std::move(f)](int64_t b, int64_t h, int64_t q, int64_t k0, int64_t n, bool* out) {
    for (int64_t c = 0; c < n; ++c) out[c] = f(b, h, q, k0 + c);
  };
  return m;
}

/// Both masks allow the key (and_masks), or either does (or_masks); as torch's and_masks/or_masks.
MaskMod and_masks(const MaskMod& a, const MaskMod& b);
MaskMod or_masks(const MaskMod& a, const MaskMod& b);

enum class BlockKind : uint8_t { empty = kernels::kBlockEmpty, partial = kernels::kBlockPartial, full = kernels::kBlockFull };

class BlockMask {
 public:
  /// Undefined: flex_attention then computes every block in full (no mask).
  BlockMask() = default;
  bool defined() const { return data_ != nullptr; }

  int64_t batch() const;      ///< B of the mask (1: shared by every batch)
  int64_t heads() const;      ///< H of the mask (1: shared by every head)
  int64_t q_len() const;      ///< T
  int64_t kv_len() const;     ///< S
  int64_t q_offset() const;   ///< query row t is at position q_offset + t
  int64_t block_size() const;
  int64_t q_blocks() const;   ///< ceil(T / block)
  int64_t kv_blocks() const;  ///< ceil(S / block)
  const MaskMod& mask_mod() const;

  /// The kind of block (i, j) of (b, h); b and h are taken modulo a shared (size-1) axis.
  BlockKind kind(int64_t b, int64_t h, int64_t i, int64_t j) const;
  /// Number of blocks of a kind over the whole mask.
  int64_t count(BlockKind kind) const;
  /// Bytes held by the classification and the index lists (O(B·H·T·S / block²)).
  int64_t bytes() const;
  /// The picture of (b, h): one line per query block, one character per key block:
  /// '#' full, '+' partial, '.' empty (skipped); a first line with sizes and counts.
  std::string to_string(int64_t b = 0, int64_t h = 0) const;

  /// The kernel's view of the arrays.
  kernels::FlexBlocks view() const;

  /// The mask every block of which is full (no mask_mod): what flex_attention runs without one
  /// (q_offset 0); with a q_offset, how to position queries for a score_mod without a mask.
  static BlockMask full(int64_t T, int64_t S, int64_t block_size, int64_t q_offset = 0);

  struct Data;

 private:
  std::shared_ptr<const Data> data_;
  friend BlockMask create_block_mask(const MaskMod&, int64_t, int64_t, int64_t, int64_t, int64_t,
                                     int64_t);
};

std::ostream& operator<<(std::ostream& os, const BlockMask& mask);

/// Classifies every block of (B, H, T, S) under `mask_mod` (evaluating it on every element
/// once). q_offset: query row t is at position q_offset + t (cached decoding), 0 <= q_offset
/// <= S. tg::Error naming create_block_mask and the sizes for a block size < 1, negative sizes,
/// a q_offset beyond the keys, a mask_mod whose check fails, or one that hides every pair.
BlockMask create_block_mask(const MaskMod& mask_mod, int64_t B, int64_t H, int64_t T, int64_t S,
                            int64_t block_size = 128, int64_t q_offset = 0);

}  // namespace tg
