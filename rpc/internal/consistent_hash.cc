#include "rpc/internal/consistent_hash.h"

#include <algorithm>

#include "absl/strings/str_cat.h"

namespace nprpc {

uint64_t StableHash64(absl::string_view bytes) {
  uint64_t h = 0xcbf29ce484222325ull;  // FNV-1a 64
  for (unsigned char c : bytes) {
    h ^= c;
    h *= 0x100000001b3ull;
  }
  // SplitMix64 finalizer: spreads FNV's weak low bits over the ring.
  h ^= h >> 30;
  h *= 0xbf58476d1ce4e5b9ull;
  h ^= h >> 27;
  h *= 0x94d049bb133111ebull;
  h ^= h >> 31;
  return h;
}

ConsistentHashRing::ConsistentHashRing(const std::vector<Member>& members, int virtual_nodes)
    : members_(members.size()) {
  for (size_t m = 0; m < members.size(); ++m) {
    int points = virtual_nodes * std::max(1, members[m].weight);
    for (int i = 0; i < points; ++i) {
      ring_.emplace_back(StableHash64(absl::StrCat(members[m].address, "#", i)),
                         static_cast<int>(m));
    }
  }
  std::sort(ring_.begin(), ring_.end());
}

int ConsistentHashRing::Find(absl::string_view key, const std::function<bool(int)>& accept) const {
  if (ring_.empty()) return -1;
  uint64_t point = StableHash64(key);
  auto it = std::lower_bound(ring_.begin(), ring_.end(), std::make_pair(point, -1));
  size_t start = static_cast<size_t>(it - ring_.begin());
  std::vector<bool> seen(members_, false);
  size_t distinct = 0;
  for (size_t k = 0; k < ring_.size() && distinct < members_; ++k) {
    int member = ring_[(start + k) % ring_.size()].second;
    if (seen[member]) continue;
    seen[member] = true;
    ++distinct;
    if (accept(member)) return member;
  }
  return -1;
}

}  // namespace nprpc
