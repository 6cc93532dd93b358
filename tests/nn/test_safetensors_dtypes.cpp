// safetensors written in half precision: f32 -> F16 and BF16 rounded to nearest even (the
// encodings of known values, ties, overflow, subnormals, NaN), files written with float_dtype
// read back as the rounded values, and integers left as they are.
#include <cmath>
#include <limits>

#include "nn/safetensors.h"
#include "test_util.h"

namespace tg {
namespace {

using testing::TempDir;

TEST(SafetensorsDtypes, HalfEncodingsRoundToNearestEven) {
  EXPECT_EQ(nn::float_to_half(1.0f), 0x3c00);
  EXPECT_EQ(nn::float_to_half(-2.0f), 0xc000);
  EXPECT_EQ(nn::float_to_half(65504.0f), 0x7bff);                // the largest half
  EXPECT_EQ(nn::float_to_half(65519.0f), 0x7bff);                // below the midpoint to 65536
  EXPECT_EQ(nn::float_to_half(65520.0f), 0x7c00);                // the midpoint rounds (to even) to inf
  EXPECT_EQ(nn::float_to_half(std::ldexp(1.0f, -24)), 0x0001);   // the smallest subnormal
  EXPECT_EQ(nn::float_to_half(std::ldexp(1.0f, -25)), 0x0000);   // half of it: a tie, to even (0)
  EXPECT_EQ(nn::float_to_half(std::ldexp(3.0f, -25)), 0x0002);   // 1.5 units: a tie, to even (2)
  EXPECT_EQ(nn::float_to_half(std::ldexp(1.0f, -14)), 0x0400);   // the smallest normal
  EXPECT_EQ(nn::float_to_half(1.0f + std::ldexp(1.0f, -11)), 0x3c00);       // tie between 1 and 1+2^-10: even
  EXPECT_EQ(nn::float_to_half(1.0f + 3 * std::ldexp(1.0f, -11)), 0x3c02);   // tie, to even upwards
  EXPECT_EQ(nn::float_to_half(std::numeric_limits<float>::infinity()), 0x7c00);
  EXPECT_EQ(nn::float_to_half(std::numeric_limits<float>::quiet_NaN()) & 0x7c00, 0x7c00);
  EXPECT_NE(nn::float_to_half(std::numeric_limits<float>::quiet_NaN()) & 0x3ff, 0);
}

TEST(SafetensorsDtypes, Bfloat16EncodingsRoundToNearestEven) {
  EXPECT_EQ(nn::float_to_bf16(1.0f), 0x3f80);
  EXPECT_EQ(nn::float_to_bf16(-1.5f), 0xbfc0);
  EXPECT_EQ(nn::float_to_bf16(1.0f + std::ldexp(1.0f, -8)), 0x3f80);      // tie: to even
  EXPECT_EQ(nn::float_to_bf16(1.0f + 3 * std::ldexp(1.0f, -8)), 0x3f82);  // tie: to even upwards
  EXPECT_EQ(nn::float_to_bf16(std::numeric_limits<float>::max()), 0x7f80);  // overflow: inf
  EXPECT_NE(nn::float_to_bf16(std::numeric_limits<float>::quiet_NaN()) & 0x7f, 0);
}

TEST(SafetensorsDtypes, FilesWrittenInHalfPrecisionReadBackRounded) {
  TempDir dir;
  nn::StateDict state;
  state["w"] = testing::uniform({4, 5}, 3, -3, 3, DType::f32);
  state["d"] = testing::uniform({3}, 4, -1, 1, DType::f64);
  state["ids"] = tensor({7, 8}, {}, DType::i64);
  for (const std::string dtype : {"F16", "BF16", "F32", "F64"}) {
    SCOPED_TRACE(dtype);
    nn::save_safetensors(dir.file(dtype), state, {}, dtype);
    nn::StateDict back = nn::load_safetensors(dir.file(dtype));
    EXPECT_EQ(back.at("ids").to_vector(), (std::vector<double>{7, 8}));
    EXPECT_EQ(back.at("ids").dtype(), DType::i64);
    const double tol = dtype == "F16" ? 3 * 0.001 : dtype == "BF16" ? 3 * 0.008 : 1e-7;  // relative steps
    for (const char* name : {"w", "d"}) {
      std::vector<double> want = state.at(name).to_vector(), got = back.at(name).to_vector();
      ASSERT_EQ(got.size(), want.size());
      for (size_t i = 0; i < got.size(); ++i) EXPECT_NEAR(got[i], want[i], tol * std::fabs(want[i]) + 1e-30) << name;
    }
    // Rounded once: writing what was read gives the same values again.
    nn::save_safetensors(dir.file(dtype + "2"), back, {}, dtype);
    EXPECT_EQ(nn::load_safetensors(dir.file(dtype + "2")).at("w").to_vector(), back.at("w").to_vector());
  }
  EXPECT_TG_ERROR(nn::save_safetensors(dir.file("x"), state, {}, "F8"), "float_dtype 'F8' is not F32, F64, F16 or BF16");
}

}  // namespace
}  // namespace tg
