#include "rpc/internal/sharded_counter.h"

#include <algorithm>
#include <bit>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "netpoll/mutex.h"

namespace nprpc {

size_t ShardCount() {
  static const size_t count = [] {
    size_t threads = std::max<size_t>(1, std::thread::hardware_concurrency());
    return std::min<size_t>(16, std::bit_ceil(threads));
  }();
  return count;
}

namespace sharded_internal {
namespace {

// Live threads per shard. Leaked: threads may exit during static destruction.
struct ShardUse {
  netpoll::Mutex mu;
  std::vector<int64_t> threads ABSL_GUARDED_BY(mu);
};

ShardUse& Use() {
  static ShardUse* const use = [] {
    auto* u = new ShardUse;
    netpoll::MutexLock lock(&u->mu);
    u->threads.assign(ShardCount(), 0);
    return u;
  }();
  return *use;
}

size_t TakeLeastUsedShard() {
  ShardUse& use = Use();
  netpoll::MutexLock lock(&use.mu);
  size_t best = 0;
  for (size_t i = 1; i < use.threads.size(); ++i) {
    if (use.threads[i] < use.threads[best]) best = i;
  }
  ++use.threads[best];
  return best;
}

}  // namespace

ShardLease::ShardLease() : index(TakeLeastUsedShard()) {}

ShardLease::~ShardLease() {
  ShardUse& use = Use();
  netpoll::MutexLock lock(&use.mu);
  --use.threads[index];
}

}  // namespace sharded_internal

ShardedCounter::ShardedCounter() : shards_(new Shard[ShardCount()]) {}

int64_t ShardedCounter::Value() const {
  int64_t sum = 0;
  for (size_t i = 0; i < ShardCount(); ++i) sum += shards_[i].value.load(std::memory_order_relaxed);
  return sum;
}

}  // namespace nprpc
