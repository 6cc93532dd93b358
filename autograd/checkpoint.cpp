#include "autograd/checkpoint.h"

#include "autograd/backward.h"
#include "autograd/error.h"
#include "autograd/node.h"
#include "autograd/tape.h"

namespace tg {
namespace {

/// Puts a generator at a saved state for its scope, then back where it was.
class GeneratorAt {
 public:
  GeneratorAt(Generator& gen, uint64_t seed, uint64_t offset)
      : gen_(gen), seed_(gen.seed()), offset_(gen.offset()) {
    gen_.manual_seed(seed);
    gen_.set_offset(offset);
  }
  ~GeneratorAt() {
    gen_.manual_seed(seed_);
    gen_.set_offset(offset_);
  }

 private:
  Generator& gen_;
  uint64_t seed_, offset_;
};

/// fn's inputs cut from the outer graph: leaves that require grad where the input did.
std::vector<Tensor> detached_inputs(const std::vector<Tensor>& inputs) {
  std::vector<Tensor> leaves;
  leaves.reserve(inputs.size());
  for (const Tensor& t : inputs) {
    if (!t.defined()) {
      leaves.emplace_back();
      continue;
    }
    Tensor leaf = t.detach();
    if (t.requires_grad()) leaf.requires_grad_();
    leaves.push_back(std::move(leaf));
  }
  return leaves;
}

struct SavedInput {
  Tensor value;  // detached
  uint64_t version;
};

}  // namespace

Tensor checkpoint(const CheckpointFn& fn, const std::vector<Tensor>& inputs, Generator* gen) {
  TG_CHECK(bool(fn), "checkpoint: fn is empty");
  if (!is_grad_enabled()) return fn(inputs);
  Generator& g = gen ? *gen : default_generator();
  const uint64_t seed = g.seed(), offset = g.offset();

  // Run fn recording as usual, to learn whether anything in it (inputs or captured parameters)
  // needs a gradient; its graph dies with `full` at the end of this function, before the next
  // block runs, so at most one block's activations are alive at a time.
  Tensor full = fn(detached_inputs(inputs));
  TG_CHECK(full.defined(), "checkpoint: fn returned an undefined tensor");
  if (!full.requires_grad()) return full;
  Tensor out = full.detach();

  std::vector<SavedInput> saved;
  saved.reserve(inputs.size());
  for (const Tensor& t : inputs)
    saved.push_back({t.defined() ? t.detach() : Tensor(), t.defined() ? t.version() : 0});

  detail::record_always(
      "checkpoint", out, inputs,
      [fn, saved = std::move(saved), &g, seed, offset](Node& node, const Tensor& dout) {
        std::vector<Tensor> again;
        again.reserve(saved.size());
        for (size_t i = 0; i < saved.size(); ++i) {
          const SavedInput& s = saved[i];
          if (s.value.defined() && s.value.version() != s.version)
            fail("checkpoint backward: input {} (shape {}) was modified in place after checkpoint "
                 "saved it (version {} now, {} when saved)",
                 i, shape_str(s.value.shape()), s.value.version(), s.version);
          Tensor leaf = s.value;
          if (leaf.defined() && node.needs_grad(i)) leaf = leaf.detach().requires_grad_();
          again.push_back(std::move(leaf));
        }
        const uint64_t first_seq = detail::next_seq();
        Tensor recomputed;
        {
          AutoGradMode grad_on(true);  // a gradient rule runs with grad mode off
          GeneratorAt replay_rng(g, seed, offset);
          recomputed = fn(again);
        }
        TG_CHECK(recomputed.defined() && recomputed.shape() == dout.shape() && recomputed.requires_grad(),
                 "checkpoint backward: recomputing fn gave {} {}, the forward gave shape {} that "
                 "required grad: fn must compute the same function both times",
                 recomputed.defined() ? shape_str(recomputed.shape()) : "undefined",
                 recomputed.defined() && recomputed.requires_grad() ? "" : "(not requiring grad)",
                 shape_str(dout.shape()));
        detail::backward_since(recomputed, dout, first_seq);
        for (size_t i = 0; i < again.size(); ++i)
          if (node.needs_grad(i) && again[i].grad().defined()) node.accumulate(i, again[i].grad());
      });
  return out;
}

}  // namespace tg
