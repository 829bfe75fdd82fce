#include "rpc/internal/channel_core.h"

#include <algorithm>
#include <utility>

#include "netpoll/logging.h"

namespace nprpc {

std::shared_ptr<ChannelCore> ChannelCore::Create(const ChannelCoreOptions& options,
                                                 std::unique_ptr<LoadBalancer> lb,
                                                 std::unique_ptr<ClientProtocol> protocol,
                                                 std::unique_ptr<Clock> clock) {
  return std::shared_ptr<ChannelCore>(
      new ChannelCore(options, std::move(lb), std::move(protocol), std::move(clock)));
}

ChannelCore::ChannelCore(const ChannelCoreOptions& options, std::unique_ptr<LoadBalancer> lb,
                         std::unique_ptr<ClientProtocol> protocol, std::unique_ptr<Clock> clock)
    : options_(options),
      lb_(std::move(lb)),
      protocol_(std::move(protocol)),
      clock_(std::move(clock)),
      outlier_(options.outlier.enabled ? std::make_unique<OutlierDetector>(options.outlier)
                                       : nullptr),
      budget_(options.retry) {}

ChannelCore::~ChannelCore() = default;

void ChannelCore::Watch(std::shared_ptr<NamingService> naming) {
  // Called once, before the core is shared: naming_ keeps `service` alive
  // (only Shutdown() drops it).
  NamingService* service = naming.get();
  {
    netpoll::MutexLock lock(&mu_);
    naming_ = std::move(naming);
  }
  std::weak_ptr<ChannelCore> weak = weak_from_this();
  service->Watch([weak](const std::vector<ServerNode>& nodes) {
    if (auto self = weak.lock()) self->OnNodes(nodes);
  });
  if (outlier_) ScheduleOutlierEvaluation();
}

void ChannelCore::ScheduleOutlierEvaluation() {
  std::weak_ptr<ChannelCore> weak = weak_from_this();
  clock_->RunAfter(options_.outlier.interval, [weak] {
    auto self = weak.lock();
    if (!self) return;
    std::vector<EndpointPtr> endpoints;
    {
      netpoll::MutexLock lock(&self->mu_);
      if (self->calls_gate_.closed()) return;
      for (auto& [address, endpoint] : self->endpoints_) endpoints.push_back(endpoint);
    }
    self->outlier_->Evaluate(endpoints, self->clock_->Now());
    self->ScheduleOutlierEvaluation();
  });
}

void ChannelCore::ReportOutcome(Endpoint& endpoint, const absl::Status& status, bool answered,
                                absl::Duration latency) {
  if (outlier_) OutlierDetector::Record(endpoint, IsEndpointFailure(status, answered), latency);
}

OutlierStats ChannelCore::outlier_stats() const {
  return outlier_ ? outlier_->stats() : OutlierStats();
}

void ChannelCore::OnNodes(const std::vector<ServerNode>& nodes) {
  std::vector<EndpointPtr> list;
  std::vector<std::weak_ptr<EndpointWaiter>> waiters;
  {
    netpoll::MutexLock lock(&mu_);
    if (calls_gate_.closed()) return;
    absl::flat_hash_map<std::string, EndpointPtr> next;
    for (const ServerNode& node : nodes) {
      auto it = endpoints_.find(node.address);
      if (it != endpoints_.end() && it->second->node.weight == node.weight) {
        next[node.address] = it->second;
        endpoints_.erase(it);
      } else if (!next.contains(node.address)) {
        next[node.address] =
            std::make_shared<Endpoint>(node, protocol_->NewTransport(node.address));
      }
    }
    // What is left was removed: it drains (in-flight attempts finish) and is
    // shut down once idle.
    for (auto& [address, endpoint] : endpoints_) draining_.push_back(endpoint);
    endpoints_ = std::move(next);
    for (auto& [address, endpoint] : endpoints_) list.push_back(endpoint);
    // The balancer is updated under mu_, so a waiter registered after this
    // block finds the new list (AwaitEndpoints checks endpoints_).
    std::sort(list.begin(), list.end(), [](const EndpointPtr& a, const EndpointPtr& b) {
      return a->node.address < b->node.address;
    });
    lb_->Update(list);
    if (!list.empty()) waiters.swap(waiters_);
  }
  for (auto& weak : waiters) {
    if (auto waiter = weak.lock()) waiter->OnEndpointsAvailable();
  }
  ReapDrained();
}

ChannelCore::AwaitResult ChannelCore::AwaitEndpoints(std::weak_ptr<EndpointWaiter> waiter) {
  netpoll::MutexLock lock(&mu_);
  if (calls_gate_.closed()) return AwaitResult::kClosed;
  if (!endpoints_.empty()) return AwaitResult::kReady;
  if (waiters_.size() >= waiters_prune_at_) {
    waiters_.erase(
        std::remove_if(waiters_.begin(), waiters_.end(), [](const auto& w) { return w.expired(); }),
        waiters_.end());
    waiters_prune_at_ = std::max<size_t>(16, waiters_.size() * 2);
  }
  waiters_.push_back(std::move(waiter));
  return AwaitResult::kWaiting;
}

EndpointPtr ChannelCore::Select(absl::string_view hash_key,
                                const std::vector<const Endpoint*>& tried) {
  EndpointPtr endpoint = lb_->Select(hash_key, tried);
  if (endpoint == nullptr || endpoint->TryAcquire()) return endpoint;
  // Removed and retired since the balancer handed it out: Retire() follows
  // the balancer's update, which a selection from now on sees.
  std::vector<const Endpoint*> avoid = tried;
  for (int i = 0; i < 3; ++i) {
    avoid.push_back(endpoint.get());
    endpoint = lb_->Select(hash_key, avoid);
    if (endpoint == nullptr || endpoint->TryAcquire()) return endpoint;
  }
  return nullptr;
}

void ChannelCore::ReapDrained() {
  std::vector<EndpointPtr> idle;
  {
    netpoll::MutexLock lock(&mu_);
    auto keep = std::partition(draining_.begin(), draining_.end(),
                               [](const EndpointPtr& e) { return !e->Retire(); });
    idle.assign(keep, draining_.end());
    draining_.erase(keep, draining_.end());
    if (!draining_.empty() && !reap_scheduled_) {
      reap_scheduled_ = true;
      std::weak_ptr<ChannelCore> weak = weak_from_this();
      clock_->RunAfter(absl::Milliseconds(50), [weak] {
        if (auto self = weak.lock()) {
          {
            netpoll::MutexLock lock(&self->mu_);
            self->reap_scheduled_ = false;
          }
          self->ReapDrained();
        }
      });
    }
  }
  for (auto& endpoint : idle) endpoint->transport->Shutdown();
}

void ChannelCore::ReportConnectionFailure(const EndpointPtr& endpoint) {
  if (!endpoint->healthy_flag.exchange(false)) return;  // a probe is already on
  NP_LOG(INFO) << "endpoint " << endpoint->node.address << " unhealthy; probing";
  ScheduleProbe(endpoint, options_.health_check_interval);
  std::shared_ptr<NamingService> naming;
  {
    netpoll::MutexLock lock(&mu_);
    naming = naming_;
  }
  if (naming) naming->OnEndpointFailure(endpoint->node.address);
}

void ChannelCore::ScheduleProbe(const EndpointPtr& endpoint, absl::Duration delay) {
  std::weak_ptr<ChannelCore> weak = weak_from_this();
  std::weak_ptr<Endpoint> weak_endpoint = endpoint;
  clock_->RunAfter(delay, [weak, weak_endpoint, delay] {
    auto self = weak.lock();
    auto endpoint = weak_endpoint.lock();
    if (!self || !endpoint || !self->IsMember(endpoint)) return;
    self->protocol_->Probe(
        endpoint->node.address, [weak, weak_endpoint, delay](const absl::Status& reachable) {
          auto self = weak.lock();
          auto endpoint = weak_endpoint.lock();
          if (!self || !endpoint) return;
          if (reachable.ok()) {
            NP_LOG(INFO) << "endpoint " << endpoint->node.address << " is back";
            endpoint->healthy_flag.store(true);
          } else {
            self->ScheduleProbe(endpoint,
                                std::min(delay * 2, self->options_.max_health_check_interval));
          }
        });
  });
}

bool ChannelCore::IsMember(const EndpointPtr& endpoint) const {
  netpoll::MutexLock lock(&mu_);
  auto it = endpoints_.find(endpoint->node.address);
  return it != endpoints_.end() && it->second == endpoint;
}

bool ChannelCore::Register(std::shared_ptr<InFlightCall> call) {
  netpoll::MutexLock lock(&mu_);
  if (!calls_gate_.TryEnter()) return false;
  calls_.insert(std::move(call));
  return true;
}

void ChannelCore::Unregister(const std::shared_ptr<InFlightCall>& call) {
  {
    netpoll::MutexLock lock(&mu_);
    if (calls_.erase(call) == 0) return;
  }
  calls_gate_.Leave();
}

size_t ChannelCore::in_flight() const {
  netpoll::MutexLock lock(&mu_);
  return calls_.size();
}

void ChannelCore::Shutdown() {
  std::vector<std::shared_ptr<InFlightCall>> calls;
  std::vector<EndpointPtr> endpoints;
  std::shared_ptr<NamingService> naming;  // dropped here, on this thread (see naming_)
  {
    netpoll::MutexLock lock(&mu_);
    naming = std::move(naming_);
    calls_gate_.Close();
    calls.assign(calls_.begin(), calls_.end());
    for (auto& [address, endpoint] : endpoints_) endpoints.push_back(endpoint);
    for (auto& endpoint : draining_) endpoints.push_back(endpoint);
    endpoints_.clear();
    draining_.clear();
    waiters_.clear();
  }
  for (auto& call : calls) call->Cancel(absl::CancelledError("channel destroyed"));
  for (auto& endpoint : endpoints) endpoint->transport->Shutdown();
  calls_gate_.WaitUntilEmpty();
  protocol_->Shutdown();
}

}  // namespace nprpc
