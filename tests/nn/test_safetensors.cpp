// safetensors: round trips, reading half precision, and a clear error for every malformed file.
#include <cstring>
#include <filesystem>
#include <fstream>

#include "nn/safetensors.h"
#include "test_util.h"

namespace tg {
namespace {

namespace fs = std::filesystem;

using testing::TempDir;

// Writes a file from a JSON header text and raw data bytes.
void write_raw(const std::string& path, const std::string& header, const std::string& data,
               int64_t claimed_header_bytes = -1) {
  std::ofstream out(path, std::ios::binary);
  uint64_t n = claimed_header_bytes < 0 ? header.size() : uint64_t(claimed_header_bytes);
  out.write(reinterpret_cast<const char*>(&n), 8);
  out << header << data;
}

TEST(Safetensors, RoundTripKeepsValuesDtypesShapesAndMetadata) {
  TempDir dir;
  nn::StateDict state;
  state["a.weight"] = testing::uniform({3, 4}, 1, -1, 1, DType::f32);
  state["b"] = testing::uniform({5}, 2, -1, 1, DType::f64);
  state["ids"] = tensor({1, 2, 3}, {}, DType::i64);
  state["scalar"] = full({}, 2.5);
  state["empty"] = zeros({0, 2});
  nn::save_safetensors(dir.file("m.safetensors"), state, {{"format", "pt"}});
  EXPECT_FALSE(fs::exists(dir.file("m.safetensors.tmp")));
  nn::Metadata meta;
  nn::StateDict back = nn::load_safetensors(dir.file("m.safetensors"), &meta);
  EXPECT_EQ(meta["format"], "pt");
  ASSERT_EQ(back.size(), state.size());
  for (auto& [name, t] : state) {
    ASSERT_TRUE(back.count(name)) << name;
    EXPECT_EQ(back[name].dtype(), t.dtype()) << name;
    EXPECT_EQ(back[name].shape(), t.shape()) << name;
    EXPECT_EQ(back[name].to_vector(), t.to_vector()) << name;
  }
}

TEST(Safetensors, ReadsF16AndBF16) {
  TempDir dir;
  // 1.0, -2.0, 0.5, 65504 (largest half), a subnormal 2^-24 in F16; 1.0, -3.0 in BF16.
  uint16_t half[5] = {0x3C00, 0xC000, 0x3800, 0x7BFF, 0x0001};
  uint16_t bf[2] = {0x3F80, 0xC040};
  std::string data(reinterpret_cast<char*>(half), 10);
  data.append(reinterpret_cast<char*>(bf), 4);
  write_raw(dir.file("h.safetensors"),
            R"({"h":{"dtype":"F16","shape":[5],"data_offsets":[0,10]},)"
            R"("b":{"dtype":"BF16","shape":[2],"data_offsets":[10,14]}})",
            data);
  nn::StateDict s = nn::load_safetensors(dir.file("h.safetensors"));
  EXPECT_EQ(s["h"].dtype(), DType::f32);
  EXPECT_EQ(s["h"].to_vector(), std::vector<double>({1.0, -2.0, 0.5, 65504.0, std::ldexp(1.0, -24)}));
  EXPECT_EQ(s["b"].to_vector(), std::vector<double>({1.0, -3.0}));
}

struct Malformed {
  const char* name;
  std::string header;
  std::string data;
  int64_t claimed;
  const char* message;
};

TEST(Safetensors, MalformedFilesGiveClearErrors) {
  TempDir dir;
  const std::string f8(8, '\0');
  std::vector<Malformed> cases = {
      {"truncated header", R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})", f8, 4000,
       "header claims 4000 bytes"},
      {"huge claim", "{}", "", int64_t(1) << 60, "header claims"},
      {"not json", "{not json", "", -1, "header is not a JSON object"},
      {"json array", "[1,2]", "", -1, "header is not a JSON object"},
      {"offsets outside", R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,16]}})", f8, -1,
       "fall outside the 8 data bytes"},
      {"size mismatch", R"({"a":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}})", f8, -1,
       "span 8 bytes but F32 [3]"},
      {"huge shape", R"({"a":{"dtype":"F32","shape":[4294967296,4294967296],"data_offsets":[0,8]}})", f8,
       -1, "shape is larger than the file"},
      {"negative size", R"({"a":{"dtype":"F32","shape":[-2],"data_offsets":[0,8]}})", f8, -1,
       "non-negative integers"},
      {"overlap",
       R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}})",
       f8, -1, "overlaps"},
      {"hole", R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}})", f8, -1, "belong to no tensor"},
      {"trailing", R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}})", f8, -1, "trailing data bytes"},
      {"duplicate",
       R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}})",
       f8, -1, "appears twice"},
      {"dtype", R"({"a":{"dtype":"U7","shape":[2],"data_offsets":[0,8]}})", f8, -1, "unsupported dtype 'U7'"},
      {"no shape", R"({"a":{"dtype":"F32","data_offsets":[0,8]}})", f8, -1, "missing shape"},
      {"offsets", R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[8,0]}})", f8, -1, "fall outside"},
  };
  for (const Malformed& c : cases) {
    SCOPED_TRACE(c.name);
    std::string path = dir.file("bad.safetensors");
    write_raw(path, c.header, c.data, c.claimed);
    EXPECT_TG_ERROR(nn::load_safetensors(path), c.message);
    EXPECT_TG_ERROR(nn::load_safetensors(path), path);  // the message names the file
  }
  std::ofstream(dir.file("tiny"), std::ios::binary) << "abc";
  EXPECT_TG_ERROR(nn::load_safetensors(dir.file("tiny")), "too short for a header");
  EXPECT_TG_ERROR(nn::load_safetensors(dir.file("missing")), "cannot open");
}

TEST(Safetensors, EveryTruncationOfAValidFileIsAnError) {
  TempDir dir;
  nn::StateDict state;
  state["w"] = testing::uniform({4, 3}, 3, -1, 1, DType::f32);
  state["b"] = testing::uniform({3}, 4, -1, 1, DType::f32);
  std::string path = dir.file("ok.safetensors");
  nn::save_safetensors(path, state);
  std::ifstream in(path, std::ios::binary);
  std::string bytes((std::istreambuf_iterator<char>(in)), {});
  for (size_t cut = 0; cut < bytes.size(); ++cut) {
    std::ofstream(dir.file("cut"), std::ios::binary | std::ios::trunc) << bytes.substr(0, cut);
    EXPECT_THROW(nn::load_safetensors(dir.file("cut")), Error) << "cut at " << cut;
  }
}

}  // namespace
}  // namespace tg
