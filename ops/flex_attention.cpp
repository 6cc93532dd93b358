// flex_attention as an op: checks, the forward through the flex kernel (saving q, k, v, the
// output and the log-sum-exp), and the gradient rule: the kernel's backward recomputes the
// weights over the same non-empty blocks and adds the captured tensors' gradients into fixed
// slots, summed here into one gradient per captured tensor.
#include "ops/flex_attention.h"

#include <algorithm>
#include <cmath>

#include "autograd/error.h"
#include "autograd/tape.h"

namespace tg {
namespace {

kernels::FlexDims check_flex_inputs(const Tensor& q, const Tensor& k, const Tensor& v,
                               const FlexOptions& options) {
  TG_CHECK(q.defined() && k.defined() && v.defined(), "flex_attention: q, k and v must be defined");
  TG_CHECK(q.dim() == 4 && k.dim() == 4 && v.dim() == 4,
           "flex_attention: q, k, v must be [B, T, H, D], [B, S, Hkv, D], [B, S, Hkv, Dv]; got {}, {}, {}",
           shape_str(q.shape()), shape_str(k.shape()), shape_str(v.shape()));
  TG_CHECK(is_floating(q.dtype()) && q.dtype() == k.dtype() && q.dtype() == v.dtype(),
           "flex_attention: q, k, v must share one floating dtype; got {}, {}, {}", q.dtype(), k.dtype(),
           v.dtype());
  kernels::FlexDims d;
  d.B = q.size(0), d.T = q.size(1), d.H = q.size(2), d.D = q.size(3);
  d.S = k.size(1), d.Hkv = k.size(2), d.Dv = v.size(3);
  TG_CHECK(k.size(0) == d.B && v.size(0) == d.B && k.size(3) == d.D && v.size(1) == d.S && v.size(2) == d.Hkv,
           "flex_attention: shapes q {}, k {}, v {} do not fit [B, T, H, D], [B, S, Hkv, D], [B, S, Hkv, Dv]",
           shape_str(q.shape()), shape_str(k.shape()), shape_str(v.shape()));
  TG_CHECK(d.D > 0 && d.H > 0 && d.Hkv > 0, "flex_attention: heads and head width must be positive; q {}, k {}",
           shape_str(q.shape()), shape_str(k.shape()));
  TG_CHECK(d.H % d.Hkv == 0,
           "flex_attention: kv heads ({}) must divide the query heads ({}); q {}, k {}, v {}", d.Hkv, d.H,
           shape_str(q.shape()), shape_str(k.shape()), shape_str(v.shape()));
  TG_CHECK(d.Hkv == d.H || options.enable_gqa,
           "flex_attention: k and v have {} heads and q has {}: grouped-query attention needs enable_gqa; "
           "q {}, k {}",
           d.Hkv, d.H, shape_str(q.shape()), shape_str(k.shape()));
  TG_CHECK(options.dropout_p >= 0.0 && options.dropout_p <= 1.0,
           "flex_attention: dropout_p must be in [0, 1], got {}", options.dropout_p);
  return d;
}

void check_block_mask(const BlockMask& m, const kernels::FlexDims& d) {
  TG_CHECK(m.q_len() == d.T && m.kv_len() == d.S && (m.batch() == 1 || m.batch() == d.B) &&
               (m.heads() == 1 || m.heads() == d.H),
           "flex_attention: block mask built for [B, H, T, S] = [{}, {}, {}, {}] does not fit q [B {}, T {}, H {}] "
           "and k [S {}] (its B and H may be 1)",
           m.batch(), m.heads(), m.q_len(), m.kv_len(), d.B, d.T, d.H, d.S);
}

void check_score_mod(const ScoreMod& mod, const kernels::FlexDims& d, DType dt) {
  for (size_t i = 0; i < mod.captured.size(); ++i) {
    const Tensor& c = mod.captured[i];
    TG_CHECK(c.defined() && c.dtype() == dt,
             "flex_attention: score_mod {} captured tensor {} must be {} like q, got {}", mod.name, i, dt,
             c.defined() ? std::string(dtype_name(c.dtype())) : "undefined");
  }
  if (mod.check) mod.check(d.B, d.H, d.T, d.S, d.q_offset);
}

template <class T>
kernels::FlexMods<T> mods_of(const ScoreMod& mod, const BlockMask& mask,
                             const std::vector<const T*>& captured) {
  kernels::FlexMods<T> m;
  if (mask.count(BlockKind::partial) > 0) m.mask = &mask.mask_mod().row;
  if (mod.defined()) m.score = mod.rows<T>();
  m.captured = captured.data();
  m.n_captured = int64_t(captured.size());
  return m;
}

// Keys under which the first captured tensors are saved, so backward through one modified in
// place since the forward throws (as for q, k, v); further ones are only held.
constexpr const char* kCapturedKeys[] = {"captured0", "captured1", "captured2", "captured3",
                                         "captured4", "captured5", "captured6", "captured7"};
constexpr size_t kSavedCaptured = sizeof(kCapturedKeys) / sizeof(kCapturedKeys[0]);

template <class T>
std::vector<const T*> captured_data(const std::vector<Tensor>& captured) {
  std::vector<const T*> p;
  for (const Tensor& c : captured) p.push_back(c.data<T>());
  return p;
}

}  // namespace

Tensor flex_attention(const Tensor& q, const Tensor& k, const Tensor& v, const ScoreMod& score_mod,
                      const BlockMask& block_mask, const FlexOptions& options, Tensor* lse_out) {
  kernels::FlexDims d = check_flex_inputs(q, k, v, options);
  BlockMask mask = block_mask.defined() ? block_mask : BlockMask::full(d.T, d.S, kFlexDefaultBlock);
  check_block_mask(mask, d);
  d.q_offset = mask.q_offset();
  DType dt = q.dtype();
  check_score_mod(score_mod, d, dt);
  const double scale = options.scale.value_or(1.0 / std::sqrt(static_cast<double>(d.D)));
  kernels::AttnDropout dropout;
  if (options.dropout_p > 0.0) {
    Generator& gen = options.generator ? *options.generator : default_generator();
    dropout = {options.dropout_p, gen.seed(), gen.advance(kernels::AttnDropout::blocks(d.attn()))};
  }
  Tensor out = empty({d.B, d.T, d.H, d.Dv}, dt);
  Tensor lse = empty({d.B, d.H, d.T}, dt);  // [B, H, T], saved for backward
  const kernels::FlexBlocks blocks = mask.view();
  dispatch(dt, [&]<class T>() {
    std::vector<const T*> cap = captured_data<T>(score_mod.captured);
    kernels::flex_attention_forward<T>(d, blocks, mods_of<T>(score_mod, mask, cap), static_cast<T>(scale),
                                       dropout, q.data<T>(), k.data<T>(), v.data<T>(), out.data<T>(),
                                       lse.data<T>());
  });
  if (lse_out) *lse_out = lse;
  std::vector<Tensor> inputs = {q, k, v};
  inputs.insert(inputs.end(), score_mod.captured.begin(), score_mod.captured.end());
  // The rule keeps the block mask and the score_mod (shared data, cheap copies).
  auto rule = [d, mask, score_mod, dropout, scale](Node& n, const Tensor& dout) {
    Tensor q = n.saved("q"), k = n.saved("k"), v = n.saved("v"), o = n.saved("out"), lse = n.saved("lse");
    for (size_t i = 0; i < std::min(kSavedCaptured, score_mod.captured.size()); ++i) n.saved(kCapturedKeys[i]);
    Tensor dq = empty(q.shape(), q.dtype()), dk = empty(k.shape(), k.dtype()), dv = empty(v.shape(), v.dtype());
    Tensor delta = empty({d.B, d.H, d.T}, q.dtype());  // workspace: rowsum(dO ∘ O) [B, H, T]
    const kernels::FlexBlocks blocks = mask.view();
    const size_t ncap = score_mod.captured.size();
    bool any = false;
    for (size_t i = 0; i < ncap; ++i) any = any || n.needs_grad(3 + i);
    const int64_t slots = any ? kernels::flex_grad_slots(d, blocks) : 0;
    std::vector<Tensor> buffers(ncap);  // [slots, numel] per captured tensor needing a gradient
    for (size_t i = 0; i < ncap; ++i)
      if (any && n.needs_grad(3 + i)) buffers[i] = zeros({slots, score_mod.captured[i].numel()}, q.dtype());
    dispatch(q.dtype(), [&]<class T>() {
      std::vector<const T*> cap = captured_data<T>(score_mod.captured);
      std::vector<T*> grads(size_t(slots) * ncap, nullptr);  // [slots][ncap]
      for (int64_t s = 0; s < slots; ++s)
        for (size_t i = 0; i < ncap; ++i)
          if (buffers[i].defined())
            grads[size_t(s) * ncap + i] = buffers[i].data<T>() + s * score_mod.captured[i].numel();
      kernels::FlexMods<T> mods = mods_of<T>(score_mod, mask, cap);
      if (any) mods.grads = grads.data();
      kernels::flex_attention_backward<T>(d, blocks, mods, static_cast<T>(scale), dropout, q.data<T>(),
                                          k.data<T>(), v.data<T>(), o.data<T>(), lse.data<T>(), dout.data<T>(),
                                          delta.data<T>(), dq.data<T>(), dk.data<T>(), dv.data<T>());
      for (size_t i = 0; i < ncap; ++i) {
        if (!buffers[i].defined()) continue;
        // Sum the slots in order: the same bits whatever the thread count.
        const int64_t numel = score_mod.captured[i].numel();
        Tensor g = zeros(score_mod.captured[i].shape(), q.dtype());
        T* gp = g.data<T>();
        const T* bp = buffers[i].data<T>();
        for (int64_t s = 0; s < slots; ++s)
          for (int64_t e = 0; e < numel; ++e) gp[e] += bp[s * numel + e];
        n.accumulate(3 + i, std::move(g));
      }
    });
    n.accumulate(0, std::move(dq));
    n.accumulate(1, std::move(dk));
    n.accumulate(2, std::move(dv));
  };
  if (Node* n = record("flex_attention", out, inputs, rule)) {
    n->save("q", q);
    n->save("k", k);
    n->save("v", v);
    n->save("out", out);
    n->save("lse", lse);
    for (size_t i = 0; i < std::min(kSavedCaptured, score_mod.captured.size()); ++i)
      n->save(kCapturedKeys[i], score_mod.captured[i]);
  }
  return out;
}

}  // namespace tg
