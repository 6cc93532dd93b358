#pragma once
// The attention problem after checking and resolving the spec: what each variant's op receives.
// Each variant lives in its own file (ops/attention/<variant>.cpp): its forward, its gradient
// rule, and the node it records.
#include <memory>
#include <utility>

#include "autograd/node.h"
#include "ops/attention.h"
#include "ops/kernels/attention_mask.h"
#include "ops/kernels/attention_sparse.h"

namespace tg::detail {

struct AttentionProblem {
  Tensor q, k, v;  // [B, T, H, D], [B, S, H, D], [B, S, H, Dv]
  /// q, k and v are one tensor qkv [B, T, 3, H, D] (attention_qkv; dims' row strides say so):
  /// k and v start H * D and 2 * H * D elements into it. Every variant reads it in place.
  bool packed = false;
  kernels::AttnDims dims;
  double scale = 1.0;
  bool causal = false;
  Tensor key_padding;  // b8 [B, S] (true = padding), undefined when none
  Tensor attn_mask;    // b8 or q's dtype, broadcast to [B, H, T, S] by mask_strides; or undefined
  int64_t mask_strides[4] = {0, 0, 0, 0};
  kernels::AttnDropout dropout;
  const AttentionSpec* spec = nullptr;

  /// The kernel's view of the masks (pointers into the tensors above).
  template <class T>
  kernels::AttnMask<T> mask() const {
    kernels::AttnMask<T> m;
    m.causal = causal;
    m.offset = dims.query_offset;
    m.S = dims.S;
    if (key_padding.defined()) m.key_padding = key_padding.data<bool>();
    if (attn_mask.defined()) {
      if (attn_mask.dtype() == DType::b8)
        m.allow = attn_mask.data<bool>();
      else
        m.additive = attn_mask.data<T>();
      m.sb = mask_strides[0], m.sh = mask_strides[1], m.st = mask_strides[2], m.ss = mask_strides[3];
    }
    return m;
  }
};

/// A gradient buffer shaped like `input` when node input i needs a gradient, else undefined.
inline Tensor gradient_if(const Node& n, size_t i, const Tensor& input) {
  return n.needs_grad(i) ? empty(input.shape(), input.dtype()) : Tensor();
}

/// The kernels' pointer to a gradient (`offset` elements in), or null when it is not wanted.
template <class T>
T* data_or_null(Tensor& grad, int64_t offset = 0) {
  return grad.defined() ? grad.data<T>() + offset : nullptr;
}

/// Hands dq, dk, dv to inputs 0, 1, 2 of a q/k/v node, those that need them.
inline void accumulate_needed(Node& n, Tensor dq, Tensor dk, Tensor dv) {
  if (n.needs_grad(0)) n.accumulate(0, std::move(dq));
  if (n.needs_grad(1)) n.accumulate(1, std::move(dk));
  if (n.needs_grad(2)) n.accumulate(2, std::move(dv));
}

/// Variant entry points; each records its node when q, k or v requires grad.
Tensor dense_attention(const AttentionProblem& p, Tensor* weights);
Tensor flash_attention(const AttentionProblem& p);
/// Flash attention restricted to `band` (sliding_window's, on top of p's causal and key padding
/// masks) and to the blocks of `blocks` (sparse's layout) when given, recorded as node `name`
/// (a string literal), saving q, k, v, the output and the lse: memory O(T), weights recomputed
/// in backward. A band or blocks need flash_band_applies(p) (f32, the register-blocked tiles of
/// attention_flash_tiled.h), blocks of whole tiles; kNoBand without blocks is flash_attention.
Tensor flash_band_attention(const char* name, const AttentionProblem& p, kernels::AttnBand band,
                            std::shared_ptr<const kernels::LayoutBlockMask> blocks = nullptr);
bool flash_band_applies(const AttentionProblem& p);
Tensor sliding_window_attention(const AttentionProblem& p);
/// For the kernels that take one kv head per query head: p run again through its variant with
/// its grouped kv heads repeated (copies of k and v, whose gradients sum back over each group;
/// the same dropout draws).
/// Each variant's op decides: dense and flash (and sliding_window and sparse on the register
/// tiles) read each group's kv head in place.
Tensor attention_repeating_kv_heads(const AttentionProblem& p);
Tensor sparse_attention(const AttentionProblem& p);
Tensor linear_attention(const AttentionProblem& p);

}  // namespace tg::detail
