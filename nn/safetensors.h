#pragma once
// safetensors files (the Hugging Face format): an 8-byte little-endian header length, a JSON
// header {name: {dtype, shape, data_offsets}}, then the raw little-endian data.
// Writes F32 and F64 (and I64), and floating tensors as F16 or BF16 when asked (rounded to
// nearest even); reads F32, F64, F16, BF16 (converted to f32) and I64.
// Every claim of the header is checked against the file before anything is allocated.
#include <cstdint>
#include <map>
#include <string>

#include "nn/module.h"

namespace tg::nn {

using Metadata = std::map<std::string, std::string>;

/// Writes `tensors` to `path` (to a temporary name, then renamed into place). `float_dtype` "F32",
/// "F64", "F16" or "BF16" stores every floating tensor in that dtype; empty: each in its own.
void save_safetensors(const std::string& path, const StateDict& tensors, const Metadata& metadata = {},
                      const std::string& float_dtype = "");

/// IEEE half and bfloat16 from f32, rounded to nearest even (NaN stays NaN, overflow is inf).
uint16_t float_to_half(float f);
uint16_t float_to_bf16(float f);

/// Reads every tensor of `path`. Throws tg::Error naming the file and the problem for a missing,
/// truncated or malformed file. Fills `metadata` when given.
StateDict load_safetensors(const std::string& path, Metadata* metadata = nullptr);

}  // namespace tg::nn
