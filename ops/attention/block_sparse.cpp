// Block-sparse attention as an op: the forward through the block-sparse kernels, saving q, k, v
// and the weights over the ranges; backward from those weights (no recomputation).
#include "ops/attention/block_sparse.h"

#include "autograd/error.h"
#include "autograd/tape.h"

namespace tg::detail {

Tensor block_sparse_attention(const char* name, const AttentionProblem& p,
                              std::shared_ptr<const kernels::KeyRanges> ranges,
                              kernels::AttnBand band) {
  TG_CHECK(!p.attn_mask.defined(), "{}: takes causal and key padding masks, not attn_mask", name);
  const kernels::AttnDims d = p.dims;
  DType dt = p.q.dtype();
  Tensor out = empty({d.B, d.T, d.H, d.Dv}, dt);
  Tensor weights = empty({d.B, d.H, ranges->per_head()}, dt);  // [B, H, per_head], saved
  dispatch(dt, [&]<class T>() {
    kernels::block_sparse_attention_forward<T>(d, static_cast<T>(p.scale), p.mask<T>(), band,
                                               *ranges, p.dropout, p.q.data<T>(), p.k.data<T>(),
                                               p.v.data<T>(), out.data<T>(), weights.data<T>());
  });
  kernels::AttnDropout dropout = p.dropout;
  double scale = p.scale;
  Node* n = record(
      name, out, {&p.q, &p.k, &p.v}, [d, dropout, scale, ranges](Node& n, const Tensor& dout) {
        Tensor q = n.saved("q"), k = n.saved("k"), v = n.saved("v"), w = n.saved("weights");
        Tensor dq = empty(q.shape(), q.dtype()), dk = empty(k.shape(), k.dtype()),
               dv = empty(v.shape(), v.dtype());
        Tensor ds = empty(w.shape(), w.dtype());  // [B, H, per_head]: the score gradients
        Tensor dropped =
            dropout.active() ? empty(w.shape(), w.dtype()) : Tensor();  // weights after dropout
        dispatch(q.dtype(), [&]<class T>() {
          kernels::block_sparse_attention_backward<T>(
              d, static_cast<T>(scale), dropout, *ranges, q.data<T>(), k.data<T>(), v.data<T>(),
              w.data<T>(), dout.data<T>(), dq.data<T>(), dk.data<T>(), dv.data<T>(), ds.data<T>(),
              dropped.defined() ? dropped.data<T>() : nullptr);
        });
        ds = Tensor();
        dropped = Tensor();
        n.accumulate(0, std::move(dq));
        n.accumulate(1, std::move(dk));
        n.accumulate(2, std::move(dv));
      });
  if (n) {
    n->save("q", p.q);
    n->save("k", p.k);
    n->save("v", p.v);
    n->save("weights", weights);
  }
  return out;
}

}  // namespace tg::detail
