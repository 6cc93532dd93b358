// Module: dotted names, state dicts and their errors, train/eval, zero_grad; the layers.
#include "nn/activation.h"
#include "nn/embedding.h"
#include "nn/init.h"
#include "nn/layer_norm.h"
#include "nn/linear.h"
#include "nn/sequential.h"
#include "test_util.h"

namespace tg {
namespace {

// A two-level module, as a GPT block nests attention inside.
struct Block : nn::Module {
  Block() : Module("Block") {
    ln = register_module("ln", std::make_shared<nn::LayerNorm>(nn::LayerNormOptions({4})));
    fc = register_module("fc", std::make_shared<nn::Linear>(nn::LinearOptions(4, 3)));
    scale = register_buffer("scale", full({1}, 2.0));
  }
  Tensor forward(const Tensor& x) override { return fc->forward(ln->forward(x)); }
  std::shared_ptr<nn::LayerNorm> ln;
  std::shared_ptr<nn::Linear> fc;
  Tensor scale;
};

struct Net : nn::Module {
  Net() : Module("Net") {
    h = register_module("h", std::make_shared<nn::Sequential>());
    h->push_back(std::make_shared<Block>());
    h->push_back(std::make_shared<Block>());
  }
  std::shared_ptr<nn::Sequential> h;
};

std::vector<std::string> names(const std::vector<std::pair<std::string, Tensor>>& items) {
  std::vector<std::string> out;
  for (auto& [n, t] : items) out.push_back(n);
  return out;
}

TEST(Module, DottedParameterNames) {
  Net net;
  EXPECT_EQ(names(net.named_parameters()),
            std::vector<std::string>({"h.0.ln.weight", "h.0.ln.bias", "h.0.fc.weight", "h.0.fc.bias",
                                      "h.1.ln.weight", "h.1.ln.bias", "h.1.fc.weight", "h.1.fc.bias"}));
  EXPECT_EQ(names(net.named_buffers()), std::vector<std::string>({"h.0.scale", "h.1.scale"}));
  EXPECT_EQ(net.num_parameters(), 2 * (4 + 4 + 12 + 3));
  for (Tensor& p : net.parameters()) EXPECT_TRUE(p.requires_grad());
  EXPECT_EQ(net.state_dict().size(), 10u);
  EXPECT_NE(net.to_string().find("(fc): Linear(in_features=4, out_features=3, bias=true)"), std::string::npos)
      << net.to_string();
}

TEST(Module, LoadStateDictCopiesValuesAndChecks) {
  manual_seed(1);
  Net a;
  manual_seed(2);
  Net b;
  nn::StateDict sa = a.state_dict();
  b.load_state_dict(sa);
  for (auto& [name, t] : b.state_dict()) EXPECT_EQ(t.to_vector(), sa[name].to_vector()) << name;
  // b's parameters are still the same tensors (values copied in place).
  EXPECT_TRUE(b.state_dict()["h.0.fc.weight"].shares_storage(
      std::static_pointer_cast<Block>((*b.h)[0])->fc->weight));

  nn::StateDict missing = sa;
  missing.erase("h.1.fc.bias");
  missing["h.9.extra"] = zeros({1});
  EXPECT_TG_ERROR(b.load_state_dict(missing), "missing keys [h.1.fc.bias]; unexpected keys [h.9.extra]");
  b.load_state_dict(missing, /*strict=*/false);

  nn::StateDict wrong = sa;
  wrong["h.0.fc.weight"] = zeros({3, 5});
  EXPECT_TG_ERROR(b.load_state_dict(wrong), "h.0.fc.weight: checkpoint [3, 5] vs model [3, 4]");
}

TEST(Module, TrainEvalReachesChildren) {
  Net net;
  net.eval();
  for (auto& [n, child] : net.h->named_children()) EXPECT_FALSE(child->is_training());
  net.train();
  EXPECT_TRUE((*net.h)[1]->is_training());
}

TEST(Module, ZeroGrad) {
  nn::Linear lin(nn::LinearOptions(3, 2));
  Tensor x = testing::uniform({5, 3}, 1, -1, 1, DType::f32);
  backward(sum(lin.forward(x)));
  ASSERT_TRUE(lin.weight.grad().defined());
  lin.zero_grad(/*set_to_none=*/false);
  for (double v : lin.weight.grad().to_vector()) EXPECT_EQ(v, 0.0);
  lin.zero_grad();
  EXPECT_FALSE(lin.weight.grad().defined());
}

TEST(Module, RegistrationErrors) {
  struct Bad : nn::Module {
    void twice() {
      register_parameter("w", zeros({1}));
      register_parameter("w", zeros({1}));
    }
    void dotted() { register_parameter("a.b", zeros({1})); }
  };
  Bad bad;
  EXPECT_TG_ERROR(bad.twice(), "the name 'w' is already registered");
  EXPECT_TG_ERROR(bad.dotted(), "invalid name 'a.b'");
  EXPECT_TG_ERROR(bad.forward(zeros({1})), "forward(x) with one input is not defined");
}

TEST(Layers, LinearMatchesFormulaAndInit) {
  manual_seed(0);
  nn::Linear lin(nn::LinearOptions(16, 8));
  double bound = 1.0 / 4.0;
  for (double v : lin.weight.to_vector()) EXPECT_LE(std::fabs(v), bound);
  Tensor x = testing::uniform({2, 16}, 3, -1, 1, DType::f32);
  Tensor y = lin.forward(x);
  ASSERT_EQ(y.shape(), Shape({2, 8}));
  for (int64_t i = 0; i < 2; ++i)
    for (int64_t o = 0; o < 8; ++o) {
      double ref = lin.bias.at({o});
      for (int64_t k = 0; k < 16; ++k) ref += x.at({i, k}) * lin.weight.at({o, k});
      EXPECT_NEAR(y.at({i, o}), ref, 1e-5);
    }
  nn::Linear nobias(nn::LinearOptions(4, 2).bias(false));
  EXPECT_FALSE(nobias.bias.defined());
  EXPECT_EQ(nobias.named_parameters().size(), 1u);
  EXPECT_TG_ERROR(lin.forward(zeros({2, 15})), "Linear: input of shape [2, 15] has last size 15, expected in_features=16");
  EXPECT_TG_ERROR(nn::Linear(nn::LinearOptions(0, 2)), "must be positive");
}

TEST(Layers, LayerNormGeluDropoutEmbeddingSequential) {
  nn::LayerNorm ln(nn::LayerNormOptions({6}).eps(1e-6));
  Tensor x = testing::uniform({3, 6}, 4, -2, 2, DType::f32);
  Tensor y = ln.forward(x);
  for (int64_t r = 0; r < 3; ++r) {
    double m = 0;
    for (int64_t c = 0; c < 6; ++c) m += y.at({r, c});
    EXPECT_NEAR(m / 6, 0.0, 1e-5);
  }
  nn::GELU gelu_tanh(nn::GELUOptions().approximate("tanh"));
  testing::expect_close(gelu_tanh.forward(x), gelu(x, "tanh"));
  EXPECT_TG_ERROR(nn::GELU(nn::GELUOptions().approximate("fast")), "approximate must be 'none' or 'tanh'");

  nn::Dropout drop(nn::DropoutOptions(0.5));
  drop.eval();
  EXPECT_EQ(drop.forward(x).to_vector(), x.to_vector());
  drop.train();
  Tensor d = drop.forward(ones({1000}));
  int zeros_seen = 0;
  for (double v : d.to_vector()) zeros_seen += v == 0.0;
  EXPECT_GT(zeros_seen, 400);
  EXPECT_LT(zeros_seen, 600);

  nn::Embedding emb(nn::EmbeddingOptions(10, 4));
  Tensor ids = tensor({3, 3, 9}, {}, DType::i64);
  Tensor e = emb.forward(ids);
  ASSERT_EQ(e.shape(), Shape({3, 4}));
  EXPECT_EQ(e.at({2, 1}), emb.weight.at({9, 1}));

  auto seq = nn::Sequential({std::make_shared<nn::Linear>(nn::LinearOptions(6, 5)),
                             std::make_shared<nn::GELU>(), std::make_shared<nn::Linear>(nn::LinearOptions(5, 2))});
  EXPECT_EQ(seq.forward(x).shape(), Shape({3, 2}));
  EXPECT_EQ(names(seq.named_parameters())[2], "2.weight");
}

TEST(Init, DistributionsAndFans) {
  Tensor w = empty({200, 300}, DType::f64);
  Generator gen(5);
  nn::init::xavier_uniform_(w, 1.0, gen);
  double r = std::sqrt(6.0 / 500.0), m2 = 0;
  for (double v : w.to_vector()) {
    EXPECT_LE(std::fabs(v), r);
    m2 += v * v;
  }
  EXPECT_NEAR(m2 / w.numel(), r * r / 3, 0.02 * r * r);
  nn::init::kaiming_normal_(w, 0.0, "fan_in", "relu", gen);
  m2 = 0;
  for (double v : w.to_vector()) m2 += v * v;
  EXPECT_NEAR(m2 / w.numel(), 2.0 / 300.0, 0.03 * 2.0 / 300.0);
  nn::init::normal_(w, 1.0, 0.02, gen);
  EXPECT_NEAR(mean(w).item(), 1.0, 1e-3);
  nn::init::zeros_(w);
  EXPECT_EQ(max(w).item(), 0.0);
  Tensor v = empty({3});
  EXPECT_TG_ERROR(nn::init::xavier_uniform_(v), "rank >= 2, got shape [3]");
  EXPECT_TG_ERROR(nn::init::kaiming_uniform_(w, 0, "fan_mid"), "mode must be fan_in or fan_out");
}

}  // namespace
}  // namespace tg
