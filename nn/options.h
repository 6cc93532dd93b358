#pragma once
// TG_ARG declares one field of a module's options struct with a chainable setter and a getter,
// as PyTorch's C++ frontend does: LinearOptions(768, 3072).bias(false).
#define TG_ARG(T, name, default_value)          \
 public:                                        \
  auto& name(const T& value) {                  \
    name##_ = value;                            \
    return *this;                               \
  }                                             \
  const T& name() const { return name##_; }     \
                                                \
 private:                                       \
  T name##_ = default_value
