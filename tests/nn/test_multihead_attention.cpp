// MultiheadAttention against torch.nn.MultiheadAttention (PyTorch 1.13, f64): output, weights
// and the gradients of every input and parameter, from tests/nn/fixtures/mha.safetensors.
// Regenerate the fixture with Debian's python3-torch:
//   /usr/bin/python3 tests/nn/make_mha_fixture.py
// Also: parameter names, shapes and initialisation as PyTorch's; the fused and unfused
// projection paths agree; is_causal, additive masks, the one-input forward, dropout, a non-dense
// variant; errors.
#include <filesystem>
#include <set>

#include "nn/multihead_attention.h"
#include "nn/safetensors.h"
#include "nn/sequential.h"
#include "test_util.h"

namespace tg {
namespace {

using testing::expect_close;
using testing::max_abs;
using testing::max_abs_diff;
using testing::uniform;

const nn::StateDict& fixture() {
  static nn::StateDict f = nn::load_safetensors(
      std::string(TAPEGRAD_SOURCE_DIR) + "/tests/nn/fixtures/mha.safetensors");
  return f;
}

Tensor get(const std::string& name) {
  auto it = fixture().find(name);
  if (it == fixture().end()) throw std::runtime_error("fixture has no tensor " + name);
  return it->second;
}

// A leaf copy of a fixture input that requires grad.
Tensor input(const std::string& name) { return get(name).clone().requires_grad_(); }

// A PyTorch bool mask stored as 0/1 -> b8.
Tensor bool_mask(const std::string& name) {
  Tensor f = get(name), m = empty(f.shape(), DType::b8);
  std::vector<double> v = f.to_vector();
  for (size_t i = 0; i < v.size(); ++i) m.data<bool>()[i] = v[i] != 0.0;
  return m;
}

// The module's parameters from the fixture; the module has exactly PyTorch's parameter names.
void load_case(nn::MultiheadAttention& mha, const std::string& c) {
  std::set<std::string> torch_names, names;
  const std::string grad = c + ".grad.";
  for (const auto& [name, t] : fixture()) {
    if (!name.starts_with(grad)) continue;
    std::string n = name.substr(grad.size());
    bool is_input = n == "x" || n == "query" || n == "key" || n == "value" || n == "memory";
    if (!is_input) torch_names.insert(n);
  }
  nn::StateDict state;
  for (const auto& [name, t] : mha.state_dict()) {
    names.insert(name);
    state[name] = get(c + "." + name);
  }
  EXPECT_EQ(names, torch_names);
  mha.load_state_dict(state);
}

void expect_fixture_close(const Tensor& got, const std::string& name) {
  SCOPED_TRACE(name);
  ASSERT_TRUE(got.defined());
  expect_close(got, get(name), 1e-10, 1e-12);
}

// loss = (out * R).sum(), then every parameter gradient against PyTorch's.
void backward_and_compare(nn::MultiheadAttention& mha, const Tensor& out, const std::string& c) {
  backward(sum(out * get(c + ".R")));
  for (const auto& [name, p] : mha.named_parameters())
    expect_fixture_close(p.grad(), c + ".grad." + name);
}

nn::MultiheadAttentionOptions f64_options(int64_t C, int64_t H) {
  return nn::MultiheadAttentionOptions(C, H).dtype(DType::f64);
}

TEST(MultiheadAttention, SelfAttentionMatchesPyTorch) {
  nn::MultiheadAttention mha(f64_options(8, 2));
  load_case(mha, "self");
  Tensor x = input("self.x");
  auto [out, weights] =
      mha.forward(x, x, x, bool_mask("self.key_padding_mask"), true, bool_mask("self.attn_mask"));
  expect_fixture_close(out, "self.output");
  expect_fixture_close(weights, "self.weights");
  backward_and_compare(mha, out, "self");
  expect_fixture_close(x.grad(), "self.grad.x");
}

TEST(MultiheadAttention, CrossAttentionWithKdimVdimNoBiasMatchesPyTorch) {
  nn::MultiheadAttention mha(f64_options(8, 2).kdim(6).vdim(4).bias(false));
  load_case(mha, "cross");
  Tensor q = input("cross.query"), k = input("cross.key"), v = input("cross.value");
  auto [out, weights] = mha.forward(q, k, v);
  expect_fixture_close(out, "cross.output");
  expect_fixture_close(weights, "cross.weights");
  backward_and_compare(mha, out, "cross");
  expect_fixture_close(q.grad(), "cross.grad.query");
  expect_fixture_close(k.grad(), "cross.grad.key");
  expect_fixture_close(v.grad(), "cross.grad.value");
}

TEST(MultiheadAttention, SharedKeyValueAdditiveMaskPerHeadWeightsMatchPyTorch) {
  nn::MultiheadAttention mha(f64_options(8, 2));
  load_case(mha, "memory");
  Tensor q = input("memory.query"), m = input("memory.memory");
  auto [out, weights] = mha.forward(q, m, m, Tensor(), true, get("memory.attn_mask"), false);
  EXPECT_EQ(weights.shape(), Shape({2, 2, 4, 6}));
  expect_fixture_close(out, "memory.output");
  expect_fixture_close(weights, "memory.weights");
  backward_and_compare(mha, out, "memory");
  expect_fixture_close(q.grad(), "memory.grad.query");
  expect_fixture_close(m.grad(), "memory.grad.memory");
}

// The fused self-attention projection, the key-is-value one and three separate ones agree;
// is_causal gives what the explicit causal mask gives.
TEST(MultiheadAttention, ProjectionPathsAndIsCausalAgree) {
  nn::MultiheadAttention mha(f64_options(8, 2));
  load_case(mha, "self");
  Tensor x = get("self.x"), kpm = bool_mask("self.key_padding_mask");
  Tensor ref = get("self.output");
  Tensor x1 = x.clone(), x2 = x.clone(), x3 = x.clone();
  expect_close(mha.forward(x1, x2, x3, kpm, false, bool_mask("self.attn_mask")).output, ref, 1e-10,
               1e-12);
  expect_close(mha.forward(x1, x2, x2, kpm, false, bool_mask("self.attn_mask")).output, ref, 1e-10,
               1e-12);
  auto causal = mha.forward(x, x, x, kpm, true, Tensor(), true, /*is_causal=*/true);
  expect_close(causal.output, ref, 1e-10, 1e-12);
  expect_close(causal.weights, get("self.weights"), 1e-10, 1e-12);
}

// A floating key_padding_mask (0 / -inf) acts as the boolean one, alone and with a b8 attn_mask.
TEST(MultiheadAttention, AdditiveKeyPaddingMask) {
  nn::MultiheadAttention mha(f64_options(8, 2));
  load_case(mha, "self");
  Tensor x = get("self.x"), kpm = bool_mask("self.key_padding_mask");
  Tensor additive = get("self.key_padding_mask") * -1e300;  // -1e300 underflows exp to 0
  Tensor am = bool_mask("self.attn_mask");
  expect_close(mha.forward(x, x, x, additive, false, am).output, get("self.output"), 1e-10, 1e-12);
  expect_close(mha.forward(x, x, x, additive, true).weights,
               mha.forward(x, x, x, kpm, true).weights, 1e-12, 1e-14);
}

TEST(MultiheadAttention, ParametersAreNamedAndInitialisedAsPyTorch) {
  nn::MultiheadAttention fused(nn::MultiheadAttentionOptions(16, 4));
  std::vector<std::string> names;
  for (auto& [n, t] : fused.named_parameters()) names.push_back(n);
  EXPECT_EQ(names, std::vector<std::string>(
                       {"in_proj_weight", "in_proj_bias", "out_proj.weight", "out_proj.bias"}));
  EXPECT_EQ(fused.in_proj_weight.shape(), Shape({48, 16}));
  EXPECT_EQ(fused.head_dim, 4);
  EXPECT_EQ(max_abs(fused.in_proj_bias), 0.0);
  EXPECT_EQ(max_abs(fused.out_proj->bias), 0.0);
  // xavier_uniform_ over [3C, C]: U(-r, r), r = sqrt(6 / (C + 3C)); 768 draws come near r.
  double r = std::sqrt(6.0 / 64.0);
  EXPECT_LE(max_abs(fused.in_proj_weight), r);
  EXPECT_GT(max_abs(fused.in_proj_weight), 0.9 * r);
  EXPECT_LE(max_abs(fused.out_proj->weight), 1.0 / std::sqrt(16.0));

  nn::MultiheadAttention split(nn::MultiheadAttentionOptions(8, 2).kdim(6).vdim(4).bias(false));
  names.clear();
  for (auto& [n, t] : split.named_parameters()) names.push_back(n);
  EXPECT_EQ(names, std::vector<std::string>(
                       {"q_proj_weight", "k_proj_weight", "v_proj_weight", "out_proj.weight"}));
  EXPECT_EQ(split.k_proj_weight.shape(), Shape({8, 6}));
  EXPECT_EQ(split.v_proj_weight.shape(), Shape({8, 4}));
  EXPECT_LE(max_abs(split.k_proj_weight), std::sqrt(6.0 / 14.0));
  EXPECT_NE(split.to_string().find("MultiheadAttention(embed_dim=8, num_heads=2, kdim=6, vdim=4"),
            std::string::npos)
      << split.to_string();
}

TEST(MultiheadAttention, OneInputForwardInSequential) {
  manual_seed(3);
  auto mha = std::make_shared<nn::MultiheadAttention>(f64_options(8, 2).causal(true));
  nn::Sequential seq({mha});
  Tensor x = uniform({2, 5, 8}, 1);
  Tensor expected = mha->forward(x, x, x, Tensor(), false, Tensor(), true, true).output;
  EXPECT_EQ(max_abs_diff(seq.forward(x), expected), 0.0);
  // Causal: the first position only sees itself, so later positions cannot change it.
  Tensor y = x.clone();
  y.set({0, 4, 3}, 5.0);
  Tensor a = seq.forward(x), b = seq.forward(y);
  EXPECT_EQ(max_abs_diff(narrow(narrow(a, 1, 0, 4), 0, 0, 1), narrow(narrow(b, 1, 0, 4), 0, 0, 1)),
            0.0);
}

TEST(MultiheadAttention, DropoutOnlyInTraining) {
  manual_seed(4);
  nn::MultiheadAttention mha(f64_options(8, 2).dropout(0.5));
  Tensor x = uniform({2, 5, 8}, 2);
  mha.eval();
  Tensor eval1 = mha.forward(x), eval2 = mha.forward(x);
  EXPECT_EQ(max_abs_diff(eval1, eval2), 0.0);
  nn::MultiheadAttention plain(f64_options(8, 2));
  plain.load_state_dict(mha.state_dict());
  EXPECT_EQ(max_abs_diff(eval1, plain.forward(x)), 0.0);
  mha.train();
  EXPECT_GT(max_abs_diff(mha.forward(x), eval1), 1e-3);
}

// The variant reaches tg::attention: the linear variant equals projecting by hand and calling it.
TEST(MultiheadAttention, LinearVariant) {
  manual_seed(5);
  nn::MultiheadAttention mha(f64_options(8, 2).variant(AttentionVariant::linear));
  Tensor x = uniform({2, 5, 8}, 3);
  Tensor qkv = linear(x, mha.in_proj_weight, mha.in_proj_bias);  // [2, 5, 24]
  auto head = [&](int64_t i) { return reshape(narrow(qkv, 2, 8 * i, 8), {2, 5, 2, 4}); };
  AttentionSpec spec;
  spec.variant = AttentionVariant::linear;
  spec.causal = true;
  Tensor expected =
      mha.out_proj->forward(reshape(attention(head(0), head(1), head(2), spec), {2, 5, 8}));
  Tensor got = mha.forward(x, x, x, Tensor(), false, Tensor(), true, true).output;
  expect_close(got, expected, 1e-12, 1e-14);
  EXPECT_TG_ERROR(
      mha.forward(x, x, x),
      "MultiheadAttention: need_weights needs the dense variant, this module uses linear");
  EXPECT_TG_ERROR(
      nn::MultiheadAttention(
          nn::MultiheadAttentionOptions(8, 2).variant(AttentionVariant::linear).dropout(0.1)),
      "MultiheadAttention: the linear variant has no attention weights to drop out");
}

TEST(MultiheadAttention, Errors) {
  EXPECT_TG_ERROR(nn::MultiheadAttention(nn::MultiheadAttentionOptions(10, 4)),
                  "MultiheadAttention: embed_dim 10 is not divisible by num_heads 4");
  EXPECT_TG_ERROR(nn::MultiheadAttention(nn::MultiheadAttentionOptions(8, 0)),
                  "MultiheadAttention: embed_dim and num_heads must be positive, got 8 and 0");
  nn::MultiheadAttention mha(nn::MultiheadAttentionOptions(8, 2).kdim(6).vdim(4));
  Tensor q = zeros({2, 5, 8}), k = zeros({2, 7, 6}), v = zeros({2, 7, 4});
  EXPECT_TG_ERROR(mha.forward(zeros({2, 5, 7}), k, v),
                  "MultiheadAttention: query [2, 5, 7], key [2, 7, 6], value [2, 7, 4] must be "
                  "[B, T, embed_dim=8], [B, S, kdim=6], [B, S, vdim=4]");
  EXPECT_TG_ERROR(mha.forward(q, zeros({2, 7, 8}), v), "key [2, 7, 8]");
  EXPECT_TG_ERROR(mha.forward(q, k, zeros({2, 6, 4})), "value [2, 6, 4]");
  EXPECT_TG_ERROR(mha.forward(q, k, zeros({3, 7, 4})), "value [3, 7, 4]");
  EXPECT_TG_ERROR(mha.forward(zeros({5, 8}), k, v), "query [5, 8]");
  EXPECT_TG_ERROR(mha.forward(q, k, v, zeros({2, 5}, DType::b8)),
                  "MultiheadAttention: key_padding_mask of shape [2, 5] must be [B, S] = [2, 7]");
  EXPECT_TG_ERROR(mha.forward(q, k, v, zeros({2, 7}, DType::i64)),
                  "MultiheadAttention: key_padding_mask must be b8 or floating, got i64");
  EXPECT_TG_ERROR(mha.forward(q, k, v, Tensor(), true, zeros({5, 5}, DType::b8)),
                  "MultiheadAttention: attn_mask of shape [5, 5] must be [T, S] = [5, 7] or "
                  "[B * num_heads, T, S] = [4, 5, 7]");
  EXPECT_TG_ERROR(mha.forward(q, k, v, Tensor(), true, zeros({2, 5, 7})),
                  "attn_mask of shape [2, 5, 7]");
  EXPECT_TG_ERROR(
      mha.forward(q.to(DType::f64), k, v),
      "MultiheadAttention: query, key, value are f64, f32, f32 but the parameters are f32");
}

}  // namespace
}  // namespace tg
