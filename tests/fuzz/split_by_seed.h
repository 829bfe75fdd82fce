// SplitBySeed: how the fuzz targets that feed a live connection cut an input
// into writes, chosen by one seed byte: whole, a few bytes at a time (1-7),
// or 1-300 bytes at a time, so that every parser sees frames split anywhere.
//
//   for (const std::string& write : SplitBySeed(data[0], rest)) Send(write);
//
// Thread safety: a pure function.
#ifndef TESTS_FUZZ_SPLIT_BY_SEED_H_
#define TESTS_FUZZ_SPLIT_BY_SEED_H_

#include <algorithm>
#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include "absl/strings/string_view.h"

namespace nprpc::fuzz {

inline std::vector<std::string> SplitBySeed(uint8_t seed, absl::string_view all) {
  std::vector<std::string> writes;
  std::mt19937 rng(seed);
  size_t at = 0;
  while (at < all.size()) {
    const size_t max =
        seed % 3 == 0 ? all.size() : (seed % 3 == 1 ? 1 + rng() % 7 : 1 + rng() % 300);
    const size_t n = std::min(all.size() - at, max);
    writes.emplace_back(all.substr(at, n));
    at += n;
  }
  return writes;
}

}  // namespace nprpc::fuzz

#endif  // TESTS_FUZZ_SPLIT_BY_SEED_H_
