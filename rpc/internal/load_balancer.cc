#include "rpc/internal/load_balancer.h"

#include <algorithm>
#include <random>

#include "absl/strings/str_cat.h"
#include "netpoll/mutex.h"
#include "rpc/internal/consistent_hash.h"

namespace nprpc {

void Endpoint::RecordLatency(absl::Duration latency) {
  int64_t sample = absl::ToInt64Microseconds(latency);
  int64_t old = latency_us.load(std::memory_order_relaxed);
  int64_t updated = old == 0 ? sample : old + (sample - old) / 8;
  latency_us.store(updated, std::memory_order_relaxed);
}

namespace {

using EndpointList = std::vector<EndpointPtr>;

uint64_t RandomIndex(uint64_t n) {
  thread_local std::mt19937_64 rng{std::random_device{}()};
  return std::uniform_int_distribution<uint64_t>(0, n - 1)(rng);
}

// Holds the endpoint snapshot and the acceptance rule shared by all policies.
class ListBalancer : public LoadBalancer {
 public:
  void Update(std::vector<EndpointPtr> endpoints) override {
    auto list = std::make_shared<const EndpointList>(std::move(endpoints));
    netpoll::MutexLock lock(&mu_);
    list_ = std::move(list);
    OnUpdateLocked(*list_);
  }

  EndpointPtr Select(absl::string_view key, const std::vector<const Endpoint*>& exclude) override {
    std::shared_ptr<const EndpointList> list = Snapshot();
    if (list->empty()) return nullptr;
    // Strictest first: healthy and untried; then healthy; then anything (an
    // attempt on an unhealthy endpoint fails fast, which beats no attempt).
    for (int pass = 0; pass < 3; ++pass) {
      auto accept = [&](const Endpoint& e) {
        if (pass < 2 && !e.healthy()) return false;
        if (pass == 0 && std::find(exclude.begin(), exclude.end(), &e) != exclude.end()) {
          return false;
        }
        return true;
      };
      if (EndpointPtr picked = Pick(*list, key, accept)) return picked;
    }
    return nullptr;
  }

 protected:
  using Accept = std::function<bool(const Endpoint&)>;
  virtual EndpointPtr Pick(const EndpointList& list, absl::string_view key,
                           const Accept& accept) = 0;
  virtual void OnUpdateLocked(const EndpointList&) {}

  std::shared_ptr<const EndpointList> Snapshot() {
    netpoll::MutexLock lock(&mu_);
    return list_;
  }

  netpoll::Mutex mu_;
  std::shared_ptr<const EndpointList> list_ ABSL_GUARDED_BY(mu_) =
      std::make_shared<const EndpointList>();
};

class RoundRobin : public ListBalancer {
  EndpointPtr Pick(const EndpointList& list, absl::string_view, const Accept& accept) override {
    uint64_t start = next_.fetch_add(1, std::memory_order_relaxed);
    for (size_t k = 0; k < list.size(); ++k) {
      const EndpointPtr& e = list[(start + k) % list.size()];
      if (accept(*e)) return e;
    }
    return nullptr;
  }
  std::atomic<uint64_t> next_{0};
};

// Smooth weighted round-robin: each pick adds every weight to its current
// value, takes the largest, and subtracts the total from it.
class WeightedRoundRobin : public ListBalancer {
  void OnUpdateLocked(const EndpointList& list) override {
    netpoll::MutexLock lock(&state_mu_);
    current_.assign(list.size(), 0);
  }
  EndpointPtr Pick(const EndpointList& list, absl::string_view, const Accept& accept) override {
    netpoll::MutexLock lock(&state_mu_);
    if (current_.size() != list.size()) current_.assign(list.size(), 0);
    int64_t total = 0;
    int best = -1;
    for (size_t i = 0; i < list.size(); ++i) {
      if (!accept(*list[i])) continue;
      current_[i] += list[i]->node.weight;
      total += list[i]->node.weight;
      if (best < 0 || current_[i] > current_[best]) best = static_cast<int>(i);
    }
    if (best < 0) return nullptr;
    current_[best] -= total;
    return list[best];
  }
  netpoll::Mutex state_mu_;
  std::vector<int64_t> current_ ABSL_GUARDED_BY(state_mu_);
};

class Random : public ListBalancer {
  EndpointPtr Pick(const EndpointList& list, absl::string_view, const Accept& accept) override {
    uint64_t start = RandomIndex(list.size());
    for (size_t k = 0; k < list.size(); ++k) {
      const EndpointPtr& e = list[(start + k) % list.size()];
      if (accept(*e)) return e;
    }
    return nullptr;
  }
};

// Power of two choices on outstanding attempts, then latency.
class LeastOutstanding : public ListBalancer {
  EndpointPtr Pick(const EndpointList& list, absl::string_view, const Accept& accept) override {
    std::vector<const EndpointPtr*> ok;
    ok.reserve(list.size());
    for (const EndpointPtr& e : list) {
      if (accept(*e)) ok.push_back(&e);
    }
    if (ok.empty()) return nullptr;
    if (ok.size() == 1) return *ok[0];
    uint64_t a = RandomIndex(ok.size());
    uint64_t b = RandomIndex(ok.size() - 1);
    if (b >= a) ++b;
    const Endpoint& x = **ok[a];
    const Endpoint& y = **ok[b];
    int64_t ox = x.outstanding.load(std::memory_order_relaxed);
    int64_t oy = y.outstanding.load(std::memory_order_relaxed);
    if (ox != oy) return ox < oy ? *ok[a] : *ok[b];
    return x.latency_us.load(std::memory_order_relaxed) <=
                   y.latency_us.load(std::memory_order_relaxed)
               ? *ok[a]
               : *ok[b];
  }
};

class ConsistentHash : public ListBalancer {
  void OnUpdateLocked(const EndpointList& list) override {
    std::vector<ConsistentHashRing::Member> members;
    for (const EndpointPtr& e : list) members.push_back({e->node.address, e->node.weight});
    auto ring = std::make_shared<const ConsistentHashRing>(members);
    netpoll::MutexLock lock(&ring_mu_);
    ring_ = std::move(ring);
    ring_list_ = &list;
  }
  EndpointPtr Pick(const EndpointList& list, absl::string_view key, const Accept& accept) override {
    std::shared_ptr<const ConsistentHashRing> ring;
    {
      netpoll::MutexLock lock(&ring_mu_);
      if (ring_list_ != &list) return nullptr;  // raced with Update: caller retries
      ring = ring_;
    }
    int index = ring->Find(key, [&](int i) { return accept(*list[i]); });
    return index < 0 ? nullptr : list[index];
  }
  netpoll::Mutex ring_mu_;
  std::shared_ptr<const ConsistentHashRing> ring_ ABSL_GUARDED_BY(ring_mu_);
  const EndpointList* ring_list_ ABSL_GUARDED_BY(ring_mu_) = nullptr;
};

}  // namespace

absl::StatusOr<std::unique_ptr<LoadBalancer>> LoadBalancer::Create(absl::string_view policy) {
  if (policy == "rr") return std::unique_ptr<LoadBalancer>(new RoundRobin());
  if (policy == "wrr") return std::unique_ptr<LoadBalancer>(new WeightedRoundRobin());
  if (policy == "random") return std::unique_ptr<LoadBalancer>(new Random());
  if (policy == "la") return std::unique_ptr<LoadBalancer>(new LeastOutstanding());
  if (policy == "c_hash") return std::unique_ptr<LoadBalancer>(new ConsistentHash());
  return absl::InvalidArgumentError(
      absl::StrCat("unknown load balancer '", policy, "' (rr, wrr, random, la, c_hash)"));
}

}  // namespace nprpc
