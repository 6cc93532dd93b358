#pragma once
// What each attention variant must compute, written with dense attention and plain ops: the
// reference every variant is checked against before it is timed (the attention bench) and that
// users can call to check their own settings.
#include "ops/attention.h"

namespace tg {

/// The keys each query sees under `spec`'s pattern, b8 [T, S] (true = visible): causal, the
/// sliding band, or the sparse layout, for queries at key positions spec.query_offset + t; key
/// padding is not included.
Tensor attention_pattern(const AttentionSpec& spec, int64_t T, int64_t S);

/// The true entries of attention_pattern(spec, T, S), counted row by row (block by block for
/// sparse) without building the [T, S] pattern: the visible (query, key) pairs whose FLOPs the
/// attention bench counts.
int64_t attention_visible_pairs(const AttentionSpec& spec, int64_t T, int64_t S);

/// The same result as attention(q, k, v, spec) computed the plain way: dense attention with the
/// variant's pattern as attn_mask, or, for linear, φ(Q)φ(K)ᵀ masked, times V, over its row sums.
/// Grouped kv heads (k, v [B, S, Hkv, D]) are repeated. No dropout; materialises [B, H, T, S].
Tensor attention_reference(const Tensor& q, const Tensor& k, const Tensor& v, const AttentionSpec& spec);

}  // namespace tg
