// Linear attention as an op: the feature map chosen by spec.feature_map, forward through the
// linear kernels, and a gradient rule that recomputes the features and states from q, k, v
// (saved besides: the output, each query's denominator [B, H, T], and the states the backward
// starts from: non-causal each head's of all keys, causal the one before each chunk). spec.scale is not used
// by "elu"; "favor" scales its inputs by sqrt(scale) so its features estimate
// softmax(scale · q kᵀ).
#include <cmath>
#include <cstdlib>
#include <string>
#include <utility>

#include "autograd/error.h"
#include "autograd/tape.h"
#include "ops/attention/problem.h"
#include "ops/kernels/attention_linear.h"

namespace tg::detail {
namespace {

struct FeatureMapSpec {
  bool favor = false;
  int64_t M = 0;
  uint64_t seed = 0;
};

// "elu", or "favor[:M[:SEED]]" (M defaults to round(D ln D), at least D, as Performer's default).
FeatureMapSpec parse_feature_map(const std::string& text, int64_t D) {
  FeatureMapSpec f;
  f.M = D;
  if (text == "elu") return f;
  auto bad = [&]() {
    fail(
        "attention: linear: unknown feature_map '{}' (expected \"elu\", \"favor\", \"favor:M\" or "
        "\"favor:M:SEED\" with M >= 1)",
        text);
  };
  if (text != "favor" && !text.starts_with("favor:")) bad();
  f.favor = true;
  f.M =
      std::max<int64_t>(D, std::llround(static_cast<double>(D) * std::log(static_cast<double>(D))));
  if (text == "favor") return f;
  std::string rest = text.substr(6);
  size_t colon = rest.find(':');
  std::string m = rest.substr(0, colon);
  char* end = nullptr;
  long long parsed = std::strtoll(m.c_str(), &end, 10);
  if (m.empty() || *end != '\0' || parsed < 1) bad();
  f.M = parsed;
  if (colon != std::string::npos) {
    std::string s = rest.substr(colon + 1);
    unsigned long long seed = std::strtoull(s.c_str(), &end, 10);
    if (s.empty() || *end != '\0' || s[0] == '-') bad();
    f.seed = seed;
  }
  return f;
}

// The kernel's view of the feature map; W [M, D] is defined for FAVOR+ only.
template <class T>
kernels::LinearFeatures<T> features(int64_t M, double favor_scale, const Tensor& W) {
  kernels::LinearFeatures<T> f;
  f.M = M;
  if (W.defined()) {
    f.W = W.data<T>();
    f.favor_scale = static_cast<T>(favor_scale);
  }
  return f;
}

const bool* padding_ptr(const Tensor& mask) { return mask.defined() ? mask.data<bool>() : nullptr; }

}  // namespace

Tensor linear_attention(const AttentionProblem& p) {
  if (p.dims.kv_heads() != p.dims.H) return attention_repeating_kv_heads(p);
  const kernels::AttnDims d = p.dims;
  const DType dt = p.q.dtype();
  const FeatureMapSpec fm = parse_feature_map(p.spec->feature_map, d.D);
  Tensor W;  // FAVOR+ projection [M, D], saved for backward
  if (fm.favor) {
    TG_CHECK(p.scale > 0, "attention: linear with feature_map favor needs scale > 0, got {}",
             p.scale);
    W = empty({fm.M, d.D}, dt);
    dispatch(dt, [&]<class T>() { kernels::favor_projection<T>(fm.M, d.D, fm.seed, W.data<T>()); });
  }
  const int64_t M = fm.M;
  const double favor_scale = std::sqrt(p.scale);
  const bool causal = p.causal, has_padding = p.key_padding.defined(), favor = fm.favor;
  // Where k and v start in their tensors: inside qkv's rows when packed.
  const bool packed = p.packed;
  const int64_t k_off = packed ? d.H * d.D : 0, v_off = packed ? 2 * d.H * d.D : 0;

  Tensor out = empty({d.B, d.T, d.H, d.Dv}, dt);
  Tensor den = empty({d.B, d.H, d.T}, dt);  // φ(q)ᵀz of each query, for backward
  // The states [S, z] the backward starts from: non-causal each head's of all keys, causal the one
  // before each chunk of queries.
  Tensor states = empty({kernels::linear_attention_states_size(d, causal, M)}, dt);
  dispatch(dt, [&]<class T>() {
    kernels::linear_attention_forward<T>(d, causal, padding_ptr(p.key_padding),
                                         features<T>(M, favor_scale, W), p.q.data<T>(),
                                         p.k.data<T>() + k_off, p.v.data<T>() + v_off, out.data<T>(),
                                         den.data<T>(), states.data<T>());
  });
  // Backward recomputes the features from q, k, v chunk by chunk, and starts from the saved states.
  auto rule = [d, causal, has_padding, favor, M, favor_scale, packed, k_off, v_off](Node& n,
                                                                                   const Tensor& dout) {
    Tensor q = n.saved("q");
    Tensor k = packed ? q : n.saved("k"), v = packed ? q : n.saved("v");  // packed: q is qkv
    Tensor pad = has_padding ? n.saved("key_padding") : Tensor();
    Tensor W = favor ? n.saved("favor_projection") : Tensor();
    Tensor den = n.saved("den");
    Tensor states = n.saved("states");
    // Packed: one gradient of qkv [B, T, 3, H, D], every element written by the kernel.
    Tensor dq = empty(q.shape(), q.dtype());
    Tensor dk = packed ? dq : empty(k.shape(), k.dtype()), dv = packed ? dq : empty(v.shape(), v.dtype());
    dispatch(q.dtype(), [&]<class T>() {
      kernels::linear_attention_backward<T>(d, causal, padding_ptr(pad), features<T>(M, favor_scale, W),
                                            q.data<T>(), k.data<T>() + k_off, v.data<T>() + v_off,
                                            den.data<T>(), dout.data<T>(), dq.data<T>(),
                                            dk.data<T>() + k_off, dv.data<T>() + v_off,
                                            nullptr, states.data<T>());  // no workspace: the states are given
    });
    // The linear kernels compute dq, dk and dv together (their chunked states are shared).
    if (packed)
      n.accumulate(0, std::move(dq));
    else
      accumulate_needed(n, std::move(dq), std::move(dk), std::move(dv));
  };
  Node* n = packed ? record("attention_linear_qkv", out, {&p.q}, rule)
                   : record("attention_linear", out, {&p.q, &p.k, &p.v}, rule);
  if (n) {
    n->save("q", p.q);  // qkv [B, T, 3, H, D] when packed
    if (!packed) {
      n->save("k", p.k);
      n->save("v", p.v);
    }
    n->save("den", den);  // [B, H, T]
    n->save("states", states);  // [B, H, (chunks,) M (Dv + 1)]
    if (has_padding) n->save("key_padding", p.key_padding);  // b8 [B, S]
    if (favor) n->save("favor_projection", W);               // [M, D]
  }
  return out;
}

}  // namespace tg::detail
