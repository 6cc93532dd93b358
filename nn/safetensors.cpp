#include "nn/safetensors.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <set>
#include <vector>

#include "autograd/available_memory.h"
#include "autograd/error.h"

namespace tg::nn {
namespace {

using json = nlohmann::json;
static_assert(std::endian::native == std::endian::little, "safetensors data is little-endian");

// The reference implementation refuses headers above 100 MB; so do we.
constexpr uint64_t kMaxHeaderBytes = 100'000'000;

struct FileDType {
  const char* name;
  size_t bytes;
};

size_t file_dtype_bytes(const std::string& name) {
  if (name == "F32") return 4;
  if (name == "F64" || name == "I64") return 8;
  if (name == "F16" || name == "BF16") return 2;
  return 0;
}

const char* file_dtype_name(DType d) {
  switch (d) {
    case DType::f32: return "F32";
    case DType::f64: return "F64";
    case DType::i64: return "I64";
    default: return "BOOL";
  }
}

float half_to_float(uint16_t h) {
  uint32_t sign = uint32_t(h >> 15) << 31, exp = (h >> 10) & 0x1f, mant = h & 0x3ff;
  uint32_t bits;
  if (exp == 0) {
    if (mant == 0) {
      bits = sign;
    } else {  // subnormal: normalise
      int e = -1;
      do {
        ++e;
        mant <<= 1;
      } while (!(mant & 0x400));
      bits = sign | uint32_t(127 - 15 - e) << 23 | (mant & 0x3ff) << 13;
    }
  } else if (exp == 31) {
    bits = sign | 0x7f800000u | mant << 13;  // inf or nan
  } else {
    bits = sign | (exp + 127 - 15) << 23 | mant << 13;
  }
  return std::bit_cast<float>(bits);
}

float bf16_to_float(uint16_t b) { return std::bit_cast<float>(uint32_t(b) << 16); }

// One tensor entry of a header, checked.
struct Entry {
  std::string name;
  std::string dtype;
  Shape shape;
  uint64_t begin = 0, end = 0;
};

Entry parse_entry(const std::string& path, const std::string& name, const json& v, uint64_t data_bytes) {
  auto bad = [&](const std::string& what) -> Entry {
    fail("load_safetensors: {}: tensor '{}': {}", path, name, what);
  };
  if (!v.is_object()) return bad("entry is not an object");
  if (!v.contains("dtype") || !v["dtype"].is_string()) return bad("missing dtype");
  if (!v.contains("shape") || !v["shape"].is_array()) return bad("missing shape");
  if (!v.contains("data_offsets") || !v["data_offsets"].is_array() || v["data_offsets"].size() != 2)
    return bad("data_offsets must be [begin, end]");
  Entry e;
  e.name = name;
  e.dtype = v["dtype"].get<std::string>();
  size_t elem = file_dtype_bytes(e.dtype);
  if (elem == 0) return bad("unsupported dtype '" + e.dtype + "' (F32, F64, F16, BF16, I64 are read)");
  uint64_t count = 1;
  for (const json& s : v["shape"]) {
    if (!s.is_number_unsigned()) return bad("shape sizes must be non-negative integers");
    uint64_t n = s.get<uint64_t>();
    // Sizes become int64 shapes; a zero elsewhere in the shape must not let a huge one through.
    if (n > uint64_t(INT64_MAX)) return bad(fmt::format("shape size {} is beyond int64", n));
    if (n != 0 && count > data_bytes / n) return bad("shape is larger than the file");
    count *= n;
    e.shape.push_back(static_cast<int64_t>(n));
  }
  for (const json& o : v["data_offsets"])
    if (!o.is_number_unsigned()) return bad("data_offsets must be non-negative integers");
  e.begin = v["data_offsets"][0].get<uint64_t>();
  e.end = v["data_offsets"][1].get<uint64_t>();
  if (e.begin > e.end || e.end > data_bytes)
    return bad(fmt::format("data_offsets [{}, {}] fall outside the {} data bytes", e.begin, e.end, data_bytes));
  if (count > data_bytes / elem || e.end - e.begin != count * elem)
    return bad(fmt::format("data_offsets span {} bytes but {} {} x {} needs {}", e.end - e.begin,
                           e.dtype, shape_str(e.shape), elem, count * elem));
  return e;
}

Tensor read_tensor(std::ifstream& in, const std::string& path, uint64_t data_start, const Entry& e) {
  uint64_t bytes = e.end - e.begin;
  std::vector<char> raw(bytes);
  in.seekg(static_cast<std::streamoff>(data_start + e.begin));
  if (bytes && !in.read(raw.data(), static_cast<std::streamsize>(bytes)))
    fail("load_safetensors: {}: could not read tensor '{}' (truncated?)", path, e.name);
  if (e.dtype == "F32" || e.dtype == "F64" || e.dtype == "I64") {
    DType d = e.dtype == "F32" ? DType::f32 : e.dtype == "F64" ? DType::f64 : DType::i64;
    Tensor t = empty(e.shape, d);
    if (bytes) std::memcpy(t.raw_data(), raw.data(), bytes);
    return t;
  }
  Tensor t = empty(e.shape, DType::f32);
  float* out = t.data<float>();
  bool bf16 = e.dtype == "BF16";
  for (int64_t i = 0; i < t.numel(); ++i) {
    uint16_t h;
    std::memcpy(&h, raw.data() + 2 * i, 2);
    out[i] = bf16 ? bf16_to_float(h) : half_to_float(h);
  }
  return t;
}

// A tensor's bytes as the file stores them: its own memory, or a converted copy.
struct StoredBytes {
  bool is_converted = false;
  std::string converted;
  const char* own = nullptr;  // the tensor's memory when not converted
  size_t own_size = 0;
  const char* data() const { return is_converted ? converted.data() : own; }
  size_t size() const { return is_converted ? converted.size() : own_size; }
};

// `t` as `dtype` stores it ("F16", "BF16", "F32", "F64", or its own dtype's name).
StoredBytes stored_bytes(const Tensor& t, const std::string& dtype) {
  StoredBytes b;
  if (dtype == file_dtype_name(t.dtype())) {
    b.own = static_cast<const char*>(t.raw_data());
    b.own_size = size_t(t.nbytes());
    return b;
  }
  b.is_converted = true;
  if (dtype == "F16" || dtype == "BF16") {
    const Tensor f = t.to(DType::f32);
    b.converted.resize(size_t(f.numel()) * 2);
    const float* src = f.data<float>();
    for (int64_t i = 0; i < f.numel(); ++i) {
      const uint16_t h = dtype == "F16" ? float_to_half(src[i]) : float_to_bf16(src[i]);
      std::memcpy(b.converted.data() + 2 * i, &h, 2);
    }
  } else {
    const Tensor c = t.to(dtype == "F32" ? DType::f32 : DType::f64);
    b.converted.assign(static_cast<const char*>(c.raw_data()), size_t(c.nbytes()));
  }
  return b;
}

}  // namespace

uint16_t float_to_half(float f) {
  const uint32_t x = std::bit_cast<uint32_t>(f), sign = (x >> 16) & 0x8000u, a = x & 0x7fffffffu;
  if (a >= 0x7f800000u) return uint16_t(sign | 0x7c00u | (a > 0x7f800000u ? 0x200u : 0u));  // inf, NaN
  if (a >= 0x477ff000u) return uint16_t(sign | 0x7c00u);  // 65520 and above round to inf
  if (a < 0x38800000u) {  // below 2^-14: a subnormal half, in units of 2^-24 (exact scaling)
    return uint16_t(sign | uint32_t(std::nearbyint(std::bit_cast<float>(a) * 16777216.0f)));
  }
  const uint32_t h = a - 0x38000000u;  // exponent rebased from 127 to 15
  return uint16_t(sign | ((h + 0xfffu + ((h >> 13) & 1u)) >> 13));
}

uint16_t float_to_bf16(float f) {
  const uint32_t x = std::bit_cast<uint32_t>(f);
  if ((x & 0x7fffffffu) > 0x7f800000u) return uint16_t((x >> 16) | 0x40u);  // a quiet NaN
  return uint16_t((x + 0x7fffu + ((x >> 16) & 1u)) >> 16);
}

void save_safetensors(const std::string& path, const StateDict& tensors, const Metadata& metadata,
                      const std::string& float_dtype) {
  TG_CHECK(float_dtype.empty() || float_dtype == "F32" || float_dtype == "F64" || float_dtype == "F16" ||
               float_dtype == "BF16",
           "save_safetensors: {}: float_dtype '{}' is not F32, F64, F16 or BF16", path, float_dtype);
  json header = json::object();
  uint64_t offset = 0;
  std::vector<StoredBytes> data;  // each tensor's bytes as stored
  for (const auto& [name, t] : tensors) {
    TG_CHECK(t.defined(), "save_safetensors: {}: tensor '{}' is undefined", path, name);
    TG_CHECK(t.dtype() != DType::b8, "save_safetensors: {}: tensor '{}' is b8, which is not written",
             path, name);
    const std::string dtype = is_floating(t.dtype()) && !float_dtype.empty() ? float_dtype : file_dtype_name(t.dtype());
    data.push_back(stored_bytes(t, dtype));
    header[name] = {{"dtype", dtype}, {"shape", t.shape()}, {"data_offsets", {offset, offset + data.back().size()}}};
    offset += data.back().size();
  }
  if (!metadata.empty()) header["__metadata__"] = metadata;
  std::string text = header.dump();
  text.append((8 - text.size() % 8) % 8, ' ');  // data starts 8-byte aligned, as the reference writer does

  std::filesystem::path target(path);
  std::filesystem::path tmp = target;
  tmp += ".tmp";
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    TG_CHECK(out.good(), "save_safetensors: cannot open {} for writing", tmp.string());
    uint64_t n = text.size();
    out.write(reinterpret_cast<const char*>(&n), 8);
    out.write(text.data(), static_cast<std::streamsize>(text.size()));
    for (const StoredBytes& bytes : data) out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
    out.flush();
    TG_CHECK(out.good(), "save_safetensors: writing {} failed (disk full?)", tmp.string());
  }
  std::error_code ec;
  std::filesystem::rename(tmp, target, ec);
  TG_CHECK(!ec, "save_safetensors: cannot rename {} to {}: {}", tmp.string(), path, ec.message());
}

StateDict load_safetensors(const std::string& path, Metadata* metadata) {
  std::error_code ec;
  uint64_t file_size = std::filesystem::file_size(path, ec);
  TG_CHECK(!ec, "load_safetensors: cannot open {}: {}", path, ec.message());
  std::ifstream in(path, std::ios::binary);
  TG_CHECK(in.good(), "load_safetensors: cannot open {}", path);
  TG_CHECK(file_size >= 8, "load_safetensors: {}: file is {} bytes, too short for a header", path, file_size);
  uint64_t header_bytes = 0;
  in.read(reinterpret_cast<char*>(&header_bytes), 8);
  TG_CHECK(header_bytes <= file_size - 8,
           "load_safetensors: {}: header claims {} bytes but the file has {} after the length", path,
           header_bytes, file_size - 8);
  TG_CHECK(header_bytes <= kMaxHeaderBytes, "load_safetensors: {}: header of {} bytes is too large",
           path, header_bytes);
  std::string text(header_bytes, '\0');
  in.read(text.data(), static_cast<std::streamsize>(header_bytes));
  TG_CHECK(in.good(), "load_safetensors: {}: could not read the header", path);

  // Parse, refusing duplicate names (a JSON object would silently keep the last one).
  std::set<std::string> seen;
  std::string duplicate;
  json::parser_callback_t check_keys = [&](int depth, json::parse_event_t event, json& parsed) {
    if (depth == 1 && event == json::parse_event_t::key && !seen.insert(parsed.get<std::string>()).second)
      duplicate = parsed.get<std::string>();
    return true;
  };
  json header = json::parse(text, check_keys, /*allow_exceptions=*/false);
  TG_CHECK(!header.is_discarded() && header.is_object(), "load_safetensors: {}: the header is not a JSON object",
           path);
  TG_CHECK(duplicate.empty(), "load_safetensors: {}: tensor name '{}' appears twice", path, duplicate);

  uint64_t data_start = 8 + header_bytes, data_bytes = file_size - data_start;
  std::vector<Entry> entries;
  for (auto& [name, v] : header.items()) {
    if (name == "__metadata__") {
      TG_CHECK(v.is_object(), "load_safetensors: {}: __metadata__ is not an object", path);
      for (auto& [k, s] : v.items()) {
        TG_CHECK(s.is_string(), "load_safetensors: {}: __metadata__ value '{}' is not a string", path, k);
        if (metadata) (*metadata)[k] = s.get<std::string>();
      }
      continue;
    }
    entries.push_back(parse_entry(path, name, v, data_bytes));
  }
  // The data must be covered exactly: no overlaps and no holes (the format's rule).
  std::vector<const Entry*> by_offset;
  for (const Entry& e : entries) by_offset.push_back(&e);
  std::sort(by_offset.begin(), by_offset.end(),
            [](const Entry* a, const Entry* b) { return a->begin != b->begin ? a->begin < b->begin : a->end < b->end; });
  uint64_t covered = 0;
  for (const Entry* e : by_offset) {
    TG_CHECK(e->begin >= covered, "load_safetensors: {}: tensor '{}' overlaps another tensor's data",
             path, e->name);
    TG_CHECK(e->begin == covered, "load_safetensors: {}: bytes {}..{} before tensor '{}' belong to no tensor",
             path, covered, e->begin, e->name);
    covered = e->end;
  }
  TG_CHECK(covered == data_bytes, "load_safetensors: {}: {} trailing data bytes belong to no tensor", path,
           data_bytes - covered);

  // The tensors in memory: the file's bytes, F16 and BF16 doubled to f32; every size above was
  // checked against the file, so nothing a header merely claims is allocated unchecked.
  double tensor_bytes = 0;
  for (const Entry& e : entries)
    tensor_bytes += double(e.end - e.begin) * (e.dtype == "F16" || e.dtype == "BF16" ? 2 : 1);
  check_memory_fits(tensor_bytes, fmt::format("load_safetensors: {}: its tensors", path));

  StateDict out;
  for (const Entry& e : entries) out[e.name] = read_tensor(in, path, data_start, e);
  return out;
}

}  // namespace tg::nn
