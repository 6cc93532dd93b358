// Block-sparse attention as an op: the forward through the block-sparse kernels, saving q, k, v
// and the weights over the ranges; backward from those weights (no recomputation). A packed
// problem (attention_qkv) has one input, qkv [B, T, 3, H, D], read in place, and one gradient.
#include "ops/attention/block_sparse.h"

#include <utility>

#include "autograd/error.h"
#include "autograd/tape.h"

namespace tg::detail {

Tensor block_sparse_attention(const char* name, const AttentionProblem& p,
                              std::shared_ptr<const kernels::KeyRanges> ranges,
                              kernels::AttnBand band) {
  TG_CHECK(!p.attn_mask.defined(), "{}: takes causal and key padding masks, not attn_mask", name);
  const kernels::AttnDims d = p.dims;
  DType dt = p.q.dtype();
  // Where k and v start in their tensors: inside qkv's rows when packed.
  const bool packed = p.packed;
  const int64_t k_off = packed ? d.H * d.D : 0, v_off = packed ? 2 * d.H * d.D : 0;
  Tensor out = empty({d.B, d.T, d.H, d.Dv}, dt);
  Tensor weights = empty({d.B, d.H, ranges->per_head()}, dt);  // [B, H, per_head], saved
  dispatch(dt, [&]<class T>() {
    kernels::block_sparse_attention_forward<T>(d, static_cast<T>(p.scale), p.mask<T>(), band,
                                               *ranges, p.dropout, p.q.data<T>(), p.k.data<T>() + k_off,
                                               p.v.data<T>() + v_off, out.data<T>(), weights.data<T>());
  });
  kernels::AttnDropout dropout = p.dropout;
  double scale = p.scale;
  auto rule = [d, dropout, scale, ranges, packed, k_off, v_off](Node& n, const Tensor& dout) {
    Tensor q = n.saved("q"), w = n.saved("weights");
    Tensor k = packed ? q : n.saved("k"), v = packed ? q : n.saved("v");  // packed: q is qkv
    // Packed: one gradient of qkv [B, T, 3, H, D], every element written by the kernel. Else
    // only the gradients the inputs need (the kernel skips a null one).
    Tensor dq = packed ? empty(q.shape(), q.dtype()) : gradient_if(n, 0, q);
    Tensor dk = packed ? dq : gradient_if(n, 1, k), dv = packed ? dq : gradient_if(n, 2, v);
    Tensor ds = empty(w.shape(), w.dtype());  // [B, H, per_head]: the score gradients
    Tensor dropped = dropout.active() ? empty(w.shape(), w.dtype()) : Tensor();  // weights after dropout
    dispatch(q.dtype(), [&]<class T>() {
      kernels::block_sparse_attention_backward<T>(
          d, static_cast<T>(scale), dropout, *ranges, q.data<T>(), k.data<T>() + k_off, v.data<T>() + v_off,
          w.data<T>(), dout.data<T>(), data_or_null<T>(dq), data_or_null<T>(dk, k_off),
          data_or_null<T>(dv, v_off), ds.data<T>(), dropped.defined() ? dropped.data<T>() : nullptr);
    });
    ds = Tensor();
    dropped = Tensor();
    if (packed)
      n.accumulate(0, std::move(dq));
    else
      accumulate_needed(n, std::move(dq), std::move(dk), std::move(dv));
  };
  Node* n = packed ? record(name, out, {&p.q}, rule) : record(name, out, {&p.q, &p.k, &p.v}, rule);
  if (n) {
    n->save("q", p.q);  // qkv [B, T, 3, H, D] when packed
    if (!packed) {
      n->save("k", p.k);
      n->save("v", p.v);
    }
    n->save("weights", weights);
  }
  return out;
}

}  // namespace tg::detail
