#include "models/hf/hf_weights.h"

#include <nlohmann/json.hpp>

#include <cstring>
#include <filesystem>
#include <set>

#include "autograd/error.h"
#include "autograd/tape.h"
#include "nn/file_io.h"
#include "nn/safetensors.h"

namespace tg::models {
namespace fs = std::filesystem;
namespace {

using json = nlohmann::json;

bool hf_is_file(const fs::path& p) {
  std::error_code ec;
  return fs::is_regular_file(p, ec);
}

}  // namespace

// Refuses a name given twice (a JSON object would keep the last).
std::map<std::string, std::string> parse_weight_map(const std::string& text, const std::string& index) {
  std::string section, duplicate;  // the top-level key being read; a weight_map name seen twice
  std::set<std::string> names;
  json::parser_callback_t check = [&](int depth, json::parse_event_t event, json& parsed) {
    if (event == json::parse_event_t::key && depth == 1) section = parsed.get<std::string>();
    if (event == json::parse_event_t::key && depth == 2 && section == "weight_map" &&
        !names.insert(parsed.get<std::string>()).second && duplicate.empty())
      duplicate = parsed.get<std::string>();
    return true;
  };
  json j = json::parse(text, check, /*allow_exceptions=*/false);
  TG_CHECK(!j.is_discarded() && j.is_object(), "{} is not a JSON object", index);
  TG_CHECK(j.contains("weight_map") && j["weight_map"].is_object(), "{} has no \"weight_map\" object", index);
  TG_CHECK(duplicate.empty(), "{}: weight_map names tensor '{}' twice", index, duplicate);
  std::map<std::string, std::string> map;
  for (const auto& [name, file] : j["weight_map"].items()) {
    TG_CHECK(file.is_string(), "{}: weight_map[\"{}\"] must be a file name, got {}", index, name, file.dump());
    map[name] = file.get<std::string>();
  }
  return map;
}

uint64_t HFWeightFiles::total_bytes() const {
  uint64_t total = 0;
  for (const std::string& f : files) {
    std::error_code ec;
    const uintmax_t n = fs::file_size(f, ec);
    if (!ec) total += n;
  }
  return total;
}

HFWeightFiles find_hf_weights(const std::string& dir) {
  HFWeightFiles out;
  const fs::path single = fs::path(dir) / "model.safetensors", index = fs::path(dir) / kWeightsIndexFile;
  if (hf_is_file(single)) {
    out.files = {single.string()};
    return out;
  }
  TG_CHECK(hf_is_file(index), "{} has neither model.safetensors nor {} (not a Hugging Face model directory?)", dir,
           kWeightsIndexFile);
  out.index = index.string();
  std::set<std::string> shards;
  for (const auto& [name, file] : parse_weight_map(read_file_bytes(out.index), out.index)) {
    TG_CHECK(!file.empty() && fs::path(file).filename() == fs::path(file) && file != "." && file != "..",
             "{}: weight_map[\"{}\"] = \"{}\" is not a file name in the directory", out.index, name, file);
    const std::string path = (fs::path(dir) / file).string();
    TG_CHECK(hf_is_file(path), "{}: weight_map[\"{}\"] names the shard {}, which is missing", out.index, name, path);
    out.weight_map[name] = path;
    shards.insert(path);
  }
  TG_CHECK(!shards.empty(), "{}: weight_map is empty", out.index);
  out.files.assign(shards.begin(), shards.end());
  return out;
}

nn::StateDict load_hf_weights(const HFWeightFiles& files) {
  if (files.index.empty()) return nn::load_safetensors(files.files.front());
  nn::StateDict all;
  std::map<std::string, std::string> found_in;
  for (const std::string& shard : files.files) {
    for (auto& [name, t] : nn::load_safetensors(shard)) {
      TG_CHECK(!found_in.count(name), "{}: tensor '{}' is in two shards, {} and {}", files.index, name, found_in[name],
               shard);
      auto it = files.weight_map.find(name);
      TG_CHECK(it != files.weight_map.end(), "{}: the shard {} holds tensor '{}', which the index does not list",
               files.index, shard, name);
      TG_CHECK(it->second == shard, "{}: tensor '{}' is in {}, but the index says {}", files.index, name, shard,
               it->second);
      found_in[name] = shard;
      all[name] = std::move(t);
    }
  }
  for (const auto& [name, shard] : files.weight_map)
    TG_CHECK(found_in.count(name), "{}: tensor '{}' is listed in {} but not in it", files.index, name, shard);
  return all;
}

void check_tied_head(const Tensor& head, const Tensor& embedding, const std::string& op, const std::string& source,
                     const std::string& head_name, const std::string& embedding_name) {
  if (!head.defined() || !embedding.defined()) return;
  // Byte by byte in the embedding's dtype (a vocabulary's head is tens of millions of values).
  const Tensor h = head.shape() == embedding.shape() ? head.to(embedding.dtype()) : Tensor();
  TG_CHECK(h.defined() && std::memcmp(h.raw_data(), embedding.raw_data(), embedding.nbytes()) == 0,
           "{}: {}: {} {} differs from {} {}; the LM head is tied to it", op, source, head_name,
           shape_str(head.shape()), embedding_name, shape_str(embedding.shape()));
}

void copy_weights(nn::Module& model, const std::map<std::string, Tensor>& tensors,
                  const std::map<std::string, std::string>& origin, const std::string& op, const std::string& source,
                  const std::function<void()>& before_copy) {
  const auto file_name = [&](const std::string& name) {
    auto it = origin.find(name);
    return it == origin.end() ? name : it->second;
  };
  const auto list = [](const std::vector<std::string>& names) {
    return names.empty() ? std::string("none") : fmt::format("{}", fmt::join(names, ", "));
  };
  std::vector<std::string> missing, unexpected, wrong;
  const auto params = model.named_parameters();
  std::map<std::string, Tensor> mine(params.begin(), params.end());
  for (const auto& [name, p] : mine) {
    auto it = tensors.find(name);
    if (it == tensors.end())
      missing.push_back(name);
    else if (it->second.shape() != p.shape() || !is_floating(it->second.dtype()))
      wrong.push_back(fmt::format("{} is {} {} in the file, the model needs {}", file_name(name), it->second.dtype(),
                                  shape_str(it->second.shape()), shape_str(p.shape())));
  }
  for (const auto& [name, t] : tensors)
    if (!mine.count(name)) unexpected.push_back(file_name(name));
  TG_CHECK(missing.empty() && unexpected.empty() && wrong.empty(),
           "{}: {} does not fit the model of its config: missing tensors [{}]; unexpected tensors [{}]; wrong shapes "
           "or dtypes [{}]",
           op, source, list(missing), list(unexpected), list(wrong));
  if (before_copy) before_copy();
  NoGradGuard no_grad;
  for (auto& [name, p] : mine) p.copy_(tensors.at(name));  // converts to the model's dtype
}

}  // namespace tg::models
