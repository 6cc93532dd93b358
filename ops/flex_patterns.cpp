// Ready patterns for flex_attention (see flex_patterns.h).
#include "ops/flex_patterns.h"

#include <cmath>
#include <cstdlib>
#include <memory>

#include "autograd/error.h"
#include "ops/kernels/sparse_layout.h"

namespace tg {

MaskMod causal_mask() {
  return mask_mod("causal", [](int64_t, int64_t, int64_t q, int64_t k) { return k <= q; });
}

MaskMod sliding_window_mask(int64_t window, bool causal) {
  TG_CHECK(window >= 1, "sliding_window_mask: window must be >= 1, got {}", window);
  if (causal)
    return mask_mod("sliding_window", [window](int64_t, int64_t, int64_t q, int64_t k) {
      return k <= q && q - k < window;
    });
  return mask_mod("sliding_window", [window](int64_t, int64_t, int64_t q, int64_t k) {
    return std::abs(q - k) <= window;
  });
}

MaskMod prefix_lm_mask(int64_t prefix) {
  TG_CHECK(prefix >= 0, "prefix_lm_mask: prefix must be >= 0, got {}", prefix);
  return mask_mod("prefix_lm", [prefix](int64_t, int64_t, int64_t q, int64_t k) { return k < prefix || k <= q; });
}

MaskMod document_mask(const Tensor& doc_ids) {
  TG_CHECK(doc_ids.defined() && doc_ids.dtype() == DType::i64 && (doc_ids.dim() == 1 || doc_ids.dim() == 2),
           "document_mask: doc_ids must be i64 [S] or [B, S], got {} {}",
           doc_ids.defined() ? std::string(dtype_name(doc_ids.dtype())) : "undefined",
           doc_ids.defined() ? shape_str(doc_ids.shape()) : "");
  auto ids = std::make_shared<std::vector<int64_t>>(doc_ids.data<int64_t>(), doc_ids.data<int64_t>() + doc_ids.numel());
  const int64_t len = doc_ids.size(-1), rows = doc_ids.dim() == 2 ? doc_ids.size(0) : 1;
  MaskMod m = mask_mod("document", [ids, len, rows](int64_t b, int64_t, int64_t q, int64_t k) {
    const int64_t* d = ids->data() + (rows == 1 ? 0 : b) * len;
    return d[q] == d[k];
  });
  Shape shape = doc_ids.shape();
  m.check = [shape, len, rows](int64_t B, int64_t, int64_t T, int64_t S, int64_t q_offset) {
    TG_CHECK(len == S && (rows == 1 || rows == B) && q_offset + T <= S,
             "document_mask: doc_ids {} must be [S] or [B, S] for B {} S {}, covering the query positions "
             "q_offset {} + T {}",
             shape_str(shape), B, S, q_offset, T);
  };
  return m;
}

MaskMod key_padding_mask(const Tensor& padding) {
  TG_CHECK(padding.defined() && padding.dtype() == DType::b8 && padding.dim() == 2,
           "key_padding_mask: padding must be b8 [B, S], got {} {}",
           padding.defined() ? std::string(dtype_name(padding.dtype())) : "undefined",
           padding.defined() ? shape_str(padding.shape()) : "");
  auto pad = std::make_shared<std::vector<char>>(padding.data<bool>(), padding.data<bool>() + padding.numel());
  const int64_t PB = padding.size(0), PS = padding.size(1);
  MaskMod m = mask_mod("key_padding", [pad, PS](int64_t b, int64_t, int64_t, int64_t k) {
    return !(*pad)[size_t(b * PS + k)];
  });
  m.check = [PB, PS](int64_t B, int64_t, int64_t, int64_t S, int64_t) {
    TG_CHECK(PB == B && PS == S, "key_padding_mask: padding [{}, {}] does not fit [B, S] = [{}, {}]", PB, PS, B, S);
  };
  return m;
}

MaskMod key_lengths_mask(std::vector<int64_t> lengths) {
  auto len = std::make_shared<std::vector<int64_t>>(std::move(lengths));
  MaskMod m = mask_mod("key_lengths", [len](int64_t b, int64_t, int64_t, int64_t k) { return k < (*len)[size_t(b)]; });
  m.check = [len](int64_t B, int64_t, int64_t, int64_t S, int64_t) {
    TG_CHECK(int64_t(len->size()) == B, "key_lengths_mask: {} lengths for a batch of {}", len->size(), B);
    for (int64_t l : *len)
      TG_CHECK(l >= 0 && l <= S, "key_lengths_mask: length {} is outside [0, S = {}]", l, S);
  };
  return m;
}

MaskMod bigbird_mask(const SparseLayout& l, int64_t T, int64_t S, bool causal) {
  TG_CHECK(l.block_size >= 1 && l.window_blocks >= 1 && l.window_blocks % 2 == 1 && l.global_blocks >= 0 &&
               l.random_blocks >= 0 && T >= 0 && S >= 0,
           "bigbird_mask: needs block_size >= 1, an odd window_blocks >= 1, global and random blocks >= 0, "
           "T, S >= 0; got block {} window {} global {} random {}, T {} S {}",
           l.block_size, l.window_blocks, l.global_blocks, l.random_blocks, T, S);
  kernels::BlockLayout layout = kernels::bigbird_layout(T, S, l.block_size, l.window_blocks, l.global_blocks,
                                                        l.random_blocks, l.seed, causal);
  // The layout's blocks as a [rows, cols] table: O(T·S / block²).
  auto on = std::make_shared<std::vector<char>>(size_t(layout.rows * layout.cols), 0);
  for (int64_t i = 0; i < layout.rows; ++i)
    for (int64_t e = layout.row_start[size_t(i)]; e < layout.row_start[size_t(i) + 1]; ++e)
      (*on)[size_t(i * layout.cols + layout.blocks[size_t(e)])] = 1;
  const int64_t bs = l.block_size, cols = layout.cols;
  MaskMod m = mask_mod(l.random_blocks ? "bigbird" : "longformer",
                       [on, bs, cols, causal](int64_t, int64_t, int64_t q, int64_t k) {
                         return (!causal || k <= q) && (*on)[size_t(q / bs * cols + k / bs)];
                       });
  m.check = [T, S](int64_t, int64_t, int64_t t, int64_t s, int64_t q_offset) {
    TG_CHECK(t == T && s == S && q_offset == 0,
             "bigbird_mask: the layout was built for T {} S {}, used with T {} S {} q_offset {}", T, S, t, s,
             q_offset);
  };
  return m;
}

MaskMod longformer_mask(int64_t block_size, int64_t window_blocks, int64_t global_blocks, int64_t T, int64_t S,
                        bool causal) {
  SparseLayout l{block_size, window_blocks, global_blocks, 0, 0};
  return bigbird_mask(l, T, S, causal);
}

MaskMod dilated_sliding_window_mask(int64_t window, int64_t dilation, bool causal) {
  TG_CHECK(window >= 0 && dilation >= 1, "dilated_sliding_window_mask: needs window >= 0 and dilation >= 1, got {} and {}",
           window, dilation);
  return mask_mod("dilated_sliding_window", [window, dilation, causal](int64_t, int64_t, int64_t q, int64_t k) {
    int64_t d = q - k;
    if (causal && d < 0) return false;
    return std::abs(d) <= window * dilation && d % dilation == 0;
  });
}

MaskMod attention_sink_mask(int64_t window, int64_t sinks) {
  TG_CHECK(window >= 1 && sinks >= 0, "attention_sink_mask: needs window >= 1 and sinks >= 0, got {} and {}",
           window, sinks);
  return mask_mod("attention_sink", [window, sinks](int64_t, int64_t, int64_t q, int64_t k) {
    return k <= q && (q - k < window || k < sinks);
  });
}

namespace {

struct Alibi {
  template <class T>
  T operator()(T s, int64_t, int64_t h, int64_t q, int64_t k, const ScoreCtx<T>& c) const {
    return s + c[0][h] * T(k - q);
  }
  template <class T>
  T backward(T, T g, int64_t, int64_t h, int64_t q, int64_t k, const ScoreCtx<T>& c) const {
    if (T* ds = c.grad(0)) ds[h] += g * T(k - q);
    return g;
  }
};

struct Softcap {
  double cap;
  template <class T>
  T operator()(T s, int64_t, int64_t, int64_t, int64_t, const ScoreCtx<T>&) const {
    return T(cap) * std::tanh(s / T(cap));
  }
  template <class T>
  T backward(T s, T g, int64_t, int64_t, int64_t, int64_t, const ScoreCtx<T>&) const {
    T t = std::tanh(s / T(cap));
    return g * (T(1) - t * t);
  }
};

struct RelativeBias {
  bool bidirectional;
  int64_t num_buckets, max_distance;
  template <class T>
  T operator()(T s, int64_t, int64_t h, int64_t q, int64_t k, const ScoreCtx<T>& c) const {
    return s + c[0][h * num_buckets + t5_relative_bucket(k - q, bidirectional, num_buckets, max_distance)];
  }
  template <class T>
  T backward(T, T g, int64_t, int64_t h, int64_t q, int64_t k, const ScoreCtx<T>& c) const {
    if (T* dt = c.grad(0)) dt[h * num_buckets + t5_relative_bucket(k - q, bidirectional, num_buckets, max_distance)] += g;
    return g;
  }
};

void check_captured_floating(const Tensor& t, const char* op, const char* what) {
  TG_CHECK(t.defined() && is_floating(t.dtype()), "{}: {} must be a floating tensor, got {}", op, what,
           t.defined() ? std::string(dtype_name(t.dtype())) : "undefined");
}

}  // namespace

ScoreMod alibi(const Tensor& slopes) {
  check_captured_floating(slopes, "alibi", "slopes");
  TG_CHECK(slopes.dim() == 1, "alibi: slopes must be [H], got {}", shape_str(slopes.shape()));
  ScoreMod m = score_mod("alibi", Alibi{}, {slopes});
  Shape shape = slopes.shape();
  m.check = [shape](int64_t, int64_t H, int64_t, int64_t, int64_t) {
    TG_CHECK(shape == Shape({H}), "flex_attention: score_mod alibi's slopes {} must be [H] = [{}]", shape_str(shape), H);
  };
  return m;
}

Tensor alibi_slopes(int64_t H, DType dtype) {
  TG_CHECK(H >= 1, "alibi_slopes: H must be >= 1, got {}", H);
  auto pow2 = [](int64_t n) {  // slopes for n a power of 2: start^(i+1), start = 2^(-8/n)
    std::vector<double> s;
    double start = std::pow(2.0, -8.0 / double(n));
    for (int64_t i = 0; i < n; ++i) s.push_back(std::pow(start, double(i + 1)));
    return s;
  };
  int64_t p = 1;
  while (p * 2 <= H) p *= 2;
  std::vector<double> s = pow2(p);
  if (p < H) {  // the paper's code: every other slope of 2p heads for the rest
    std::vector<double> extra = pow2(2 * p);
    for (int64_t i = 0; int64_t(s.size()) < H; i += 2) s.push_back(extra[size_t(i)]);
  }
  return tensor(s, {H}, dtype);
}

ScoreMod softcap(double cap) {
  TG_CHECK(cap > 0 && std::isfinite(cap), "softcap: cap must be positive and finite, got {}", cap);
  return score_mod("softcap", Softcap{cap});
}

int64_t t5_relative_bucket(int64_t relative, bool bidirectional, int64_t num_buckets, int64_t max_distance) {
  int64_t bucket = 0;
  if (bidirectional) {
    num_buckets /= 2;
    if (relative > 0) bucket += num_buckets;
    relative = std::abs(relative);
  } else {
    relative = relative < 0 ? -relative : 0;
  }
  const int64_t max_exact = num_buckets / 2;
  if (relative < max_exact) return bucket + relative;
  int64_t large = max_exact + int64_t(std::log(double(relative) / double(max_exact)) /
                                      std::log(double(max_distance) / double(max_exact)) *
                                      double(num_buckets - max_exact));
  return bucket + std::min(large, num_buckets - 1);
}

ScoreMod relative_position_bias(const Tensor& table, bool bidirectional, int64_t max_distance) {
  check_captured_floating(table, "relative_position_bias", "table");
  TG_CHECK(table.dim() == 2, "relative_position_bias: table must be [H, num_buckets], got {}", shape_str(table.shape()));
  const int64_t nb = table.size(1);
  TG_CHECK(nb >= (bidirectional ? 4 : 2) && max_distance > nb / (bidirectional ? 4 : 2),
           "relative_position_bias: needs num_buckets >= {} and max_distance > num_buckets / {}; got table {} and "
           "max_distance {}",
           bidirectional ? 4 : 2, bidirectional ? 4 : 2, shape_str(table.shape()), max_distance);
  ScoreMod m = score_mod("relative_position_bias", RelativeBias{bidirectional, nb, max_distance}, {table});
  Shape shape = table.shape();
  m.check = [shape](int64_t, int64_t H, int64_t, int64_t, int64_t) {
    TG_CHECK(shape[0] == H, "flex_attention: score_mod relative_position_bias's table {} must be [H = {}, num_buckets]",
             shape_str(shape), H);
  };
  return m;
}

}  // namespace tg
