// index_select and embedding: gathered values against loops, scatter-added gradients with
// repeated ids against loops, errors naming the bad id, and a backward that is bitwise the same
// with 1 and 2 threads.
#include <cmath>

#include "test_util.h"

namespace tg {
namespace {

using testing::uniform;

Tensor ids(const std::vector<double>& v, const Shape& shape) {
  return tensor(v, shape, DType::i64);
}

// `n` ids in [0, v) from a fixed seed.
Tensor random_ids(const Shape& shape, int64_t v, uint64_t seed) {
  std::vector<double> u = uniform(shape, seed, 0, double(v)).to_vector();
  for (double& x : u) x = std::floor(x);
  return ids(u, shape);
}

TEST(IndexSelect, ValuesMatchLoops) {
  Tensor x = uniform({2, 4, 3}, 1);
  std::vector<double> id{3, 0, 3, 1, 2};
  for (int64_t axis : {0, 1, 2, -1}) {
    std::vector<double> sel;
    for (double v : id)
      if (v < x.size(axis)) sel.push_back(v);
    Tensor y = index_select(x, axis, ids(sel, {int64_t(sel.size())}));
    int64_t a = axis < 0 ? axis + 3 : axis;
    Shape want = x.shape();
    want[a] = int64_t(sel.size());
    ASSERT_EQ(y.shape(), want);
    for (int64_t i = 0; i < want[0]; ++i)
      for (int64_t j = 0; j < want[1]; ++j)
        for (int64_t k = 0; k < want[2]; ++k) {
          std::vector<int64_t> src{i, j, k};
          src[a] = int64_t(sel[src[a]]);
          EXPECT_EQ(y.at({i, j, k}), x.at(src));
        }
    EXPECT_EQ(index_select(x.to(DType::f32), axis, ids(sel, {int64_t(sel.size())})).to_vector(),
              y.to(DType::f32).to_vector());
  }
  EXPECT_EQ(index_select(x, 1, ids({2}, {})).shape(), Shape({2, 1, 3}));  // 0-d index
  EXPECT_EQ(index_select(x, 1, ids({}, {0})).shape(), Shape({2, 0, 3}));
  EXPECT_EQ(index_select(tensor({5, 6, 7}, {3}, DType::i64), 0, ids({2, 2, 0}, {3})).to_vector(),
            std::vector<double>({7, 7, 5}));
}

TEST(IndexSelect, GradientAddsRepeatedIds) {
  Tensor x = uniform({2, 4}, 2).requires_grad_();
  Tensor g = uniform({2, 3}, 3);
  backward(index_select(x, 1, ids({3, 0, 3}, {3})), g);
  for (int64_t i = 0; i < 2; ++i) {
    EXPECT_EQ(x.grad().at({i, 0}), g.at({i, 1}));
    EXPECT_EQ(x.grad().at({i, 1}), 0.0);
    EXPECT_EQ(x.grad().at({i, 2}), 0.0);
    EXPECT_DOUBLE_EQ(x.grad().at({i, 3}), g.at({i, 0}) + g.at({i, 2}));
  }
}

TEST(IndexSelect, Errors) {
  Tensor x = zeros({4, 3});
  EXPECT_TG_ERROR(index_select(x, 0, ids({1, 4}, {2})),
                  "index_select: index 4 is out of range for axis 0 (size 4) of shape [4, 3]");
  EXPECT_TG_ERROR(index_select(x, 1, ids({-1}, {1})),
                  "index_select: index -1 is out of range for axis 1 (size 3)");
  EXPECT_TG_ERROR(index_select(x, 0, zeros({2})),
                  "index_select: index must be i64, got f32 (shape [2])");
  EXPECT_TG_ERROR(index_select(x, 0, ids({0, 1}, {1, 2})),
                  "index_select: index must have rank 1, got shape [1, 2]");
  EXPECT_TG_ERROR(index_select(x, 2, ids({0}, {1})), "index_select: axis 2 is out of range");
}

TEST(Embedding, ValuesMatchLoops) {
  Tensor w = uniform({5, 3}, 4);
  Tensor id = ids({4, 1, 4, 0, 2, 4}, {2, 3});
  Tensor y = embedding(w, id);
  ASSERT_EQ(y.shape(), Shape({2, 3, 3}));
  for (int64_t b = 0; b < 2; ++b)
    for (int64_t t = 0; t < 3; ++t)
      for (int64_t c = 0; c < 3; ++c) EXPECT_EQ(y.at({b, t, c}), w.at({int64_t(id.at({b, t})), c}));
  EXPECT_EQ(embedding(w.to(DType::f32), id).to_vector(), y.to(DType::f32).to_vector());
  EXPECT_EQ(embedding(w, ids({3}, {})).shape(), Shape({3}));  // 0-d ids -> one row
}

TEST(Embedding, RepeatedIdsAccumulate) {
  Tensor w = uniform({6, 4}, 5).requires_grad_();
  Tensor id = ids({4, 1, 4, 0, 1, 4}, {2, 3});
  Tensor g = uniform({2, 3, 4}, 6);
  backward(embedding(w, id), g);
  std::vector<double> vg = g.to_vector(), want(24, 0.0);
  std::vector<double> vid = id.to_vector();
  for (size_t p = 0; p < vid.size(); ++p)
    for (int c = 0; c < 4; ++c) want[size_t(vid[p]) * 4 + c] += vg[p * 4 + c];
  testing::expect_close(w.grad(), tensor(want, {6, 4}, DType::f64), 1e-15, 1e-15);
  EXPECT_EQ(w.grad().at({5, 0}), 0.0);  // an unused row gets nothing
}

TEST(Embedding, Errors) {
  Tensor w = zeros({5, 3});
  EXPECT_TG_ERROR(embedding(w, ids({0, 5, 1}, {3})),
                  "embedding: index 5 is out of range for a weight of 5 rows (shape [5, 3])");
  EXPECT_TG_ERROR(embedding(w, ids({-2}, {1})), "embedding: index -2 is out of range");
  EXPECT_TG_ERROR(embedding(zeros({5}), ids({0}, {1})),
                  "embedding: weight must be [V, C], got shape [5]");
  EXPECT_TG_ERROR(embedding(w, zeros({2})), "embedding: indices must be i64, got f32 (shape [2])");
}

TEST(Embedding, BackwardDoesNotDependOnThreadCount) {
  const int saved = get_num_threads();
  // Many repeats of few ids, rows wider than one column block, f32 so that the order of the
  // additions shows in the bits.
  Tensor id = random_ids({8, 750}, 50, 7);
  auto run = [&](int threads) {
    set_num_threads(threads);
    Tensor w = uniform({50, 200}, 8, -1, 1, DType::f32).requires_grad_();
    Tensor x = uniform({6, 50, 70}, 9, -1, 1, DType::f32).requires_grad_();
    backward(embedding(w, id), uniform({8, 750, 200}, 10, -1, 1, DType::f32));
    backward(index_select(x, 1, reshape(id, {-1})), uniform({6, 6000, 70}, 11, -1, 1, DType::f32));
    return std::make_pair(w.grad().to_vector(), x.grad().to_vector());
  };
  auto one = run(1), two = run(2);
  EXPECT_TRUE(one.first == two.first);
  EXPECT_TRUE(one.second == two.second);
  set_num_threads(saved);
}

}  // namespace
}  // namespace tg
