#pragma once
// The weights of a Hugging Face model directory: one model.safetensors, or shards
// model-0000K-of-0000N.safetensors listed by model.safetensors.index.json ({"metadata": {...},
// "weight_map": {tensor name: shard file}}), as transformers' save_pretrained writes them.
#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "nn/module.h"

namespace tg::models {

inline constexpr const char* kWeightsIndexFile = "model.safetensors.index.json";

struct HFWeightFiles {
  std::vector<std::string> files;  ///< paths: model.safetensors, or each shard once, sorted
  std::string index;               ///< the index's path; empty for a single file
  std::map<std::string, std::string> weight_map;  ///< tensor name -> shard path (shards only)
  /// The files' total size in bytes (0 for those that cannot be read: the loader names them).
  uint64_t total_bytes() const;
  /// What error messages call the weights: the single file or the index.
  const std::string& source() const { return index.empty() ? files.front() : index; }
};

/// The weight_map of an index's text (tensor name -> shard file name as written); tg::Error
/// naming `source` when it is not JSON, has no weight_map object, names a tensor twice or maps one
/// to something other than a string.
std::map<std::string, std::string> parse_weight_map(const std::string& text, const std::string& source);

/// The weights files of `dir`: model.safetensors when present, else the shards of its index.
/// tg::Error naming the directory when it has neither, and the index when it is not JSON, has no
/// weight_map, names a tensor twice, or names a shard that is not in the directory (or outside it).
HFWeightFiles find_hf_weights(const std::string& dir);

/// Every tensor of the files. For shards, each tensor must be where the index says and each
/// index entry present: tg::Error naming the index, the shard and the tensor otherwise; a tensor
/// in two shards is named with both.
nn::StateDict load_hf_weights(const HFWeightFiles& files);

/// A checkpoint with a tied LM head may still store the head: it must equal the embedding
/// (compared byte by byte in the embedding's dtype). tg::Error "<op>: <source>: <head_name> [shape]
/// differs from <embedding_name> [shape]; the LM head is tied to it" otherwise. Nothing is checked
/// when either is undefined (a missing embedding is named by copy_weights).
void check_tied_head(const Tensor& head, const Tensor& embedding, const std::string& op, const std::string& source,
                     const std::string& head_name, const std::string& embedding_name);

/// Copies `tensors` (model names -> values; F16, BF16, F32, F64 converted to the parameters'
/// dtype) into `model`'s parameters of the same names. `origin` gives a tensor's name in the file
/// where it differs (e.g. "transformer.wte.weight"). tg::Error "<op>: <source> does not fit the
/// model of its config: missing tensors [...]; unexpected tensors [...]; wrong shapes or dtypes
/// [...]" listing every mismatch, before anything is copied; then `before_copy` (further checks,
/// e.g. check_tied_head), then the copy.
void copy_weights(nn::Module& model, const std::map<std::string, Tensor>& tensors,
                  const std::map<std::string, std::string>& origin, const std::string& op, const std::string& source,
                  const std::function<void()>& before_copy = {});

}  // namespace tg::models
