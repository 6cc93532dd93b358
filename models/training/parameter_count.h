#pragma once
// Parameter counts from configs alone, before any model is built, with overflow checks: a
// config.json may claim any sizes, and its count decides whether the model is built at all.
#include <cstdint>

#include "models/encoder/encoder_config.h"
#include "models/gpt/gpt_config.h"
#include "models/llama/llama_config.h"

namespace tg::models {

/// What GPT(config).num_parameters() will give: (V + P)·C embeddings, per layer 12·C² + 13·C
/// (12·C² + 2·C without biases), the final LayerNorm. Throws tg::Error naming the fields when
/// the count overflows int64. Expects the sizes validate() checks to be positive.
int64_t gpt_parameter_count(const GPTConfig& config);

/// What Llama(config).num_parameters() will give: V·C embeddings (twice when untied), per layer
/// the attention (C·(H + 2·Hkv)·D + C² and the biases asked for), the SwiGLU MLP (3·C·I and its
/// biases) and two RMSNorms, the final RMSNorm. Throws tg::Error naming the fields when the
/// count overflows int64.
int64_t llama_parameter_count(const LlamaConfig& config);

/// What EncoderClassifier(config).num_parameters() will give: embeddings, learned positions,
/// the CLS token, per layer the attention (4·C² + 4·C), the FFN (2·C·F + F + C) and two
/// LayerNorms, a final LayerNorm for "pre", the classifier. Throws tg::Error naming the fields
/// when the count overflows int64.
int64_t encoder_parameter_count(const EncoderConfig& config);

}  // namespace tg::models
