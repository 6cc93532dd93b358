// safetensors headers that claim sizes the file does not hold (issue 15): every size is checked
// against the file with overflow-checked arithmetic before anything is allocated.
#include <cstdint>
#include <fstream>

#include "nn/safetensors.h"
#include "test_util.h"

namespace tg {
namespace {

using testing::TempDir;

void write_with_claimed_header(const std::string& path, const std::string& header, const std::string& data,
                uint64_t claimed_header_bytes) {
  std::ofstream out(path, std::ios::binary);
  out.write(reinterpret_cast<const char*>(&claimed_header_bytes), 8);
  out << header << data;
}

TEST(SafetensorsSizes, HostileHeadersAreRefusedNamingTheFile) {
  TempDir dir;
  const std::string f8(8, '\0');
  struct Case {
    const char* name;
    std::string header;
    const char* message;
  };
  const std::vector<Case> cases = {
      {"size beyond int64 after a zero", R"({"a":{"dtype":"F32","shape":[0,18446744073709551615],"data_offsets":[0,0]}})",
       "beyond int64"},
      {"product of sizes that wraps to 0 in 64 bits",
       R"({"a":{"dtype":"F32","shape":[4294967296,4294967296,2],"data_offsets":[0,8]}})", "shape is larger than the file"},
      {"product that wraps to 2 elements", R"({"a":{"dtype":"F32","shape":[4611686018427387905,4],"data_offsets":[0,8]}})",
       "shape is larger than the file"},
      {"offsets near 2^64", R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[18446744073709551608,18446744073709551615]}})",
       "fall outside"},
      {"end offset beyond the file", R"({"a":{"dtype":"F64","shape":[1],"data_offsets":[0,8000000000000]}})",
       "fall outside"},
      {"size too large for JSON integers", R"({"a":{"dtype":"F32","shape":[1e30],"data_offsets":[0,8]}})",
       "non-negative integers"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    const std::string path = dir.file("hostile.safetensors");
    write_with_claimed_header(path, c.header, f8, c.header.size());
    EXPECT_TG_ERROR(nn::load_safetensors(path), c.message);
    EXPECT_TG_ERROR(nn::load_safetensors(path), path);
  }
  // A header length beyond the file, up to 2^64 - 1.
  for (uint64_t claimed : {uint64_t(1) << 40, ~uint64_t(0), ~uint64_t(0) - 7}) {
    const std::string path = dir.file("long_header.safetensors");
    write_with_claimed_header(path, "{}", "", claimed);
    EXPECT_TG_ERROR(nn::load_safetensors(path), "header claims");
  }
  // Zero-sized tensors of huge but countable shapes are fine: nothing is allocated.
  const std::string path = dir.file("empty.safetensors");
  const std::string header = R"({"a":{"dtype":"F32","shape":[0,4611686018427387904,2],"data_offsets":[0,0]}})";
  write_with_claimed_header(path, header, "", header.size());
  EXPECT_EQ(nn::load_safetensors(path).at("a").numel(), 0);
}

}  // namespace
}  // namespace tg
