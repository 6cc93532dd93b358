// Gradcheck cases of the shape family: views (reshape, view, unsqueeze, squeeze, narrow on axis
// 0), copies (transpose, permute, narrow elsewhere, slice with steps, cat, stack, split, chunk,
// expand) and the gathers (index_select, embedding) with repeated ids.
#include <functional>

#include "ops/shape_ops.h"
#include "tools/gradcheck/catalogue.h"

namespace tg::catalogue {
namespace {

// Uniform in [-1, 1), f64, from a fixed seed.
Tensor input(const Shape& shape, uint64_t seed) { return catalogue::uniform(shape, seed, -1, 1); }

Tensor ids(const std::vector<double>& v, const Shape& shape) {
  return tensor(v, shape, DType::i64);
}

using V = std::vector<Tensor>;
using Fn = std::function<Tensor(const V&)>;

// A case with one random input of shape x.
OpCase one(const std::string& op, const std::string& shapes, const Shape& x, uint64_t seed, Fn fn) {
  return {op, shapes, std::move(fn), {input(x, seed)}};
}

std::vector<OpCase> shape_cases() {
  std::vector<OpCase> c;
  c.push_back(one("reshape", "[2, 3, 4] -> [4, -1]", {2, 3, 4}, 1,
                  [](const V& v) { return reshape(v[0], {4, -1}); }));
  c.push_back(one("view", "[6] -> [3, 2]", {6}, 2, [](const V& v) { return view(v[0], {3, 2}); }));
  c.push_back(one("unsqueeze", "[2, 3] axis -1", {2, 3}, 3,
                  [](const V& v) { return unsqueeze(v[0], -1); }));
  c.push_back(one("squeeze", "[2, 1, 3] axis 1", {2, 1, 3}, 4,
                  [](const V& v) { return squeeze(v[0], 1); }));
  c.push_back(one("transpose", "[2, 3, 4] axes 0, 2", {2, 3, 4}, 5,
                  [](const V& v) { return transpose(v[0], 0, 2); }));
  c.push_back(one("permute", "[2, 3, 1, 4] dims [3, 0, 2, 1]", {2, 3, 1, 4}, 6,
                  [](const V& v) { return permute(v[0], {3, 0, 2, 1}); }));
  c.push_back(one("narrow", "[5, 3] axis 0 [1, 4) (view)", {5, 3}, 7,
                  [](const V& v) { return narrow(v[0], 0, 1, 3); }));
  c.push_back(one("narrow", "[3, 5, 2] axis 1 [2, 4) (copy)", {3, 5, 2}, 8,
                  [](const V& v) { return narrow(v[0], 1, 2, 2); }));
  c.push_back(one("slice", "[3, 7] axis 1 [-6:-1:2]", {3, 7}, 9,
                  [](const V& v) { return slice(v[0], 1, -6, -1, 2); }));
  c.push_back(one("slice", "[6, 2] axis 0 [1:100:3]", {6, 2}, 10,
                  [](const V& v) { return slice(v[0], 0, 1, 100, 3); }));
  c.push_back(one("slice", "[2, 5] axis 1 [1:3] (step 1)", {2, 5}, 11,
                  [](const V& v) { return slice(v[0], 1, 1, 3); }));
  c.push_back({"cat", "[2, 1] ++ [2, 3] ++ [2, 0] axis 1",
               [](const V& v) { return cat({v[0], v[1], v[2]}, 1); },
               {input({2, 1}, 12), input({2, 3}, 13), input({2, 0}, 14)}});
  c.push_back({"cat", "[1, 3] ++ [2, 3] axis 0", [](const V& v) { return cat({v[0], v[1]}, 0); },
               {input({1, 3}, 15), input({2, 3}, 16)}});
  c.push_back({"stack", "[2, 3] x 3 axis 1",
               [](const V& v) { return stack({v[0], v[1], v[2]}, 1); },
               {input({2, 3}, 17), input({2, 3}, 18), input({2, 3}, 19)}});
  c.push_back({"stack", "[3] x 2 axis -1", [](const V& v) { return stack({v[0], v[1]}, -1); },
               {input({3}, 20), input({3}, 21)}});
  c.push_back(one("split", "[5, 2] by 2, axis 0, piece 1", {5, 2}, 22,
                  [](const V& v) { return split(v[0], 2, 0)[1]; }));
  c.push_back(one("split", "[2, 5] by 2, axis 1, last piece", {2, 5}, 23,
                  [](const V& v) { return split(v[0], 2, 1).back(); }));
  c.push_back(one("chunk", "[2, 7] into 3, axis -1, piece 1", {2, 7}, 24,
                  [](const V& v) { return chunk(v[0], 3, -1)[1]; }));
  c.push_back(one("expand", "[3, 1] -> [2, 3, 4]", {3, 1}, 25,
                  [](const V& v) { return expand(v[0], {2, 3, 4}); }));
  c.push_back(one("expand", "[1, 4] -> [3, -1]", {1, 4}, 26,
                  [](const V& v) { return expand(v[0], {3, -1}); }));
  c.push_back({"index_select", "[4, 3] axis 0, ids [2, 0, 2]",
               [](const V& v) { return index_select(v[0], 0, v[1]); },
               {input({4, 3}, 27), ids({2, 0, 2}, {3})}});
  c.push_back({"index_select", "[2, 4, 2] axis 1, ids [3, 3, 1, 0]",
               [](const V& v) { return index_select(v[0], 1, v[1]); },
               {input({2, 4, 2}, 28), ids({3, 3, 1, 0}, {4})}});
  c.push_back({"embedding", "[5, 3] ids [2, 3] with repeats",
               [](const V& v) { return embedding(v[0], v[1]); },
               {input({5, 3}, 29), ids({4, 1, 4, 0, 1, 4}, {2, 3})}});
  return c;
}

static const bool registered = register_family("shape", &shape_cases);

}  // namespace
}  // namespace tg::catalogue
