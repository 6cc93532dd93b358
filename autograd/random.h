#pragma once
// Generator: a Philox key (the seed) and a counter offset. Each draw takes the next block of
// counters, so a seed gives the same numbers whatever the thread count. Like torch.Generator.
#include <cstdint>

namespace tg {

class Generator {
 public:
  explicit Generator(uint64_t seed = 0) : seed_(seed) {}

  uint64_t seed() const { return seed_; }
  uint64_t offset() const { return offset_; }
  /// Restarts the stream of this seed (as torch.Generator.manual_seed).
  void manual_seed(uint64_t seed) {
    seed_ = seed;
    offset_ = 0;
  }
  void set_offset(uint64_t offset) { offset_ = offset; }
  /// Reserves `blocks` Philox counters and returns the first.
  uint64_t advance(uint64_t blocks) {
    uint64_t first = offset_;
    offset_ += blocks;
    return first;
  }

 private:
  uint64_t seed_;
  uint64_t offset_ = 0;
};

/// The process-wide generator used where none is given (per thread, like a default stream).
Generator& default_generator();
/// Reseeds the default generator, as torch.manual_seed.
void manual_seed(uint64_t seed);

/// Restores the default generator's seed and offset when it goes out of scope: a model that draws
/// its own initialisation from the generator it is given builds its submodules (which draw their
/// starts from the default stream) inside one, so building it leaves the default stream as it was.
class KeepDefaultGenerator {
 public:
  KeepDefaultGenerator() : seed_(default_generator().seed()), offset_(default_generator().offset()) {}
  ~KeepDefaultGenerator() {
    default_generator().manual_seed(seed_);
    default_generator().set_offset(offset_);
  }
  KeepDefaultGenerator(const KeepDefaultGenerator&) = delete;
  KeepDefaultGenerator& operator=(const KeepDefaultGenerator&) = delete;

 private:
  uint64_t seed_, offset_;
};

}  // namespace tg
