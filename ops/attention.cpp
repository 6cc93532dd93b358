// attention(): checks the inputs and the spec, resolves the masks, and hands the problem to the
// variant's op in ops/attention/.
#include "ops/attention.h"

#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <vector>

#include "autograd/error.h"
#include "ops/attention/problem.h"
#include "ops/shape_ops.h"

namespace tg {
namespace {

void check_inputs(const Tensor& q, const Tensor& k, const Tensor& v) {
  TG_CHECK(q.defined() && k.defined() && v.defined(), "attention: q, k and v must be defined");
  TG_CHECK(q.dim() == 4 && k.dim() == 4 && v.dim() == 4,
           "attention: q, k, v must be [B, T, H, D], [B, S, Hkv, D], [B, S, Hkv, Dv]; got {}, {}, {}",
           shape_str(q.shape()), shape_str(k.shape()), shape_str(v.shape()));
  TG_CHECK(is_floating(q.dtype()) && q.dtype() == k.dtype() && q.dtype() == v.dtype(),
           "attention: q, k, v must share one floating dtype; got {}, {}, {}", q.dtype(), k.dtype(),
           v.dtype());
  TG_CHECK(k.size(0) == q.size(0) && v.size(0) == q.size(0) && v.size(2) == k.size(2) &&
               k.size(3) == q.size(3) && v.size(1) == k.size(1),
           "attention: shapes q {}, k {}, v {} do not fit [B, T, H, D], [B, S, Hkv, D], [B, S, Hkv, Dv]",
           shape_str(q.shape()), shape_str(k.shape()), shape_str(v.shape()));
  TG_CHECK(k.size(2) > 0 && q.size(2) % k.size(2) == 0,
           "attention: the kv heads Hkv = {} of k {} must divide the query heads H = {} of q {}", k.size(2),
           shape_str(k.shape()), q.size(2), shape_str(q.shape()));
}

void check_query_offset(const AttentionSpec& spec, int64_t T, int64_t S) {
  TG_CHECK(spec.query_offset >= 0 && (spec.query_offset == 0 || spec.query_offset + T <= S),
           "attention: query_offset {} puts the T = {} queries beyond the S = {} keys (need 0 <= "
           "query_offset and query_offset + T <= S)",
           spec.query_offset, T, S);
}

// key_lengths or key_padding_mask -> b8 [B, S].
Tensor resolve_key_padding(const AttentionSpec& spec, int64_t B, int64_t S) {
  TG_CHECK(!(spec.key_padding_mask.defined() && !spec.key_lengths.empty()),
           "attention: give key_padding_mask or key_lengths, not both");
  if (spec.key_padding_mask.defined()) {
    const Tensor& m = spec.key_padding_mask;
    TG_CHECK(m.dtype() == DType::b8 && m.shape() == Shape({B, S}),
             "attention: key_padding_mask must be b8 [B, S] = [{}, {}], got {} {}", B, S, m.dtype(),
             shape_str(m.shape()));
    return m;
  }
  if (spec.key_lengths.empty()) return Tensor();
  TG_CHECK(int64_t(spec.key_lengths.size()) == B, "attention: key_lengths has {} entries for a batch of {}",
           spec.key_lengths.size(), B);
  Tensor m = empty({B, S}, DType::b8);
  bool* p = m.data<bool>();
  for (int64_t b = 0; b < B; ++b) {
    int64_t len = spec.key_lengths[size_t(b)];
    TG_CHECK(len >= 0 && len <= S, "attention: key_lengths[{}] = {} is outside [0, S={}]", b, len, S);
    for (int64_t s = 0; s < S; ++s) p[b * S + s] = s >= len;
  }
  return m;
}

// The general mask, checked to broadcast to [B, H, T, S]; strides 0 along broadcast axes.
void resolve_attn_mask(const AttentionSpec& spec, detail::AttentionProblem& p) {
  if (!spec.attn_mask.defined()) return;
  const Tensor& m = spec.attn_mask;
  const auto& d = p.dims;
  Shape full = {d.B, d.H, d.T, d.S};
  TG_CHECK(m.dim() <= 4 && broadcasts_to(m.shape(), full),
           "attention: attn_mask of shape {} does not broadcast to [B, H, T, S] = {}", shape_str(m.shape()),
           shape_str(full));
  TG_CHECK(m.dtype() == DType::b8 || is_floating(m.dtype()),
           "attention: attn_mask must be b8 or floating, got {}", m.dtype());
  p.attn_mask = m.dtype() == DType::b8 ? m : m.detach().to(p.q.dtype());
  Shape padded(4 - m.dim(), 1);
  padded.insert(padded.end(), m.shape().begin(), m.shape().end());
  std::vector<int64_t> strides = contiguous_strides(padded);
  for (int i = 0; i < 4; ++i) p.mask_strides[i] = padded[size_t(i)] == 1 ? 0 : strides[size_t(i)];
}

// The problem of q, k, v (tensors of the sizes in `dims`) under `spec`: masks resolved and
// checked, dropout's Philox blocks reserved.
detail::AttentionProblem make_problem(const Tensor& q, const Tensor& k, const Tensor& v,
                                      const kernels::AttnDims& dims, const AttentionSpec& spec,
                                      const Tensor* weights) {
  detail::AttentionProblem p;
  p.q = q, p.k = k, p.v = v;
  p.dims = dims;
  p.spec = &spec;
  p.causal = spec.causal;
  p.dims.query_offset = spec.query_offset;
  TG_CHECK(dims.D > 0, "attention: head width D must be positive, got shape {}", shape_str(q.shape()));
  p.scale = spec.scale.value_or(1.0 / std::sqrt(static_cast<double>(dims.D)));
  p.key_padding = resolve_key_padding(spec, p.dims.B, p.dims.S);
  resolve_attn_mask(spec, p);
  TG_CHECK(spec.dropout_p >= 0.0 && spec.dropout_p <= 1.0, "attention: dropout_p must be in [0, 1], got {}",
           spec.dropout_p);
  if (spec.dropout_p > 0.0) {
    Generator& gen = spec.generator ? *spec.generator : default_generator();
    p.dropout = {spec.dropout_p, gen.seed(), gen.advance(kernels::AttnDropout::blocks(p.dims))};
  }
  TG_CHECK(weights == nullptr || spec.variant == AttentionVariant::dense,
           "attention: only the dense variant returns its weights (asked of {})",
           attention_variant_name(spec.variant));
  return p;
}

// The variant's op on a checked problem (q, k, v separate or packed in one tensor).
Tensor run_variant(const detail::AttentionProblem& p, const AttentionSpec& spec, Tensor* weights) {
  const bool general = p.attn_mask.defined();
  switch (spec.variant) {
    case AttentionVariant::dense: return detail::dense_attention(p, weights);
    case AttentionVariant::flash: return detail::flash_attention(p);
    case AttentionVariant::sliding_window:
      TG_CHECK(!general, "attention: sliding_window takes causal and key padding masks, not attn_mask");
      TG_CHECK(spec.window >= 1, "attention: sliding_window needs window >= 1, got {}", spec.window);
      return detail::sliding_window_attention(p);
    case AttentionVariant::sparse:
      TG_CHECK(!general, "attention: sparse takes causal and key padding masks, not attn_mask");
      return detail::sparse_attention(p);
    case AttentionVariant::linear:
      TG_CHECK(!general, "attention: linear takes causal and key padding masks, not attn_mask");
      TG_CHECK(spec.dropout_p == 0.0, "attention: linear has no attention weights to drop out");
      return detail::linear_attention(p);
  }
  fail("attention: unknown variant");
}

}  // namespace

namespace detail {

Tensor attention_repeating_kv_heads(const AttentionProblem& p) {
  const int64_t H = p.dims.H, Hkv = p.dims.kv_heads();
  AttentionProblem r = p;  // the same masks, scale and dropout draws
  Tensor k = p.k, v = p.v;
  if (p.packed) {  // p.q is qkv [B, T, H + 2·Hkv, D]: its pieces, copied out
    r.q = narrow(p.q, 2, 0, H);
    k = narrow(p.q, 2, H, Hkv);
    v = narrow(p.q, 2, H + Hkv, Hkv);
    r.packed = false;
    r.dims.q_row = 0;
  }
  r.k = repeat_kv_heads(k, H / Hkv);
  r.v = repeat_kv_heads(v, H / Hkv);
  r.dims.Hkv = 0;
  r.dims.k_row = r.dims.v_row = 0;
  return run_variant(r, *p.spec, nullptr);
}

}  // namespace detail

Tensor repeat_kv_heads(const Tensor& x, int64_t group) {
  TG_CHECK(x.defined() && x.dim() == 4 && group >= 1,
           "repeat_kv_heads: x must be [B, S, Hkv, D] and group >= 1, got {} and {}",
           x.defined() ? shape_str(x.shape()) : "undefined", group);
  if (group == 1) return x;
  const int64_t B = x.size(0), S = x.size(1), Hkv = x.size(2), D = x.size(3);
  Tensor grouped = expand(reshape(x, {B, S, Hkv, 1, D}), {B, S, Hkv, group, D});  // copies
  return reshape(grouped, {B, S, Hkv * group, D});
}

Tensor attention(const Tensor& q, const Tensor& k, const Tensor& v, const AttentionSpec& spec,
                 Tensor* weights) {
  check_inputs(q, k, v);
  const int64_t T = q.size(1), S = k.size(1), H = q.size(2), Hkv = k.size(2);
  check_query_offset(spec, T, S);
  const bool positional = spec.variant == AttentionVariant::sliding_window || spec.variant == AttentionVariant::sparse;
  if (spec.causal && spec.query_offset > 0 && spec.query_offset >= S - 1 && !positional) {
    // One query at the last key sees every key (the band and the sparse layout depend on its
    // position, so not for those): plain non-causal attention, the same numbers.
    AttentionSpec all = spec;
    all.causal = false;
    all.query_offset = 0;
    return attention(q, k, v, all, weights);
  }
  if (spec.variant == AttentionVariant::sparse && spec.query_offset > 0 && !spec.attn_mask.defined()) {
    // The layout's rows of the query positions: query_offset.. of the layout over
    // query_offset + T positions, run as dense attention with that mask.
    AttentionSpec rows = spec;
    rows.variant = AttentionVariant::dense;
    rows.attn_mask = narrow(sparse_layout_mask(spec.sparse, spec.query_offset + T, S, spec.causal), 0,
                            spec.query_offset, T);
    return attention(q, k, v, rows, weights);
  }
  kernels::AttnDims dims{q.size(0), T, S, H, q.size(3), v.size(3)};
  dims.Hkv = Hkv;
  return run_variant(make_problem(q, k, v, dims, spec, weights), spec, weights);
}

Tensor attention_qkv(const Tensor& qkv, const AttentionSpec& spec, Tensor* weights) {
  TG_CHECK(qkv.defined() && qkv.dim() == 5 && qkv.size(2) == 3,
           "attention_qkv: qkv must be [B, T, 3, H, D], got {}", qkv.defined() ? shape_str(qkv.shape()) : "undefined");
  const int64_t B = qkv.size(0), T = qkv.size(1), H = qkv.size(3), D = qkv.size(4);
  return attention_qkv(reshape(qkv, {B, T, 3 * H, D}), H, spec, weights);
}

Tensor attention_qkv(const Tensor& qkv, int64_t kv_heads, const AttentionSpec& spec, Tensor* weights) {
  TG_CHECK(qkv.defined() && qkv.dim() == 4,
           "attention_qkv: qkv must be [B, T, H + 2 * Hkv, D], got {}",
           qkv.defined() ? shape_str(qkv.shape()) : "undefined");
  TG_CHECK(is_floating(qkv.dtype()), "attention_qkv: qkv must be floating, got {}", qkv.dtype());
  const int64_t B = qkv.size(0), T = qkv.size(1), n = qkv.size(2), D = qkv.size(3);
  const int64_t Hkv = kv_heads, H = n - 2 * kv_heads;
  TG_CHECK(Hkv >= 1 && H >= 1 && H % Hkv == 0,
           "attention_qkv: qkv {} holds H + 2 * Hkv heads; Hkv = {} leaves H = {}, which Hkv must divide",
           shape_str(qkv.shape()), Hkv, H);
  check_query_offset(spec, T, T);
  kernels::AttnDims dims{B, T, T, H, D, D};
  dims.Hkv = Hkv;
  dims.q_row = dims.k_row = dims.v_row = (H + 2 * Hkv) * D;  // q, k, v heads side by side in each row of qkv
  detail::AttentionProblem p = make_problem(qkv, qkv, qkv, dims, spec, weights);
  p.packed = true;  // every kernel reads q, k, v in place from the rows of qkv
  return run_variant(p, spec, weights);
}

AttentionVariant parse_attention_variant(std::string_view text, AttentionSpec* spec) {
  if (text == "dense") return AttentionVariant::dense;
  if (text == "flash") return AttentionVariant::flash;
  if (text == "sparse") return AttentionVariant::sparse;
  if (text.starts_with("sparse:")) {
    // sparse:BLOCK or sparse:BLOCK:WINDOW:GLOBAL:RANDOM (BigBird's layout, see SparseLayout).
    std::vector<int64_t> v;
    std::string rest(text.substr(7));
    size_t start = 0;
    while (start <= rest.size()) {
      size_t end = std::min(rest.find(':', start), rest.size());
      std::string part = rest.substr(start, end - start);
      char* stop = nullptr;
      errno = 0;
      long long x = std::strtoll(part.c_str(), &stop, 10);
      TG_CHECK(!part.empty() && stop && *stop == '\0' && x >= 0 && errno != ERANGE,
               "attention variant '{}': expected sparse:BLOCK or sparse:BLOCK:WINDOW:GLOBAL:RANDOM with "
               "non-negative integers",
               text);
      v.push_back(x);
      start = end + 1;
    }
    TG_CHECK(v.size() == 1 || v.size() == 4,
             "attention variant '{}': expected sparse:BLOCK or sparse:BLOCK:WINDOW:GLOBAL:RANDOM", text);
    if (spec) {
      spec->sparse.block_size = v[0];
      if (v.size() == 4) {
        spec->sparse.window_blocks = v[1];
        spec->sparse.global_blocks = v[2];
        spec->sparse.random_blocks = v[3];
      }
    }
    return AttentionVariant::sparse;
  }
  if (text == "linear") return AttentionVariant::linear;
  if (text.starts_with("sliding:")) {
    std::string w(text.substr(8));
    char* end = nullptr;
    errno = 0;
    long long window = std::strtoll(w.c_str(), &end, 10);
    TG_CHECK(!w.empty() && end && *end == '\0' && window >= 1 && errno != ERANGE,
             "attention variant '{}': the window after 'sliding:' must be a positive integer below 2^63", text);
    if (spec) spec->window = window;
    return AttentionVariant::sliding_window;
  }
  fail("unknown attention variant '{}' (expected dense, flash, sliding:W, sparse[:B[:W:G:R]] or linear)", text);
}

std::string attention_variant_name(AttentionVariant variant) {
  switch (variant) {
    case AttentionVariant::dense: return "dense";
    case AttentionVariant::flash: return "flash";
    case AttentionVariant::sliding_window: return "sliding_window";
    case AttentionVariant::sparse: return "sparse";
    case AttentionVariant::linear: return "linear";
  }
  return "?";
}

}  // namespace tg
