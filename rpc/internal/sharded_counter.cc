#include "rpc/internal/sharded_counter.h"

#include <algorithm>
#include <bit>
#include <thread>

namespace nprpc {

size_t ShardCount() {
  static const size_t count = [] {
    size_t threads = std::max<size_t>(1, std::thread::hardware_concurrency());
    return std::min<size_t>(16, std::bit_ceil(threads));
  }();
  return count;
}

// Round-robin over the shards, one step per thread at its first use.
size_t NextThreadShard() {
  static std::atomic<size_t> next{0};
  return next.fetch_add(1, std::memory_order_relaxed) & (ShardCount() - 1);
}

ShardedCounter::ShardedCounter() : shards_(new Shard[ShardCount()]) {}

int64_t ShardedCounter::Value() const {
  int64_t sum = 0;
  for (size_t i = 0; i < ShardCount(); ++i) sum += shards_[i].value.load(std::memory_order_relaxed);
  return sum;
}

}  // namespace nprpc
