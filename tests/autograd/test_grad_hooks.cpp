// Post-accumulate-grad hooks and queued callbacks (autograd/grad_hooks.h): when they run during
// backward, with what gradient, how often, and their errors.
#include "test_util.h"

namespace tg {
namespace {

Tensor leaf(const std::vector<double>& v) {
  Tensor t = tensor(v, {int64_t(v.size())}, DType::f64);
  t.requires_grad_();
  return t;
}

TEST(GradHooks, RunOnceWithTheFinalGradient) {
  Tensor a = leaf({1, 2}), b = leaf({3, 4}), c = leaf({5, 6});
  std::vector<std::vector<double>> seen;
  register_post_accumulate_grad_hook(a, [&](const Tensor& t) { seen.push_back(t.grad().to_vector()); });
  // a is used by two nodes: its gradient b + c is final only after the earlier one has run.
  Tensor loss = sum(a * b + a * c);
  backward(loss);
  ASSERT_EQ(seen.size(), 1u);
  EXPECT_EQ(seen[0], (std::vector<double>{8, 10}));
  EXPECT_EQ(a.grad().to_vector(), seen[0]);
}

TEST(GradHooks, LaterLayersFirstWhileBackwardStillRuns) {
  // x -> *w1 -> *w2 -> sum: w2's gradient is final before w1's, and w1's hook runs after it.
  Tensor x = tensor({1.0, 2.0}, {2}, DType::f64);
  Tensor w1 = leaf({3, 4}), w2 = leaf({5, 6});
  std::vector<std::string> order;
  bool w1_grad_when_w2_ready = true;
  register_post_accumulate_grad_hook(w1, [&](const Tensor&) { order.push_back("w1"); });
  register_post_accumulate_grad_hook(w2, [&](const Tensor&) {
    order.push_back("w2");
    w1_grad_when_w2_ready = w1.grad().defined();
  });
  backward(sum((x * w1) * w2));
  EXPECT_EQ(order, (std::vector<std::string>{"w2", "w1"}));
  EXPECT_FALSE(w1_grad_when_w2_ready);  // backward had not reached w1 yet
}

TEST(GradHooks, NotRunForALeafThisBackwardDidNotReach) {
  Tensor a = leaf({1, 2}), b = leaf({3, 4});
  int calls_a = 0, calls_b = 0;
  register_post_accumulate_grad_hook(a, [&](const Tensor&) { ++calls_a; });
  register_post_accumulate_grad_hook(b, [&](const Tensor&) { ++calls_b; });
  Tensor unused = a * 2.0;  // recorded on the tape, but the loss does not depend on it
  backward(sum(b * 3.0));
  EXPECT_EQ(calls_a, 0);
  EXPECT_EQ(calls_b, 1);
  EXPECT_FALSE(a.grad().defined());
}

TEST(GradHooks, OncePerBackwardAndRemovable) {
  Tensor a = leaf({1, 2});
  int calls = 0;
  RemovableHandle h = register_post_accumulate_grad_hook(a, [&](const Tensor&) { ++calls; });
  backward(sum(a * a));
  backward(sum(a * 3.0));
  EXPECT_EQ(calls, 2);
  h.remove();
  h.remove();  // twice is harmless
  backward(sum(a * 3.0));
  EXPECT_EQ(calls, 2);
}

TEST(GradHooks, ALeafRootRunsItsHook) {
  Tensor a = tensor({2.0}, {}, DType::f64);
  a.requires_grad_();
  int calls = 0;
  register_post_accumulate_grad_hook(a, [&](const Tensor& t) { calls += t.grad().item() == 1.0; });
  backward(a);
  EXPECT_EQ(calls, 1);
}

TEST(GradHooks, QueuedCallbackRunsAfterEveryHook) {
  Tensor x = tensor({1.0, 2.0}, {2}, DType::f64);
  Tensor w1 = leaf({3, 4}), w2 = leaf({5, 6});
  std::vector<std::string> events;
  register_post_accumulate_grad_hook(w2, [&](const Tensor&) {
    events.push_back("w2");
    queue_callback([&] {
      events.push_back("end");
      queue_callback([&] { events.push_back("end2"); });  // queued by a callback: runs too
    });
  });
  register_post_accumulate_grad_hook(w1, [&](const Tensor&) { events.push_back("w1"); });
  backward(sum((x * w1) * w2));
  EXPECT_EQ(events, (std::vector<std::string>{"w2", "w1", "end", "end2"}));
}

TEST(GradHooks, Errors) {
  Tensor a = leaf({1, 2});
  Tensor y = a * 2.0;
  EXPECT_TG_ERROR(register_post_accumulate_grad_hook(y, [](const Tensor&) {}),
                  "register_post_accumulate_grad_hook: only a leaf");
  Tensor plain = tensor({1.0}, {1}, DType::f64);
  EXPECT_TG_ERROR(register_post_accumulate_grad_hook(plain, [](const Tensor&) {}), "does not require grad");
  EXPECT_TG_ERROR(queue_callback([] {}), "queue_callback: only valid while backward() runs");
}

TEST(GradHooks, InsideCheckpointCallbacksWaitForTheOuterBackward) {
  // w is used only inside a checkpointed function: its hook fires in the nested backward of the
  // recomputation, and the callback it queues runs when the outer backward ends, after x's hook.
  Tensor x = leaf({1, 2}), w = leaf({3, 4});
  std::vector<std::string> events;
  register_post_accumulate_grad_hook(w, [&](const Tensor&) {
    events.push_back("w");
    queue_callback([&] { events.push_back("callback"); });
  });
  register_post_accumulate_grad_hook(x, [&](const Tensor&) { events.push_back("x"); });
  Tensor h = x * 2.0;
  Tensor loss = sum(checkpoint([&](const std::vector<Tensor>& in) { return in[0] * w; }, {h}));
  backward(loss);
  EXPECT_EQ(events, (std::vector<std::string>{"w", "x", "callback"}));
  EXPECT_EQ(w.grad().to_vector(), (std::vector<double>{2, 4}));
  EXPECT_EQ(x.grad().to_vector(), (std::vector<double>{6, 8}));
}

}  // namespace
}  // namespace tg
