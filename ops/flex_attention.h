#pragma once
// flex_attention: programmable attention (as torch.nn.attention.flex_attention) in the flash
// style. The pattern is a mask_mod (through a BlockMask, ops/block_mask.h) and a score_mod:
//
//   s  = scale · q_t · k_s
//   s' = score_mod(s, b, h, q_offset + t, s)      may read captured tensors, differentiable
//   p  = softmax over the keys the mask_mod allows of s'
//   out_t = Σ_s p_ts v_s
//
// Only the non-empty blocks run, forward and backward; the backward recomputes the scores from
// the saved log-sum-exp. Ready patterns: ops/flex_patterns.h.
//
// Layout (as the flash kernel; DESIGN: kernels read [B, T, H, D] without a permute):
// q [B, T, H, D], k [B, S, Hkv, D], v [B, S, Hkv, Dv] -> out [B, T, H, Dv].
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "autograd/random.h"
#include "autograd/tensor.h"
#include "ops/block_mask.h"
#include "ops/kernels/attention_flex.h"

namespace tg {

/// What a score_mod sees besides the score: its captured tensors' data (contiguous, in the
/// scalar T of q) and, in backward, where to add their gradients.
template <class T>
struct ScoreCtx {
  const T* const* captured = nullptr;
  T* const* grads = nullptr;

  /// Data of captured tensor i.
  const T* operator[](size_t i) const { return captured[i]; }
  /// Where to add the gradient of captured tensor i (same layout as its data); null when no
  /// gradient is wanted.
  T* grad(size_t i) const { return grads ? grads[i] : nullptr; }
};

/// A score_mod with its captured tensors, type-erased once per tile row (the element function
/// is inlined in the row loop). Build one with score_mod(); the default is no score_mod.
struct ScoreMod {
  std::string name;
  /// Tensors the mod reads (a bias table, slopes), f32/f64 like q: those requiring gradients
  /// get them (they are inputs of flex_attention's node, so a table computed by other ops passes
  /// its gradient on). Data that takes no gradient (document ids) may instead be held by the
  /// functor itself.
  std::vector<Tensor> captured;
  kernels::ScoreRows<float> f32;
  kernels::ScoreRows<double> f64;
  std::shared_ptr<const void> fn;  // owns the functor the rows call
  /// Optional: checks the sizes the mod is used with (captured shapes), throwing tg::Error.
  std::function<void(int64_t B, int64_t H, int64_t T, int64_t S, int64_t q_offset)> check;

  bool defined() const { return fn != nullptr; }
  template <class T>
  const kernels::ScoreRows<T>& rows() const {
    if constexpr (std::is_same_v<T, float>) return f32;
    else return f64;
  }
};

namespace detail {
template <class T, class F>
kernels::ScoreRows<T> score_rows(const F* f) {
  kernels::ScoreRows<T> r;
  r.fn = f;
  r.apply = [](const void* fn, const T* const* cap, T* s, int64_t b, int64_t h, int64_t q,
               int64_t k0, int64_t n) {
    const F& mod = *static_cast<const F*>(fn);
    ScoreCtx<T> c{cap, nullptr};
    // The row is not the captured data: what the mod reads from it (ALiBi's slope of head h) is
    // loaded once per row, not once per element, and the loop can vectorise.
    T* __restrict__ row = s;
    for (int64_t i = 0; i < n; ++i) row[i] = mod(row[i], b, h, q, k0 + i, c);
  };
  r.column = [](const void* fn, const T* const* cap, T* s, int64_t b, int64_t h, int64_t q0, int64_t k,
                int64_t n) {
    const F& mod = *static_cast<const F*>(fn);
    ScoreCtx<T> c{cap, nullptr};
    T* __restrict__ column = s;
    for (int64_t i = 0; i < n; ++i) column[i] = mod(column[i], b, h, q0 + i, k, c);
  };
  r.backward = [](const void* fn, const T* const* cap, T* const* grads, const T* s, T* ds,
                  int64_t b, int64_t h, int64_t q, int64_t k0, int64_t n) {
    const F& mod = *static_cast<const F*>(fn);
    ScoreCtx<T> c{cap, grads};
    for (int64_t i = 0; i < n; ++i)
      if (ds[i] != T(0)) ds[i] = mod.backward(s[i], ds[i], b, h, q, k0 + i, c);
  };
  return r;
}
}  // namespace detail

/// A ScoreMod from a functor F with two member templates:
///   template <class T> T operator()(T score, int64_t b, int64_t h, int64_t q, int64_t k,
///                                   const ScoreCtx<T>& c) const;            // score'
///   template <class T> T backward(T score, T dscore, int64_t b, int64_t h, int64_t q, int64_t k,
///                                 const ScoreCtx<T>& c) const;
/// backward returns dscore · ∂score'/∂score and adds dscore · ∂score'/∂captured[i] into
/// c.grad(i) where that is not null. h is the query head; q a position (q_offset + row).
/// backward is called only where dscore != 0 (never on masked scores).
template <class F>
ScoreMod score_mod(std::string name, F f, std::vector<Tensor> captured = {}) {
  auto owned = std::make_shared<const F>(std::move(f));
  ScoreMod m;
  m.name = std::move(name);
  m.captured = std::move(captured);
  m.f32 = detail::score_rows<float, F>(owned.get());
  m.f64 = detail::score_rows<double, F>(owned.get());
  m.fn = std::move(owned);
  return m;
}

namespace detail {
template <class Apply, class Backward>
struct LambdaMod {
  Apply apply;
  Backward grad;
  template <class T>
  T operator()(T s, int64_t b, int64_t h, int64_t q, int64_t k, const ScoreCtx<T>& c) const {
    return apply(s, b, h, q, k, c);
  }
  template <class T>
  T backward(T s, T g, int64_t b, int64_t h, int64_t q, int64_t k, const ScoreCtx<T>& c) const {
    return grad(s, g, b, h, q, k, c);
  }
};
}  // namespace detail

/// The same from two generic lambdas (which, unlike a local struct, may be written inside a
/// function):
///   apply(auto score, int64_t b, int64_t h, int64_t q, int64_t k, const auto& c) -> score'
///   backward(auto score, auto dscore, int64_t b, int64_t h, int64_t q, int64_t k, const auto& c)
/// e.g. a learned per-head bias:
///   score_mod("head_bias", [](auto s, int64_t, int64_t h, int64_t, int64_t, const auto& c) { return s + c[0][h]; },
///             [](auto, auto g, int64_t, int64_t h, int64_t, int64_t, const auto& c) {
///               if (auto* d = c.grad(0)) d[h] += g;
///               return g; }, {bias});
template <class Apply, class Backward>
ScoreMod score_mod(std::string name, Apply apply, Backward backward, std::vector<Tensor> captured = {}) {
  return score_mod(std::move(name), detail::LambdaMod<Apply, Backward>{std::move(apply), std::move(backward)},
                   std::move(captured));
}

struct FlexOptions {
  /// Multiplies q·k before the score_mod; 1/sqrt(D) when not set.
  std::optional<double> scale;
  /// Dropout on the weights after the softmax; drops the weights dense attention drops for the
  /// same generator seed and offset (keyed by the flat index of [B, H, T, S]).
  double dropout_p = 0.0;
  Generator* generator = nullptr;  ///< default_generator() when null
  /// Allows k and v with fewer heads Hkv than q (H % Hkv == 0): query head h reads kv head
  /// h / (H / Hkv), in place (as PyTorch's enable_gqa).
  bool enable_gqa = false;
};

/// Block size flex_attention uses when no BlockMask is given.
inline constexpr int64_t kFlexDefaultBlock = 128;

/// Attention over q [B, T, H, D], k [B, S, Hkv, D], v [B, S, Hkv, Dv] -> [B, T, H, Dv],
/// recorded for backward (gradients to q, k, v and to the score_mod's captured tensors that
/// require them). block_mask (undefined: no mask) must have been built for T and S, with
/// batch 1 or B and heads 1 or H; its q_offset positions the queries. A row that sees no key
/// gives zeros. With `lse`, the log-sum-exp [B, H, T] of s' over the visible keys (-inf for a
/// row that sees none) is returned there (no gradient flows through it; as return_lse).
/// tg::Error naming flex_attention and the shapes for inputs that do not fit.
Tensor flex_attention(const Tensor& q, const Tensor& k, const Tensor& v,
                      const ScoreMod& score_mod = {}, const BlockMask& block_mask = {},
                      const FlexOptions& options = {}, Tensor* lse = nullptr);

}  // namespace tg
