// Gradcheck cases of rope (rotary position embedding): positions from an offset, and given per
// row as packed documents give them; Llama 3's scaled frequencies; the q and k heads of a fused
// projection rotated, its v heads passed through.
#include "ops/rope.h"
#include "tools/gradcheck/catalogue.h"

namespace tg {
namespace {

using catalogue::uniform;

std::vector<catalogue::OpCase> rope_cases() {
  std::vector<catalogue::OpCase> cases;
  cases.push_back({"rope", "[2, 3, 2, 4] offset 5",
                   [](const std::vector<Tensor>& in) {
                     RopeOptions o;
                     o.position_offset = 5;
                     return rope(in[0], o);
                   },
                   {uniform({2, 3, 2, 4}, 900)}});
  cases.push_back({"rope", "[1, 4, 1, 6] positions [0, 1, 0, 1] theta 100",
                   [](const std::vector<Tensor>& in) {
                     RopeOptions o;
                     o.theta = 100.0;
                     o.positions = empty({4}, DType::i64);
                     for (int64_t t = 0; t < 4; ++t) o.positions.data<int64_t>()[t] = t % 2;
                     return rope(in[0], o);
                   },
                   {uniform({1, 4, 1, 6}, 901)}});
  cases.push_back({"rope", "[1, 5, 2, 8] llama3 scaling (factor 8, original context 256) offset 9",
                   [](const std::vector<Tensor>& in) {
                     RopeOptions o;
                     o.theta = 500000.0, o.position_offset = 9;
                     o.scaling.rope_type = "llama3", o.scaling.factor = 8, o.scaling.original_max_position_embeddings = 256;
                     return rope(in[0], o);
                   },
                   {uniform({1, 5, 2, 8}, 902)}});
  cases.push_back({"rope", "[2, 3, 4, 4] first 3 heads rotated (fused q, k, v), linear scaling 2",
                   [](const std::vector<Tensor>& in) {
                     RopeOptions o;
                     o.rotated_heads = 3;
                     o.scaling.rope_type = "linear", o.scaling.factor = 2;
                     return rope(in[0], o);
                   },
                   {uniform({2, 3, 4, 4}, 903)}});
  return cases;
}

}  // namespace
}  // namespace tg

static const bool registered = tg::catalogue::register_family("rope", &tg::rope_cases);
