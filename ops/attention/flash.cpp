// Flash attention as an op: forward through the tiled kernel, saving q, k, v, the output and
// the log-sum-exp (no [T, S] weights); backward recomputes the weights tile by tile. A packed
// problem (attention_qkv) has one input, qkv [B, T, 3, H, D]: the kernels read q, k, v in place
// and write its gradient in one buffer. With a band (sliding_window) or a block layout (sparse),
// the register-blocked f32 tiles run only the key tiles of each query tile's band or blocks.
#include <algorithm>
#include <array>
#include <memory>
#include <type_traits>
#include <utility>

#include "autograd/tape.h"
#include "ops/attention/problem.h"
#include "ops/kernels/attention_flash.h"
#include "ops/kernels/attention_flash_tiled.h"

namespace tg::detail {
namespace {

// The masks as the kernels see them, rebuilt in backward from the saved mask tensors.
template <class T>
kernels::AttnMask<T> mask_of(const kernels::AttnDims& d, bool causal, const Tensor& key_padding,
                             const Tensor& attn_mask, const int64_t* strides) {
  AttentionProblem p;
  p.dims = d;
  p.causal = causal;
  p.key_padding = key_padding;
  p.attn_mask = attn_mask;
  std::copy(strides, strides + 4, p.mask_strides);
  return p.mask<T>();
}

// The register-blocked tiles' restriction of a call: a band, blocks (a sparse layout), or neither.
struct Restriction {
  kernels::AttnBand band;
  std::shared_ptr<const kernels::LayoutBlockMask> blocks;

  bool any() const {
    return blocks || band.left != kernels::kNoBand.left || band.right != kernels::kNoBand.right;
  }
};

// Forward and backward through the register-blocked tiles with a band or blocks, else through
// flash_attention_forward/backward, which take those tiles where they apply.
template <class T>
void flash_forward(const kernels::AttnDims& d, T scale, const kernels::AttnMask<T>& mask, const Restriction& r,
                   const kernels::AttnDropout& dropout, const T* q, const T* k, const T* v, T* out, T* lse) {
  if constexpr (std::is_same_v<T, float>) {
    if (r.any()) {
      const kernels::FlexBlocks view = r.blocks ? r.blocks->view() : kernels::FlexBlocks{};
      const kernels::TiledBlocks tiles{view};
      return kernels::flash_tiled_forward(d, scale, mask, r.band, dropout, q, k, v, out, lse,
                                          r.blocks ? &tiles : nullptr);
    }
  }
  kernels::flash_attention_forward<T>(d, scale, mask, dropout, q, k, v, out, lse);
}

template <class T>
void flash_backward(const kernels::AttnDims& d, T scale, const kernels::AttnMask<T>& mask, const Restriction& r,
                    const kernels::AttnDropout& dropout, const T* q, const T* k, const T* v, const T* out,
                    const T* lse, const T* dout, T* delta, T* dq, T* dk, T* dv) {
  if constexpr (std::is_same_v<T, float>) {
    if (r.any()) {
      const kernels::FlexBlocks view = r.blocks ? r.blocks->view() : kernels::FlexBlocks{};
      const kernels::TiledBlocks tiles{view};
      return kernels::flash_tiled_backward(d, scale, mask, r.band, dropout, q, k, v, out, lse, dout, delta, dq, dk,
                                           dv, r.blocks ? &tiles : nullptr);
    }
  }
  kernels::flash_attention_backward<T>(d, scale, mask, dropout, q, k, v, out, lse, dout, delta, dq, dk, dv);
}

}  // namespace

bool flash_band_applies(const AttentionProblem& p) {
  return p.q.dtype() == DType::f32 && !p.attn_mask.defined() &&
         kernels::flash_tiled_applies(p.dims, p.mask<float>());
}

Tensor flash_attention(const AttentionProblem& p) {
  return flash_band_attention(p.packed ? "attention_flash_qkv" : "attention_flash", p, kernels::kNoBand);
}

Tensor flash_band_attention(const char* name, const AttentionProblem& p, kernels::AttnBand band,
                            std::shared_ptr<const kernels::LayoutBlockMask> blocks) {
  const Restriction restriction{band, std::move(blocks)};
  const kernels::AttnDims d = p.dims;
  DType dt = p.q.dtype();
  // Where k and v start in their tensors: inside qkv's rows when packed.
  const bool packed = p.packed;
  const int64_t k_off = packed ? d.H * d.D : 0, v_off = packed ? (d.H + d.kv_heads()) * d.D : 0;
  Tensor out = empty({d.B, d.T, d.H, d.Dv}, dt);
  Tensor lse = empty({d.B, d.H, d.T}, dt);  // [B, H, T], saved for backward
  dispatch(dt, [&]<class T>() {
    flash_forward<T>(d, static_cast<T>(p.scale), p.mask<T>(), restriction, p.dropout, p.q.data<T>(),
                     p.k.data<T>() + k_off, p.v.data<T>() + v_off, out.data<T>(), lse.data<T>());
  });
  kernels::AttnDropout dropout = p.dropout;
  double scale = p.scale;
  bool causal = p.causal;
  std::array<int64_t, 4> strides = {p.mask_strides[0], p.mask_strides[1], p.mask_strides[2],
                                    p.mask_strides[3]};
  auto rule = [d, dropout, scale, causal, strides, packed, k_off, v_off, restriction](Node& n, const Tensor& dout) {
    Tensor q = n.saved("q"), o = n.saved("out"), lse = n.saved("lse");
    Tensor k = packed ? q : n.saved("k"), v = packed ? q : n.saved("v");  // packed: q is qkv
    Tensor key_padding = n.saved("key_padding"), attn_mask = n.saved("attn_mask");
    // Packed: one gradient of qkv [B, T, 3, H, D], every element written by the kernel. Else
    // only the gradients the inputs need (the kernel skips a null one).
    Tensor dq = packed ? empty(q.shape(), q.dtype()) : gradient_if(n, 0, q);
    Tensor dk = packed ? dq : gradient_if(n, 1, k), dv = packed ? dq : gradient_if(n, 2, v);
    Tensor delta = empty({d.B, d.H, d.T}, q.dtype());  // workspace: rowsum(dO ∘ O) [B, H, T]
    dispatch(q.dtype(), [&]<class T>() {
      kernels::AttnMask<T> mask = mask_of<T>(d, causal, key_padding, attn_mask, strides.data());
      flash_backward<T>(d, static_cast<T>(scale), mask, restriction, dropout, q.data<T>(), k.data<T>() + k_off,
                        v.data<T>() + v_off, o.data<T>(), lse.data<T>(), dout.data<T>(), delta.data<T>(),
                        data_or_null<T>(dq), data_or_null<T>(dk, k_off), data_or_null<T>(dv, v_off));
    });
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
    n->save("out", out);
    n->save("lse", lse);
    n->save("key_padding", p.key_padding);  // b8 [B, S] or undefined
    n->save("attn_mask", p.attn_mask);      // broadcast to [B, H, T, S] by strides, or undefined
  }
  return out;
}

}  // namespace tg::detail
