#pragma once
// Storage: one allocation shared by a tensor and its views, with the version counter that
// in-place ops bump so that backward can detect a saved tensor modified after it was saved.
#include <cstdint>

#include "autograd/allocator.h"

namespace tg {

struct Storage {
  explicit Storage(size_t bytes) : data(allocate(bytes)), nbytes(bytes) {}
  ~Storage() { deallocate(data, nbytes); }
  Storage(const Storage&) = delete;
  Storage& operator=(const Storage&) = delete;

  void* data;
  size_t nbytes;
  uint64_t version = 0;
};

}  // namespace tg
