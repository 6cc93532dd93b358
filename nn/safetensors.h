#pragma once
// safetensors files (the Hugging Face format): an 8-byte little-endian header length, a JSON
// header {name: {dtype, shape, data_offsets}}, then the raw little-endian data.
// Writes F32 and F64 (and I64); reads F32, F64, F16, BF16 (converted to f32) and I64.
// Every claim of the header is checked against the file before anything is allocated.
#include <map>
#include <string>

#include "nn/module.h"

namespace tg::nn {

using Metadata = std::map<std::string, std::string>;

/// Writes `tensors` to `path` (to a temporary name, then renamed into place).
void save_safetensors(const std::string& path, const StateDict& tensors, const Metadata& metadata = {});

/// Reads every tensor of `path`. Throws tg::Error naming the file and the problem for a missing,
/// truncated or malformed file. Fills `metadata` when given.
StateDict load_safetensors(const std::string& path, Metadata* metadata = nullptr);

}  // namespace tg::nn
