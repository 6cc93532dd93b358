#include "models/decoders/generate.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>

#include "autograd/available_memory.h"
#include "autograd/checked_size.h"
#include "autograd/error.h"
#include "autograd/tape.h"
#include "ops/shape_ops.h"

namespace tg::models {
namespace {

// Puts the model in eval mode for its scope and restores the previous mode.
class EvalScope {
 public:
  explicit EvalScope(nn::Module& m) : m_(m), was_training_(m.is_training()) { m_.eval(); }
  ~EvalScope() { m_.train(was_training_); }

 private:
  nn::Module& m_;
  bool was_training_;
};

// Columns [start, end) of seq [B, N] i64 -> a new [B, end - start] tensor.
Tensor columns(const Tensor& seq, int64_t start, int64_t end) {
  const int64_t B = seq.size(0), N = seq.size(1), n = end - start;
  Tensor out = empty({B, n}, DType::i64);
  for (int64_t b = 0; b < B; ++b)
    std::memcpy(out.data<int64_t>() + b * n, seq.data<int64_t>() + b * N + start, size_t(n) * sizeof(int64_t));
  return out;
}

}  // namespace

Tensor sample_next(const Tensor& logits, double temperature, int64_t top_k, Generator& gen) {
  TG_CHECK(logits.defined() && logits.dim() == 2 && is_floating(logits.dtype()) && logits.size(1) > 0,
           "sample_next: logits must be floating [B, V], got {}",
           logits.defined() ? shape_str(logits.shape()) : "undefined");
  TG_CHECK(temperature >= 0 && std::isfinite(temperature), "sample_next: temperature must be >= 0, got {}",
           temperature);
  TG_CHECK(top_k >= 0, "sample_next: top_k must be >= 0 (0 keeps every token), got {}", top_k);
  const int64_t B = logits.size(0), V = logits.size(1);
  const std::vector<double> all = logits.to_vector();
  Tensor next = empty({B}, DType::i64);
  Tensor u = temperature > 0 ? rand({B}, gen, DType::f64) : Tensor();
  std::vector<double> row(size_t(V), 0.0);
  for (int64_t b = 0; b < B; ++b) {
    const double* l = all.data() + b * V;
    if (temperature == 0) {
      next.data<int64_t>()[b] = std::max_element(l, l + V) - l;
      continue;
    }
    for (int64_t i = 0; i < V; ++i) row[size_t(i)] = l[i] / temperature;
    if (top_k > 0 && top_k < V) {
      // Keep the values >= the k-th largest (ties at the threshold kept, as nanoGPT's topk filter).
      std::vector<double> sorted = row;
      std::nth_element(sorted.begin(), sorted.begin() + (top_k - 1), sorted.end(), std::greater<double>());
      const double kth = sorted[size_t(top_k - 1)];
      for (double& x : row)
        if (x < kth) x = -std::numeric_limits<double>::infinity();
    }
    const double m = *std::max_element(row.begin(), row.end());
    double total = 0;
    for (double& x : row) total += (x = std::exp(x - m));
    // Inverse CDF: the first token whose cumulative probability exceeds u.
    const double target = u.data<double>()[b] * total;
    double cum = 0;
    int64_t pick = -1;
    for (int64_t i = 0; i < V; ++i) {
      if (row[size_t(i)] == 0) continue;
      pick = i;  // the last token with weight, should rounding leave cum just below target
      cum += row[size_t(i)];
      if (cum > target) break;
    }
    next.data<int64_t>()[b] = pick;
  }
  return next;
}

Tensor generate(CausalLM& model, const Tensor& prompt, int64_t max_new_tokens, double temperature, int64_t top_k,
                Generator& gen, bool use_kv_cache, const TokenCallback& on_token) {
  TG_CHECK(prompt.defined() && prompt.dtype() == DType::i64 && prompt.dim() == 2 && prompt.size(1) >= 1 &&
               prompt.size(0) >= 1,
           "generate: prompt must be i64 [B, T] with B, T >= 1, got {}",
           prompt.defined() ? shape_str(prompt.shape()) : "undefined");
  TG_CHECK(max_new_tokens >= 0, "generate: max_new_tokens must be >= 0, got {}", max_new_tokens);
  NoGradGuard no_grad;
  EvalScope eval(model);
  const int64_t B = prompt.size(0), T0 = prompt.size(1), P = model.context_length();
  const int64_t N = sum_or_fail({T0, max_new_tokens}, "generate: the prompt's length + max_new_tokens");
  check_memory_fits(double(B) * double(N) * sizeof(int64_t),
                    fmt::format("generate: {} sequences of {} prompt tokens + max_new_tokens {}", B, T0, max_new_tokens));
  Tensor seq = zeros({B, N}, DType::i64);  // [B, N]: the prompt, then the samples as they come
  for (int64_t b = 0; b < B; ++b)
    std::memcpy(seq.data<int64_t>() + b * N, prompt.data<int64_t>() + b * T0, size_t(T0) * sizeof(int64_t));

  KVCache cache;
  if (use_kv_cache) cache = model.make_cache(B, std::min(N, P));  // no more positions than the text will have
  CausalLMForwardOptions opts;
  opts.logits_last_only = true;
  for (int64_t len = T0; len < N; ++len) {
    Tensor input;
    if (!use_kv_cache) {
      input = columns(seq, std::max<int64_t>(0, len - P), len);  // the last n_positions tokens
    } else if (cache.length == 0 || cache.length == cache.capacity()) {
      // First step, or the context outgrew n_positions: the positions shift, so the cache is
      // recomputed from the cropped context.
      cache.reset();
      input = columns(seq, std::max<int64_t>(0, len - P), len);
    } else {
      input = columns(seq, len - 1, len);  // only the newest token; the rest is cached
    }
    opts.cache = use_kv_cache ? &cache : nullptr;
    Tensor logits = model.forward(input, Tensor(), opts).logits;  // [B, 1, V]
    Tensor next = sample_next(reshape(logits, {B, logits.size(2)}), temperature, top_k, gen);
    for (int64_t b = 0; b < B; ++b) seq.data<int64_t>()[b * N + len] = next.data<int64_t>()[b];
    if (on_token) on_token(next);
  }
  return seq;
}

std::vector<int64_t> generate(CausalLM& model, const std::vector<int64_t>& prompt, int64_t max_new_tokens,
                              double temperature, int64_t top_k, Generator& gen, bool use_kv_cache) {
  Tensor p = empty({1, int64_t(prompt.size())}, DType::i64);
  std::copy(prompt.begin(), prompt.end(), p.data<int64_t>());
  Tensor out = generate(model, p, max_new_tokens, temperature, top_k, gen, use_kv_cache);
  return std::vector<int64_t>(out.data<int64_t>(), out.data<int64_t>() + out.numel());
}

}  // namespace tg::models
