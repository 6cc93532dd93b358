// Every op of the catalogue passes its finite-difference gradcheck in f64 (one test per case).
#include "test_util.h"
#include "tools/gradcheck/catalogue.h"

namespace tg {
namespace {

class Catalogue : public ::testing::TestWithParam<size_t> {};

const std::vector<catalogue::OpCase>& cases() {
  static std::vector<catalogue::OpCase> c = catalogue::all_cases();
  return c;
}

TEST_P(Catalogue, Gradcheck) {
  const catalogue::OpCase& c = cases()[GetParam()];
  SCOPED_TRACE(c.op + " " + c.shapes);
  testing::expect_gradcheck(c.fn, c.inputs, c.options);
}

GTEST_ALLOW_UNINSTANTIATED_PARAMETERIZED_TEST(Catalogue);
INSTANTIATE_TEST_SUITE_P(Ops, Catalogue, ::testing::Range<size_t>(0, cases().size()),
                         [](const ::testing::TestParamInfo<size_t>& info) {
                           std::string name = cases()[info.param].op + "_" + std::to_string(info.param);
                           for (char& ch : name)
                             if (!std::isalnum(static_cast<unsigned char>(ch))) ch = '_';
                           return name;
                         });

TEST(CatalogueTest, EveryFamilyRegistered) { EXPECT_GT(cases().size(), 0u); }

}  // namespace
}  // namespace tg
