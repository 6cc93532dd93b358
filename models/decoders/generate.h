#pragma once
// Autoregressive sampling from any decoder of the zoo (a CausalLM: GPT-2, the Llama family), as
// nanoGPT's generate(): crop the context to the last context_length() tokens, take the last
// position's logits, divide by the temperature, keep the
// top_k, softmax, draw. With the KV cache the prompt is run once and each new token costs one
// position (its query against the cached keys) instead of a forward over the whole context.
#include <cstdint>
#include <functional>
#include <vector>

#include "autograd/random.h"
#include "autograd/tensor.h"
#include "models/decoders/causal_lm.h"

namespace tg::models {

/// Called after each new token with next [B] i64 (e.g. to print text as it comes).
using TokenCallback = std::function<void(const Tensor& next)>;

/// prompt [B, T0] i64 (T0 >= 1) -> [B, T0 + max_new_tokens] i64 (the prompt, then the samples).
/// temperature 0 picks the most likely token (no draw); top_k 0 keeps every token. Runs under
/// NoGradGuard with the model in eval mode (restored afterwards). One uniform per row and step is
/// drawn from `gen`, so with and without the cache the same seed gives the same tokens.
Tensor generate(CausalLM& model, const Tensor& prompt, int64_t max_new_tokens, double temperature, int64_t top_k,
                Generator& gen, bool use_kv_cache = true, const TokenCallback& on_token = nullptr);

/// One sequence: prompt ids -> prompt ids followed by max_new_tokens samples.
std::vector<int64_t> generate(CausalLM& model, const std::vector<int64_t>& prompt, int64_t max_new_tokens,
                              double temperature, int64_t top_k, Generator& gen, bool use_kv_cache = true);

/// logits [B, V] -> next [B] i64: logits/temperature, top-k filter, softmax, inverse-CDF draw of
/// one uniform per row from `gen` (temperature 0: arg-max, first on ties, nothing drawn).
Tensor sample_next(const Tensor& logits, double temperature, int64_t top_k, Generator& gen);

}  // namespace tg::models
