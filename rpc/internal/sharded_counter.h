// ShardedCounter: a counter or gauge that many threads bump without sharing a
// cache line in the common case.
//
// The value lives in a few cache-line-padded shards; Add() picks its shard by
// a per-thread index handed out round-robin at a thread's first Add() (so up
// to ShardCount() threads each own a line; more threads share them, still
// correctly), and bumps it with one relaxed atomic add. Value() sums the
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

// Hands out shards round-robin; ThisThreadShard() calls it once per thread.
size_t NextThreadShard();

// This thread's shard in [0, ShardCount()). Constant for the thread's life.
inline size_t ThisThreadShard() {
  static thread_local const size_t shard = NextThreadShard();
  return shard;
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
