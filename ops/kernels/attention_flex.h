#pragma once
// Programmable attention (FlexAttention) on the CPU: the flash kernel's tiles and online softmax,
// run only over the (query block, key block) tiles a block mask marks non-empty, with a
// mask_mod evaluated on the partial tiles and a score_mod applied to every computed score.
//
//   s  = scale · q_t · k_s                      (scores, one GEMM per tile)
//   s' = score_mod(s, b, h, q_offset + t, s)    (per tile row, in place)
//   s' = -inf where mask_mod(b, h, q_offset + t, s) is false (partial tiles only)
//   out = softmax(s') V; lse = log Σ exp(s') saved; backward recomputes s' from q, k and lse.
//
// A partial tile runs in groups of 32 query rows, each trimmed to the key columns one of its rows
// sees (flex::Ctx::spans): a diagonal tile costs about 5/8 of a full one, so causal is no slower
// than flash, and sliding:256 (blocks 128) computes about 290 keys per query, not 384.
//
// f32 problems whose blocks are whole register tiles (query blocks a multiple of 64 rows, key
// blocks of 64 columns, as the default 128) and D = Dv a multiple of 8 run on flash's
// register-blocked tiles instead (attention_flash_tiled.h), restricted to the block mask's
// non-empty tiles; on a partial block's tiles the rows' runs of visible keys
// (FlexBlocks::runs_from) mask the scores where the block mask has them, else the mask rows are
// evaluated. With a score_mod only the forward does (the mod applied a key column at a time); its
// backward, which also gives the captured tensors their gradients, runs here.
//
// Layout (as the flash kernel): q [B, T, H, D], k [B, S, Hkv, D], v [B, S, Hkv, Dv],
// out [B, T, H, Dv], lse [B, H, T]. Query head h reads kv head h / (H / Hkv) in place
// (grouped-query attention without copying k and v).
//
// The mods are reached through a policy type `Mods` (see FlexMods below): the library's kernel
// is compiled once per scalar with type-erased mods called once per tile row
// (attention_flex.cpp); attention_flex_impl.h holds the templated kernel, so a caller may also
// compile its own mods into it. Measured (B 1, H 4, T = S = 2048, D 64, f32, block 128, one
// thread, CPU time, best of 9; causal documents of 100 tokens: 31 partial and 225 empty blocks):
//                             score_mod s - c               score_mod 20·tanh(s/20)
//                             fwd    bwd    mods alone      fwd    bwd    mods alone
//   compiled in (template)    21.0   45.2   2.1 ms          43     72     15.6 ms
//   type-erased per tile row  20.6   46.3   1.9 ms          41     72     15.4 ms
//   type-erased per element   27.3   54.5   8.0 ms          48     80     20.1 ms
// One indirect call per row costs nothing measurable next to compiling the mods in; a call per
// element costs 4x on the mods themselves (+30% forward with a cheap mod). Hence per row.
#include <cstdint>
#include <functional>

#include "ops/kernels/attention_mask.h"

namespace tg::kernels {

/// Sizes of one flex problem (see the layout above) and the position of query row 0.
struct FlexDims {
  int64_t B = 0, T = 0, S = 0, H = 0, Hkv = 0, D = 0, Dv = 0;
  int64_t q_offset = 0;  ///< query row t is at position q_offset + t (cached decoding)

  /// The [B, H, T, S] view used by dropout's keys (the same weights as dense for a seed).
  AttnDims attn() const { return {B, T, S, H, D, Dv}; }
};

/// Block kinds of a block mask.
enum : uint8_t { kBlockEmpty = 0, kBlockPartial = 1, kBlockFull = 2 };

/// One mask_mod over a tile row: out[c] = mask_mod(b, h, q, k0 + c) for c < n (true = may
/// attend). q is a position (q_offset + row).
using MaskRowFn = std::function<void(int64_t b, int64_t h, int64_t q, int64_t k0, int64_t n, bool* out)>;

/// A block mask as the kernel reads it (the arrays live in tg::BlockMask).
/// mB, mH are the mask's batch and head sizes (1 = shared by every batch / head).
struct FlexBlocks {
  int64_t bq = 1, bk = 1;  ///< block sizes: query rows, key columns
  int64_t nq = 0, nk = 0;  ///< blocks along T and S
  int64_t mB = 1, mH = 1;
  const uint8_t* kind = nullptr;   ///< [mB, mH, nq, nk]: kBlockEmpty / Partial / Full
  const int64_t* kv_start = nullptr;  ///< [mB * mH * nq + 1] CSR: non-empty key blocks of a query block
  const int32_t* kv_index = nullptr;
  const int64_t* q_start = nullptr;   ///< [mB * mH * nk + 1] CSR: non-empty query blocks of a key block
  const int32_t* q_index = nullptr;
  /// Optional, [mB, mH, nq, nk] as kind: for a partial block each of whose rows sees one run of
  /// keys (or none), where in `runs` its rows' runs start, else -1. runs holds per row the
  /// run's [first, end) (key positions; first = end when the row sees none of the block).
  const int64_t* run_start = nullptr;
  const int32_t* runs = nullptr;

  int64_t bh(int64_t b, int64_t h) const { return (mB == 1 ? 0 : b) * mH + (mH == 1 ? 0 : h); }
  uint8_t kind_of(int64_t b, int64_t h, int64_t i, int64_t j) const {
    return kind[(bh(b, h) * nq + i) * nk + j];
  }
  /// The runs ([first, end) pairs) of query rows t, t + 1, ... in key block j, when block
  /// (t / bq, j) of (b, h) has them; else null.
  const int32_t* runs_from(int64_t b, int64_t h, int64_t t, int64_t j) const {
    if (!run_start) return nullptr;
    const int64_t i = t / bq, start = run_start[(bh(b, h) * nq + i) * nk + j];
    return start < 0 ? nullptr : runs + start + 2 * (t - i * bq);
  }
};

/// A score_mod over a tile row, type-erased (called once per row; the per-element function is
/// inlined inside). `captured` are the captured tensors' data (in T).
///   apply:    s[c] = score_mod(s[c], b, h, q, k0 + c)
///   column:   s[r] = score_mod(s[r], b, h, q0 + r, k) (one key against n queries: a column of
///             the register tiles' transposed score tile)
///   backward: ds[c] = ds[c] · ∂score_mod/∂s at s[c] (s: the scores before the mod), and adds
///             ds[c] · ∂score_mod/∂captured into grads[i] where grads[i] is not null.
template <class T>
struct ScoreRows {
  using Apply = void (*)(const void* fn, const T* const* captured, T* s, int64_t b, int64_t h,
                         int64_t q, int64_t k0, int64_t n);
  using Backward = void (*)(const void* fn, const T* const* captured, T* const* grads, const T* s,
                            T* ds, int64_t b, int64_t h, int64_t q, int64_t k0, int64_t n);
  using Column = void (*)(const void* fn, const T* const* captured, T* s, int64_t b, int64_t h, int64_t q0,
                          int64_t k, int64_t n);
  const void* fn = nullptr;
  Apply apply = nullptr;
  Backward backward = nullptr;
  Column column = nullptr;
};

/// The library's mods: a type-erased mask row and score rows. A policy for the templated kernel
/// provides the same three members (see attention_flex_impl.h).
template <class T>
struct FlexMods {
  const MaskRowFn* mask = nullptr;   ///< null: partial blocks do not occur
  ScoreRows<T> score;                ///< score.apply null: no score_mod
  const T* const* captured = nullptr;
  T* const* grads = nullptr;         ///< [slots][n_captured] gradient buffers (null entries: none)
  int64_t n_captured = 0;

  bool has_score() const { return score.apply != nullptr; }
  void mask_row(int64_t b, int64_t h, int64_t q, int64_t k0, int64_t n, bool* out) const {
    (*mask)(b, h, q, k0, n, out);
  }
  void score_row(T* s, int64_t b, int64_t h, int64_t q, int64_t k0, int64_t n) const {
    score.apply(score.fn, captured, s, b, h, q, k0, n);
  }
  void score_column(T* s, int64_t b, int64_t h, int64_t q0, int64_t k, int64_t n) const {
    score.column(score.fn, captured, s, b, h, q0, k, n);
  }
  void score_backward_row(const T* s, T* ds, int64_t b, int64_t h, int64_t q, int64_t k0,
                          int64_t n, int64_t slot) const {
    score.backward(score.fn, captured, grads && slot >= 0 ? grads + slot * n_captured : nullptr, s, ds, b, h, q,
                   k0, n);
  }
};

/// Gradient slots for captured tensors: pass 1 of the backward runs its tiles in this many fixed
/// groups (each group on one task, into its own buffers), summed in group order afterwards, so
/// captured gradients do not depend on the thread count.
inline constexpr int64_t kFlexGradSlots = 16;
/// The slots a backward over these sizes and blocks uses (min(kFlexGradSlots, work units)).
int64_t flex_grad_slots(const FlexDims& d, const FlexBlocks& blocks);

/// Forward: out [B, T, H, Dv], lse [B, H, T] (-inf and zeros for a row that sees no key).
template <class T>
void flex_attention_forward(const FlexDims& d, const FlexBlocks& blocks, const FlexMods<T>& mods,
                            T scale, const AttnDropout& dropout, const T* q, const T* k,
                            const T* v, T* out, T* lse);

/// Backward: writes dq [B, T, H, D], dk [B, S, Hkv, D], dv [B, S, Hkv, Dv] (overwriting), and
/// adds captured gradients into mods.grads' slots (flex_grad_slots of them). delta [B, H, T]
/// is workspace.
template <class T>
void flex_attention_backward(const FlexDims& d, const FlexBlocks& blocks, const FlexMods<T>& mods,
                             T scale, const AttnDropout& dropout, const T* q, const T* k,
                             const T* v, const T* out, const T* lse, const T* dout, T* delta,
                             T* dq, T* dk, T* dv);

}  // namespace tg::kernels
