// Anomaly mode (torch.autograd.detect_anomaly): the first op whose forward output or backward
// gradient holds NaN/Inf is named with its shapes; off, nothing is checked.
#include <limits>

#include "test_util.h"

namespace tg {
namespace {

// Runs f and returns the tg::Error message it throws ("" when it throws none).
template <class F>
std::string error_of(F&& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

TEST(Anomaly, OffByDefault) { EXPECT_FALSE(is_anomaly_enabled()); }

TEST(Anomaly, LogOfANegativeNumberIsCaughtInForwardNamingLog) {
  Tensor x = full({3, 4}, 2.0);
  x.data<float>()[5] = -1.0f;
  x.requires_grad_();
  DetectAnomalyGuard anomaly;
  std::string msg = error_of([&] { (void)log(x); });
  EXPECT_NE(msg.find("anomaly: log forward produced NaN in its output of shape [3, 4]"), std::string::npos) << msg;
}

TEST(Anomaly, ForwardCheckAlsoCoversOpsThatRecordNothing) {
  Tensor a = full({2, 3}, 1.0), b = zeros({2, 3});  // no input requires grad
  DetectAnomalyGuard anomaly;
  std::string msg = error_of([&] { (void)(a / b); });
  EXPECT_NE(msg.find("anomaly: div forward produced Inf in its output of shape [2, 3]"), std::string::npos) << msg;
}

TEST(Anomaly, SqrtAtZeroIsCaughtInBackwardNamingSqrt) {
  // sqrt(0) = 0 is finite, its gradient 1 / (2 sqrt(0)) is not.
  Tensor x = full({3, 4}, 4.0);
  x.data<float>()[0] = 0.0f;
  x.requires_grad_();
  DetectAnomalyGuard anomaly;
  Tensor loss = sum(sqrt(x));
  std::string msg = error_of([&] { backward(loss); });
  EXPECT_NE(msg.find("anomaly: sqrt backward produced Inf in the gradient of input 0 (shape [3, 4])"),
            std::string::npos)
      << msg;
}

TEST(Anomaly, NaNFromUpstreamIsNamedAtTheFirstOpThatProducesIt) {
  // log(0 * x) backward: d/dx = (1 / 0) * 0 -> NaN in mul's gradient; log's own gradient is Inf.
  Tensor x = full({2, 2}, 1.0);
  x.requires_grad_();
  Tensor zero = zeros({2, 2});
  DetectAnomalyGuard anomaly;
  std::string msg = error_of([&] { (void)log(x * zero); });  // -inf in forward
  EXPECT_NE(msg.find("anomaly: log forward produced Inf"), std::string::npos) << msg;
}

TEST(Anomaly, OffNothingThrowsAndTheGuardRestores) {
  {
    DetectAnomalyGuard on;
    EXPECT_TRUE(is_anomaly_enabled());
    {
      DetectAnomalyGuard off(false);
      EXPECT_FALSE(is_anomaly_enabled());
    }
    EXPECT_TRUE(is_anomaly_enabled());
  }
  EXPECT_FALSE(is_anomaly_enabled());
  Tensor x = full({3, 4}, 4.0);
  x.data<float>()[0] = 0.0f;
  x.data<float>()[1] = -1.0f;
  x.requires_grad_();
  Tensor loss = sum(sqrt(x));  // NaN at -1
  EXPECT_NO_THROW(backward(loss));
  EXPECT_TRUE(std::isinf(x.grad().data<float>()[0]));
}

}  // namespace
}  // namespace tg
