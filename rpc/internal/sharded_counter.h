// ShardedCounter: a counter or gauge that many threads bump without sharing a
// cache line in the common case.
//
// The value lives in a few cache-line-padded shards; Add() picks its shard by
// a per-thread index (ThisThreadShard(): the least-used shard at the thread's
// first use, released at its exit, so up to ShardCount() live threads each own
// a line; more threads share them, still correctly), and bumps it with one
// relaxed atomic add. Value() sums the
// shards: it is not atomic across shards, so a reader racing with writers
// sees some of their adds and not others.
//
//   ShardedCounter requests;
//   requests.Add(1);           // hot path: one relaxed fetch_add, no lock
//   int64_t n = requests.Value();
//
// A gauge is the same counter with negative adds (in-flight: +1 then -1).
//
// Thread safety: every method is safe from any thread.
#ifndef RPC_INTERNAL_SHARDED_COUNTER_H_
#define RPC_INTERNAL_SHARDED_COUNTER_H_

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>

namespace nprpc {

// Destructive interference size on the machines we target (x86-64, arm64).
inline constexpr size_t kCacheLineSize = 64;

// The number of shards of every sharded structure of the process: the
// hardware thread count rounded up to a power of two, at most 16. Constant
// after its first call.
size_t ShardCount();

namespace sharded_internal {
// A thread's claim on a shard: taken at the thread's first use (the shard with
// the fewest live threads, lowest index first), given back when it exits.
struct ShardLease {
  ShardLease();
  ~ShardLease();
  ShardLease(const ShardLease&) = delete;
  ShardLease& operator=(const ShardLease&) = delete;
  const size_t index;
};
}  // namespace sharded_internal

// This thread's shard in [0, ShardCount()). Constant for the thread's life.
// While at most ShardCount() threads use shards, no two share one.
inline size_t ThisThreadShard() {
  static thread_local const sharded_internal::ShardLease lease;
  return lease.index;
}

class ShardedCounter {
 public:
  ShardedCounter();
  ShardedCounter(const ShardedCounter&) = delete;
  ShardedCounter& operator=(const ShardedCounter&) = delete;

  void Add(int64_t delta) {
    shards_[ThisThreadShard()].value.fetch_add(delta, std::memory_order_relaxed);
  }
  void Increment() { Add(1); }
  // The sum of every shard.
  int64_t Value() const;

 private:
  struct alignas(kCacheLineSize) Shard {
    std::atomic<int64_t> value{0};
  };
  std::unique_ptr<Shard[]> shards_;  // ShardCount() of them
};

}  // namespace nprpc

#endif  // RPC_INTERNAL_SHARDED_COUNTER_H_
