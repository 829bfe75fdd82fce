#include "rpc/internal/load_balancer.h"

#include <atomic>
#include <map>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"

namespace nprpc {
namespace {

std::vector<EndpointPtr> MakeEndpoints(const std::vector<int>& weights) {
  std::vector<EndpointPtr> endpoints;
  for (size_t i = 0; i < weights.size(); ++i) {
    endpoints.push_back(std::make_shared<Endpoint>(
        ServerNode{absl::StrCat("10.0.0.", i, ":80"), weights[i]}, nullptr));
  }
  return endpoints;
}

std::unique_ptr<LoadBalancer> Make(const std::string& policy, const std::vector<EndpointPtr>& eps) {
  auto lb = LoadBalancer::Create(policy);
  EXPECT_TRUE(lb.ok()) << lb.status();
  (*lb)->Update(eps);
  return std::move(*lb);
}

std::map<std::string, int> Counts(LoadBalancer& lb, int picks, const std::string& key = "") {
  std::map<std::string, int> counts;
  for (int i = 0; i < picks; ++i) counts[lb.Select(key, {})->node.address]++;
  return counts;
}

TEST(LoadBalancer, UnknownPolicyIsAnError) { EXPECT_FALSE(LoadBalancer::Create("fastest").ok()); }

TEST(LoadBalancer, EmptyListSelectsNothing) {
  auto lb = Make("rr", {});
  EXPECT_EQ(lb->Select("", {}), nullptr);
}

TEST(RoundRobin, CyclesThroughEveryEndpointEvenly) {
  auto eps = MakeEndpoints({1, 1, 1});
  auto lb = Make("rr", eps);
  for (const auto& [address, count] : Counts(*lb, 300)) EXPECT_EQ(count, 100) << address;
}

TEST(WeightedRoundRobin, PicksInProportionToWeightsWithoutBursts) {
  auto eps = MakeEndpoints({3, 1});
  auto lb = Make("wrr", eps);
  std::vector<std::string> order;
  for (int i = 0; i < 400; ++i) order.push_back(lb->Select("", {})->node.address);
  int heavy = 0;
  for (const auto& a : order) heavy += a == eps[0]->node.address;
  EXPECT_EQ(heavy, 300);
  // Smooth: the light endpoint appears once in every 4 picks.
  for (size_t i = 0; i + 4 <= order.size(); i += 4) {
    int light = 0;
    for (size_t j = i; j < i + 4; ++j) light += order[j] == eps[1]->node.address;
    EXPECT_EQ(light, 1) << "window at " << i;
  }
}

TEST(Random, ReachesEveryEndpoint) {
  auto eps = MakeEndpoints({1, 1, 1, 1});
  auto lb = Make("random", eps);
  auto counts = Counts(*lb, 2000);
  EXPECT_EQ(counts.size(), 4u);
  for (const auto& [address, count] : counts) EXPECT_GT(count, 300) << address;
}

TEST(LeastOutstanding, PrefersTheEndpointWithFewerCallsInFlight) {
  auto eps = MakeEndpoints({1, 1});
  eps[0]->outstanding = 50;
  auto lb = Make("la", eps);
  auto counts = Counts(*lb, 100);
  EXPECT_EQ(counts[eps[1]->node.address], 100);
}

TEST(LeastOutstanding, BreaksTiesByLatency) {
  auto eps = MakeEndpoints({1, 1});
  eps[0]->latency_us = 5000;
  eps[1]->latency_us = 100;
  auto lb = Make("la", eps);
  EXPECT_EQ(Counts(*lb, 50)[eps[1]->node.address], 50);
}

TEST(ConsistentHashLb, SameKeySameEndpoint) {
  auto eps = MakeEndpoints({1, 1, 1, 1, 1});
  auto lb = Make("c_hash", eps);
  for (int k = 0; k < 100; ++k) {
    std::string key = absl::StrCat("user-", k);
    EndpointPtr first = lb->Select(key, {});
    for (int i = 0; i < 5; ++i) EXPECT_EQ(lb->Select(key, {}), first);
  }
}

TEST(LoadBalancer, SkipsUnhealthyAndExcludedEndpoints) {
  for (const std::string policy : {"rr", "wrr", "random", "la", "c_hash"}) {
    auto eps = MakeEndpoints({1, 1, 1});
    eps[0]->healthy_flag = false;
    auto lb = Make(policy, eps);
    for (int i = 0; i < 50; ++i) {
      EndpointPtr picked = lb->Select(absl::StrCat("k", i), {eps[1].get()});
      EXPECT_EQ(picked, eps[2]) << policy;
    }
  }
}

TEST(LoadBalancer, FallsBackToExcludedThenUnhealthyRatherThanNothing) {
  for (const std::string policy : {"rr", "wrr", "random", "la", "c_hash"}) {
    auto eps = MakeEndpoints({1, 1});
    eps[0]->healthy_flag = false;
    auto lb = Make(policy, eps);
    // The only healthy endpoint was tried already: it is still better than
    // the unhealthy one.
    EXPECT_EQ(lb->Select("k", {eps[1].get()}), eps[1]) << policy;
    eps[1]->healthy_flag = false;
    EXPECT_NE(lb->Select("k", {}), nullptr) << policy;
  }
}

// Issue #18: a Select() racing a naming update used to see the new ring with
// the old list (or the reverse) and return null ("no server available")
// although every list it could see was non-empty.
TEST(ConsistentHashLb, SelectDuringUpdatesNeverFindsNothing) {
  auto lb = Make("c_hash", MakeEndpoints({1, 1, 1}));
  std::atomic<bool> stop{false};
  std::thread updater([&] {
    for (int i = 0; i < 5000; ++i) lb->Update(MakeEndpoints({1, 1, 1 + i % 2}));
    stop = true;
  });
  int64_t misses = 0;
  int64_t picks = 0;
  while (!stop.load()) {
    misses += lb->Select(absl::StrCat("k", picks), {}) == nullptr;
    ++picks;
  }
  updater.join();
  EXPECT_EQ(misses, 0) << "of " << picks << " picks";
}

TEST(Endpoint, RetireSucceedsOnlyWhenIdleAndThenRefusesAcquisition) {
  Endpoint endpoint(ServerNode{"10.0.0.1:80"}, nullptr);
  ASSERT_TRUE(endpoint.TryAcquire());
  EXPECT_FALSE(endpoint.Retire()) << "an attempt holds it";
  EXPECT_FALSE(endpoint.TryAcquire()) << "retiring: no new attempt";
  endpoint.Release();
  EXPECT_TRUE(endpoint.Retire());
  EXPECT_FALSE(endpoint.TryAcquire());
  EXPECT_EQ(endpoint.outstanding.load(), 0);
}

// Retire() racing TryAcquire() on another thread: once Retire() says idle,
// nobody holds the endpoint, and nobody gets it afterwards.
TEST(Endpoint, NoAcquisitionSurvivesASuccessfulRetire) {
  for (int round = 0; round < 200; ++round) {
    Endpoint endpoint(ServerNode{"10.0.0.1:80"}, nullptr);
    std::atomic<bool> shut{false};
    std::atomic<bool> started{false};
    std::atomic<int> violations{0};
    std::thread attempts([&] {
      started.store(true);
      for (int i = 0; i < 2000; ++i) {
        if (!endpoint.TryAcquire()) continue;
        if (shut.load()) violations.fetch_add(1);
        endpoint.Release();
      }
    });
    while (!started.load()) {
    }
    while (!endpoint.Retire()) {
    }
    shut.store(true);
    attempts.join();
    EXPECT_EQ(violations.load(), 0) << "round " << round;
  }
}

}  // namespace
}  // namespace nprpc
