// Dense attention as an op: forward through the dense kernels, saving q, k, v and the weights.
// A packed problem (attention_qkv) has one input, qkv [B, T, H + 2·Hkv, D]: the kernels read q, k,
// v in place and write its gradient in one buffer. Grouped kv heads (Hkv < H) are read in place.
#include <utility>

#include "autograd/tape.h"
#include "ops/attention/problem.h"
#include "ops/kernels/attention_dense.h"

namespace tg::detail {

Tensor dense_attention(const AttentionProblem& p, Tensor* weights_out) {
  const kernels::AttnDims d = p.dims;
  DType dt = p.q.dtype();
  // Where k and v start in their tensors: inside qkv's rows when packed ([H + 2·Hkv] heads a row).
  const int64_t k_off = p.packed ? d.H * d.D : 0, v_off = p.packed ? (d.H + d.kv_heads()) * d.D : 0;
  Tensor out = empty({d.B, d.T, d.H, d.Dv}, dt);
  Tensor weights = empty({d.B, d.H, d.T, d.S}, dt);  // [B, H, T, S], saved for backward
  dispatch(dt, [&]<class T>() {
    kernels::dense_attention_forward<T>(d, static_cast<T>(p.scale), p.mask<T>(), p.dropout,
                                        p.q.data<T>(), p.k.data<T>() + k_off, p.v.data<T>() + v_off,
                                        out.data<T>(), weights.data<T>());
  });
  kernels::AttnDropout dropout = p.dropout;
  double scale = p.scale;
  const bool causal = p.causal;
  if (p.packed) {
    Node* n = record("attention_dense_qkv", out, {&p.q}, [d, dropout, scale, causal, k_off, v_off](Node& n, const Tensor& dout) {
      Tensor qkv = n.saved("qkv"), w = n.saved("weights");
      Tensor dqkv = empty(qkv.shape(), qkv.dtype());  // every element written by the kernel
      dispatch(qkv.dtype(), [&]<class T>() {
        const T* x = qkv.data<T>();
        T* dx = dqkv.data<T>();
        kernels::dense_attention_backward<T>(d, static_cast<T>(scale), causal, dropout, x, x + k_off, x + v_off,
                                             w.data<T>(), dout.data<T>(), dx, dx + k_off, dx + v_off);
      });
      n.accumulate(0, std::move(dqkv));
    });
    if (n) {
      n->save("qkv", p.q);
      n->save("weights", weights);
    }
    if (weights_out) *weights_out = weights;
    return out;
  }
  Node* n = record("attention_dense", out, {&p.q, &p.k, &p.v}, [d, dropout, scale, causal](Node& n, const Tensor& dout) {
    Tensor q = n.saved("q"), k = n.saved("k"), v = n.saved("v"), w = n.saved("weights");
    // Only the gradients the inputs need are computed (the kernel skips a null one).
    Tensor dq = gradient_if(n, 0, q), dk = gradient_if(n, 1, k), dv = gradient_if(n, 2, v);
    dispatch(q.dtype(), [&]<class T>() {
      kernels::dense_attention_backward<T>(d, static_cast<T>(scale), causal, dropout, q.data<T>(), k.data<T>(),
                                           v.data<T>(), w.data<T>(), dout.data<T>(), data_or_null<T>(dq),
                                           data_or_null<T>(dk), data_or_null<T>(dv));
    });
    accumulate_needed(n, std::move(dq), std::move(dk), std::move(dv));
  });
  if (n) {
    n->save("q", p.q);
    n->save("k", p.k);
    n->save("v", p.v);
    n->save("weights", weights);
  }
  if (weights_out) *weights_out = weights;
  return out;
}

}  // namespace tg::detail
