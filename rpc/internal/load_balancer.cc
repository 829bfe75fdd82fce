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

bool Endpoint::TryAcquire() {
  outstanding.fetch_add(1, std::memory_order_seq_cst);
  if (!retired.load(std::memory_order_seq_cst)) return true;
  Release();
  return false;
}

bool Endpoint::Retire() {
  retired.store(true, std::memory_order_seq_cst);
  return outstanding.load(std::memory_order_seq_cst) == 0;
}

namespace {

using EndpointList = std::vector<EndpointPtr>;

uint64_t RandomIndex(uint64_t n) {
  thread_local std::mt19937_64 rng{std::random_device{}()};
  return std::uniform_int_distribution<uint64_t>(0, n - 1)(rng);
}

// What one Update() published: the list and, for c_hash, its ring. Select()
// works on one snapshot from start to end.
struct View {
  EndpointList list;
  std::unique_ptr<const ConsistentHashRing> ring;  // c_hash only
};

// Holds the endpoint snapshot and the acceptance rule shared by all policies.
class ListBalancer : public LoadBalancer {
 public:
  void Update(std::vector<EndpointPtr> endpoints) override {
    auto view = std::make_shared<View>();
    view->ring = MakeRing(endpoints);
    view->list = std::move(endpoints);
    netpoll::MutexLock lock(&mu_);
    view_ = std::move(view);
    OnUpdateLocked(view_->list);
  }

  EndpointPtr Select(absl::string_view key, const std::vector<const Endpoint*>& exclude) override {
    std::shared_ptr<const View> view = Snapshot();
    if (view->list.empty()) return nullptr;
    // Strictest first: available (healthy, not ejected) and untried; then
    // available; then anything (an attempt on an unhealthy endpoint fails
    // fast, which beats no attempt). The probation draw is made once per
    // endpoint per Select, so both strict passes agree.
    std::vector<const Endpoint*> skipped_trial;
    for (const EndpointPtr& e : view->list) {
      if (e->on_probation() && RandomIndex(kProbationShare) != 0) skipped_trial.push_back(e.get());
    }
    for (int pass = 0; pass < 3; ++pass) {
      auto accept = [&](const Endpoint& e) {
        if (pass < 2) {
          if (!e.healthy() || e.ejected()) return false;
          if (std::find(skipped_trial.begin(), skipped_trial.end(), &e) != skipped_trial.end()) {
            return false;
          }
        }
        return pass != 0 || std::find(exclude.begin(), exclude.end(), &e) == exclude.end();
      };
      if (EndpointPtr picked = Pick(*view, key, accept)) return picked;
    }
    return nullptr;
  }

 protected:
  using Accept = std::function<bool(const Endpoint&)>;
  virtual EndpointPtr Pick(const View& view, absl::string_view key, const Accept& accept) = 0;
  virtual std::unique_ptr<const ConsistentHashRing> MakeRing(const EndpointList&) {
    return nullptr;
  }
  virtual void OnUpdateLocked(const EndpointList&) {}

  std::shared_ptr<const View> Snapshot() {
    netpoll::MutexLock lock(&mu_);
    return view_;
  }

  netpoll::Mutex mu_;
  std::shared_ptr<const View> view_ ABSL_GUARDED_BY(mu_) = std::make_shared<const View>();
};

class RoundRobin : public ListBalancer {
  EndpointPtr Pick(const View& view, absl::string_view, const Accept& accept) override {
    const EndpointList& list = view.list;
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
  EndpointPtr Pick(const View& view, absl::string_view, const Accept& accept) override {
    const EndpointList& list = view.list;
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
  EndpointPtr Pick(const View& view, absl::string_view, const Accept& accept) override {
    const EndpointList& list = view.list;
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
  EndpointPtr Pick(const View& view, absl::string_view, const Accept& accept) override {
    std::vector<const EndpointPtr*> ok;
    ok.reserve(view.list.size());
    for (const EndpointPtr& e : view.list) {
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
  std::unique_ptr<const ConsistentHashRing> MakeRing(const EndpointList& list) override {
    std::vector<ConsistentHashRing::Member> members;
    members.reserve(list.size());
    for (const EndpointPtr& e : list) members.push_back({e->node.address, e->node.weight});
    return std::make_unique<const ConsistentHashRing>(members);
  }
  EndpointPtr Pick(const View& view, absl::string_view key, const Accept& accept) override {
    int index = view.ring->Find(key, [&](int i) { return accept(*view.list[i]); });
    return index < 0 ? nullptr : view.list[index];
  }
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
