#pragma once
// The op shared by the sparse and sliding_window variants: block-sparse attention over key
// ranges, with its gradient rule.
#include <memory>

#include "ops/attention/problem.h"
#include "ops/kernels/attention_sparse.h"

namespace tg::detail {

/// Attention restricted to `ranges` (and `band`, on top of p's causal and key padding masks),
/// recorded as node `name` (a string literal) saving q, k, v (or the packed qkv) and the weights
/// [B, H, ranges->per_head()]. p must carry no general attn_mask.
Tensor block_sparse_attention(const char* name, const AttentionProblem& p,
                              std::shared_ptr<const kernels::KeyRanges> ranges,
                              kernels::AttnBand band);

}  // namespace tg::detail
