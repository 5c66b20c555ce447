#pragma once

#include <array>
#include <cstdint>
#include <vector>

namespace llmfs {

/// numpy's legacy generator, np.random.RandomState(seed), for the draws pandas makes with
/// random_state=seed (BOOK.md §1.5): an MT19937 initialised with the classic 32-bit seeding
/// routine init_genrand(seed). Only the draws the book's data preparation needs are here; each
/// gives the same numbers as numpy for the same seed and call sequence.
///
///   llmfs::NumpyRandomState rs(123);
///   auto rows = rs.choice(4825, 747);  // RandomState(123).choice(4825, 747, replace=False)
class NumpyRandomState {
 public:
  /// RandomState(seed) with an integer seed (numpy accepts 0 … 2^32 − 1, as here).
  explicit NumpyRandomState(uint32_t seed);

  /// The next 32-bit MT19937 output (numpy's next_uint32).
  uint32_t next_uint32();

  /// The next 64-bit output: two 32-bit outputs, the first one the high half (numpy's
  /// mt19937_next64).
  uint64_t next_uint64();

  /// A uniform value in [0, max] by masked rejection (numpy's random_interval): mask = the
  /// smallest 2^k − 1 >= max; draw, AND with the mask, accept the first value <= max. 32-bit
  /// draws while max fits in 32 bits, 64-bit draws above. max == 0 returns 0 without drawing.
  uint64_t random_interval(uint64_t max);

  /// A random permutation of 0 … n−1 (RandomState.permutation(n)): the identity, then for
  /// i = n−1 down to 1 position i swapped with random_interval(i). llmfs::Error when n < 0.
  std::vector<int64_t> permutation(int64_t n);

  /// `size` distinct values of 0 … n−1 in sampling order: RandomState.choice(n, size,
  /// replace=False), which is the first `size` entries of permutation(n). llmfs::Error unless
  /// 0 <= size <= n.
  std::vector<int64_t> choice(int64_t n, int64_t size);

 private:
  void generate();  // refills state_ (the MT19937 twist)

  std::array<uint32_t, 624> state_{};
  int position_ = 624;
};

}  // namespace llmfs
