// ConsistentHashRing: a ketama-style ring for consistent hashing.
//
// Every endpoint owns `virtual_nodes * weight` points on a 64-bit ring (the
// hash of "address#i"); a key belongs to the first point at or after its own
// hash. When an endpoint joins or leaves, only the keys between its points and
// their predecessors move: about 1/N of them, the share that must move.
//
// The hash is stable across processes and machines (FNV-1a 64 with a
// SplitMix64 finalizer), so every client maps a key to the same server.
//
// Thread safety: immutable after construction; safe from any thread.
#ifndef RPC_INTERNAL_CONSISTENT_HASH_H_
#define RPC_INTERNAL_CONSISTENT_HASH_H_

#include <cstdint>
#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/string_view.h"

namespace nprpc {

// Stable 64-bit hash of bytes.
uint64_t StableHash64(absl::string_view bytes);

class ConsistentHashRing {
 public:
  struct Member {
    std::string address;
    int weight = 1;
  };

  explicit ConsistentHashRing(const std::vector<Member>& members, int virtual_nodes = 160);

  // Indexes into `members`, in ring order starting at the key's point: the
  // owner first, then the fallbacks (each member once). `accept` filters.
  // Returns -1 when no member is accepted.
  int Find(absl::string_view key, const std::function<bool(int)>& accept) const;

  size_t points() const { return ring_.size(); }

 private:
  std::vector<std::pair<uint64_t, int>> ring_;  // (point, member index), sorted
  size_t members_ = 0;
};

}  // namespace nprpc

#endif  // RPC_INTERNAL_CONSISTENT_HASH_H_
