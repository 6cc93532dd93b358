#pragma once
// Module: parameters, buffers and submodules registered by name, as torch.nn.Module.
// Names are dotted paths (`h.0.attn.c_attn.weight`); nothing is known by position.
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "autograd/tensor.h"

namespace tg::nn {

/// Name -> tensor, sorted by name (parameters and buffers of a whole module tree).
using StateDict = std::map<std::string, Tensor>;

class Module {
 public:
  explicit Module(std::string type_name = "Module") : type_name_(std::move(type_name)) {}
  virtual ~Module() = default;
  Module(const Module&) = delete;
  Module& operator=(const Module&) = delete;

  /// The one-input forward of layers (Linear, LayerNorm, ...); other modules throw.
  virtual Tensor forward(const Tensor& x);
  Tensor operator()(const Tensor& x) { return forward(x); }

  /// Parameters with dotted names, in registration order, submodules after own parameters.
  std::vector<std::pair<std::string, Tensor>> named_parameters(bool recurse = true) const;
  std::vector<Tensor> parameters(bool recurse = true) const;
  std::vector<std::pair<std::string, Tensor>> named_buffers(bool recurse = true) const;
  /// Direct submodules.
  std::vector<std::pair<std::string, std::shared_ptr<Module>>> named_children() const;
  /// Number of parameter elements.
  int64_t num_parameters() const;

  /// Clears every parameter's gradient (set_to_none) or fills it with zeros.
  void zero_grad(bool set_to_none = true);
  /// Training mode (dropout active) for this module and all below it.
  virtual void train(bool on = true);
  void eval() { train(false); }
  bool is_training() const { return training_; }

  /// Parameters and buffers by dotted name (the tensors themselves, sharing data).
  StateDict state_dict() const;
  /// Copies values in (converting dtype). Shapes must match; with `strict`, a missing or an
  /// unexpected key is an error that lists them all.
  void load_state_dict(const StateDict& state, bool strict = true);

  const std::string& type_name() const { return type_name_; }
  /// One line per module, indented, as printing a torch.nn.Module.
  std::string to_string() const;

 protected:
  /// Registers a parameter (a leaf that requires grad) and returns it (same tensor).
  Tensor register_parameter(const std::string& name, Tensor t, bool requires_grad = true);
  /// Registers a buffer (saved in state_dict, not trained).
  Tensor register_buffer(const std::string& name, Tensor t);
  /// Registers a submodule and returns it.
  template <class M>
  std::shared_ptr<M> register_module(const std::string& name, std::shared_ptr<M> module) {
    add_child(name, module);
    return module;
  }
  /// A short summary of the options shown by to_string(), e.g. "in_features=4, out_features=8".
  virtual std::string extra_repr() const { return ""; }

 private:
  void add_child(const std::string& name, std::shared_ptr<Module> module);
  void check_new_name(const std::string& name) const;
  void to_string_rec(std::string& out, const std::string& name, int indent) const;

  std::string type_name_;
  bool training_ = true;
  std::vector<std::pair<std::string, Tensor>> parameters_;
  std::vector<std::pair<std::string, Tensor>> buffers_;
  std::vector<std::pair<std::string, std::shared_ptr<Module>>> children_;
};

}  // namespace tg::nn
