#include "nn/module.h"

#include <algorithm>

#include "autograd/error.h"
#include "autograd/tape.h"

namespace tg::nn {
namespace {

void prefix_into(std::vector<std::pair<std::string, Tensor>>& out, const std::string& prefix,
                 const std::vector<std::pair<std::string, Tensor>>& items) {
  for (const auto& [name, t] : items) out.emplace_back(prefix + name, t);
}

}  // namespace

Tensor Module::forward(const Tensor&) {
  fail("{}: forward(x) with one input is not defined for this module", type_name_);
}

void Module::check_new_name(const std::string& name) const {
  TG_CHECK(!name.empty() && name.find('.') == std::string::npos,
           "{}: invalid name '{}' (must be non-empty and contain no '.')", type_name_, name);
  auto taken = [&](const auto& items) {
    return std::any_of(items.begin(), items.end(), [&](const auto& p) { return p.first == name; });
  };
  TG_CHECK(!taken(parameters_) && !taken(buffers_) && !taken(children_),
           "{}: the name '{}' is already registered", type_name_, name);
}

Tensor Module::register_parameter(const std::string& name, Tensor t, bool requires_grad) {
  check_new_name(name);
  TG_CHECK(t.defined() && is_floating(t.dtype()), "{}: parameter '{}' must be a defined f32/f64 tensor",
           type_name_, name);
  TG_CHECK(t.is_leaf(), "{}: parameter '{}' must be a leaf (detach it first)", type_name_, name);
  t.requires_grad_(requires_grad);
  parameters_.emplace_back(name, t);
  return t;
}

Tensor Module::register_buffer(const std::string& name, Tensor t) {
  check_new_name(name);
  buffers_.emplace_back(name, t);
  return t;
}

void Module::add_child(const std::string& name, std::shared_ptr<Module> module) {
  check_new_name(name);
  TG_CHECK(module != nullptr, "{}: submodule '{}' is null", type_name_, name);
  children_.emplace_back(name, std::move(module));
}

std::vector<std::pair<std::string, Tensor>> Module::named_parameters(bool recurse) const {
  std::vector<std::pair<std::string, Tensor>> out = parameters_;
  if (recurse)
    for (const auto& [name, child] : children_) prefix_into(out, name + ".", child->named_parameters());
  return out;
}

std::vector<Tensor> Module::parameters(bool recurse) const {
  std::vector<Tensor> out;
  for (auto& [name, t] : named_parameters(recurse)) out.push_back(t);
  return out;
}

std::vector<std::pair<std::string, Tensor>> Module::named_buffers(bool recurse) const {
  std::vector<std::pair<std::string, Tensor>> out = buffers_;
  if (recurse)
    for (const auto& [name, child] : children_) prefix_into(out, name + ".", child->named_buffers());
  return out;
}

std::vector<std::pair<std::string, std::shared_ptr<Module>>> Module::named_children() const {
  return children_;
}

int64_t Module::num_parameters() const {
  int64_t n = 0;
  for (const Tensor& p : parameters()) n += p.numel();
  return n;
}

void Module::zero_grad(bool set_to_none) {
  for (Tensor& p : parameters()) {
    if (set_to_none)
      p.set_grad(Tensor());
    else
      p.zero_grad();
  }
}

void Module::train(bool on) {
  training_ = on;
  for (auto& [name, child] : children_) child->train(on);
}

StateDict Module::state_dict() const {
  StateDict out;
  for (auto& [name, t] : named_parameters()) out[name] = t;
  for (auto& [name, t] : named_buffers()) out[name] = t;
  return out;
}

void Module::load_state_dict(const StateDict& state, bool strict) {
  StateDict mine = state_dict();
  std::vector<std::string> missing, unexpected, mismatched;
  for (const auto& [name, t] : mine)
    if (!state.count(name)) missing.push_back(name);
  for (const auto& [name, t] : state) {
    auto it = mine.find(name);
    if (it == mine.end()) {
      unexpected.push_back(name);
    } else if (t.shape() != it->second.shape()) {
      mismatched.push_back(fmt::format("{}: checkpoint {} vs model {}", name, shape_str(t.shape()),
                                       shape_str(it->second.shape())));
    }
  }
  TG_CHECK(mismatched.empty(), "load_state_dict: shape mismatch for {}", fmt::join(mismatched, "; "));
  TG_CHECK(!strict || (missing.empty() && unexpected.empty()),
           "load_state_dict: missing keys [{}]; unexpected keys [{}]", fmt::join(missing, ", "),
           fmt::join(unexpected, ", "));
  NoGradGuard no_grad;
  for (auto& [name, t] : mine) {
    auto it = state.find(name);
    if (it != state.end()) t.copy_(it->second);
  }
}

std::string Module::to_string() const {
  std::string out;
  to_string_rec(out, "", 0);
  return out;
}

void Module::to_string_rec(std::string& out, const std::string& name, int indent) const {
  out += std::string(indent, ' ');
  if (!name.empty()) out += "(" + name + "): ";
  out += type_name_ + "(" + extra_repr();
  if (children_.empty()) {
    out += ")\n";
    return;
  }
  out += "\n";
  for (const auto& [child_name, child] : children_) child->to_string_rec(out, child_name, indent + 2);
  out += std::string(indent, ' ') + ")\n";
}

}  // namespace tg::nn
