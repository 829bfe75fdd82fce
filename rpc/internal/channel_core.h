// ChannelCore: the state a channel's calls share: endpoints (from the naming
// service), the load balancer over them, health probes, the retry budget and
// the calls in flight. The Channel facade owns it through a shared_ptr; call
// controllers hold it too, and timers and naming watchers hold weak_ptrs.
//
//   auto core = ChannelCore::Create(options, std::move(lb), std::move(protocol),
//                                   std::move(clock));
//   core->Watch(naming);                  // endpoints arrive
//   EndpointPtr e = core->Select(key, tried);
//   ...
//   core->Shutdown();                     // cancels calls, stops transports
//
// Endpoints: a naming update keeps endpoints whose address and weight are
// unchanged, makes a transport (ClientProtocol::NewTransport) for new ones,
// and drains removed ones: their in-flight attempts finish, then their
// transport shuts down. A connection failure takes an endpoint out of load
// balancing until a probe (ClientProtocol::Probe) succeeds, after
// health_check_interval, doubling up to max_health_check_interval, and tells
// the naming service (NamingService::OnEndpointFailure: DNS re-resolves).
//
// With outlier detection on, every attempt's outcome is recorded
// (ReportOutcome) and the endpoints are judged every outlier.interval on the
// core's clock (rpc/outlier_detection.h).
//
// A call that finds no endpoint at all (the naming service has not answered
// yet, or an update emptied the list) waits for one (AwaitEndpoints) up to
// naming_wait, never past its deadline.
//
// Thread safety: every method is safe from any thread, except Shutdown(),
// which blocks and must not run on one of the transports' loop threads.
#ifndef RPC_INTERNAL_CHANNEL_CORE_H_
#define RPC_INTERNAL_CHANNEL_CORE_H_

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "netpoll/mutex.h"
#include "rpc/internal/client_protocol.h"
#include "rpc/internal/clock.h"
#include "rpc/internal/gate.h"
#include "rpc/internal/load_balancer.h"
#include "rpc/internal/outlier_detector.h"
#include "rpc/naming_service.h"
#include "rpc/outlier_detection.h"
#include "rpc/retry_policy.h"

namespace nprpc {

// The channel options the core and the call controllers use.
struct ChannelCoreOptions {
  RetryOptions retry;
  absl::Duration backup_request_delay = absl::InfiniteDuration();
  absl::Duration health_check_interval = absl::Milliseconds(100);
  absl::Duration max_health_check_interval = absl::Seconds(5);
  absl::Duration naming_wait = absl::Seconds(1);
  OutlierDetectionOptions outlier;
};

// A call waiting for the endpoint set to become non-empty (CallController).
class EndpointWaiter {
 public:
  virtual ~EndpointWaiter() = default;
  // The set has endpoints now. Runs on the thread that updated it, without
  // the core's lock held.
  virtual void OnEndpointsAvailable() = 0;
};

// A call the core can cancel at shutdown (CallController).
class InFlightCall {
 public:
  virtual ~InFlightCall() = default;
  // Completes the call with `status` unless it already completed. Any thread.
  virtual void Cancel(absl::Status status) = 0;
};

class ChannelCore : public std::enable_shared_from_this<ChannelCore> {
 public:
  // The protocol the channel speaks (ChannelOptions::protocol).
  ClientProtocol& protocol() const { return *protocol_; }
  // Owns `protocol` and `clock`.
  static std::shared_ptr<ChannelCore> Create(const ChannelCoreOptions& options,
                                             std::unique_ptr<LoadBalancer> lb,
                                             std::unique_ptr<ClientProtocol> protocol,
                                             std::unique_ptr<Clock> clock);
  ~ChannelCore();
  ChannelCore(const ChannelCore&) = delete;
  ChannelCore& operator=(const ChannelCore&) = delete;

  // Takes endpoints from `naming` from now on (shared: it may outlive us).
  void Watch(std::shared_ptr<NamingService> naming);
  // Replaces the endpoint set (the naming watcher calls it).
  void OnNodes(const std::vector<ServerNode>& nodes);

  // The endpoint for one attempt or stream (null when there is none),
  // acquired (Endpoint::TryAcquire): the caller Release()s it when the
  // attempt ends, and until then a naming update that removes it leaves its
  // transport up. `tried` are the call's endpoints so far, avoided while
  // others are available.
  EndpointPtr Select(absl::string_view hash_key, const std::vector<const Endpoint*>& tried);
  // A connection-level failure: takes the endpoint out until a probe succeeds.
  void ReportConnectionFailure(const EndpointPtr& endpoint);
  // An attempt on `endpoint` ended by itself (not abandoned by its call) or
  // by the call's deadline; `answered`: the server sent the status.
  void ReportOutcome(Endpoint& endpoint, const absl::Status& status, bool answered,
                     absl::Duration latency);
  // Zeros when outlier detection is off.
  OutlierStats outlier_stats() const;

  // Tells `waiter` once when the endpoint set is next non-empty (kWaiting);
  // registers nothing when the set is non-empty now (kReady) or the core is
  // shut down (kClosed).
  enum class AwaitResult { kWaiting, kReady, kClosed };
  AwaitResult AwaitEndpoints(std::weak_ptr<EndpointWaiter> waiter);

  // Registers a call; false after Shutdown().
  bool Register(std::shared_ptr<InFlightCall> call);
  void Unregister(const std::shared_ptr<InFlightCall>& call);

  // Completes every call in flight with CANCELLED, shuts every transport
  // down, waits until no call is registered, then shuts the protocol down.
  // Later calls fail with CANCELLED. Blocks: not on a transport's loop thread.
  void Shutdown();

  const ChannelCoreOptions& options() const { return options_; }
  Clock& clock() { return *clock_; }
  RetryBudget& budget() { return budget_; }
  void CountAttempt() { attempts_.fetch_add(1, std::memory_order_relaxed); }

  // Calls started and not yet completed.
  size_t in_flight() const;
  // Attempts (first tries, retries, backups) sent so far.
  int64_t attempts() const { return attempts_.load(std::memory_order_relaxed); }

 private:
  ChannelCore(const ChannelCoreOptions& options, std::unique_ptr<LoadBalancer> lb,
              std::unique_ptr<ClientProtocol> protocol, std::unique_ptr<Clock> clock);
  // Shuts down removed endpoints whose attempts have all finished; checks
  // again later while some still have attempts.
  void ReapDrained();
  void ScheduleProbe(const EndpointPtr& endpoint, absl::Duration delay);
  // Judges the endpoints every outlier.interval, until shutdown.
  void ScheduleOutlierEvaluation();
  bool IsMember(const EndpointPtr& endpoint) const;

  // Constant after construction.
  const ChannelCoreOptions options_;
  const std::unique_ptr<LoadBalancer> lb_;
  // NewTransport() only under mu_ before shutdown; Probe() from any thread;
  // Shutdown() once, at the end of Shutdown().
  const std::unique_ptr<ClientProtocol> protocol_;
  const std::unique_ptr<Clock> clock_;
  const std::unique_ptr<OutlierDetector> outlier_;  // null when off

  RetryBudget budget_;
  std::atomic<int64_t> attempts_{0};

  // Calls in flight; closed by Shutdown(). Entered and closed under mu_, so
  // the set below always holds every call that entered.
  Gate calls_gate_;
  mutable netpoll::Mutex mu_;
  // Set by Watch(), dropped by Shutdown() on its caller's thread: a naming
  // service may own a thread (etcd) that runs our watcher, and must not be
  // destroyed on it, which a watcher holding the last reference to this core
  // would do if the core kept the service until its own destruction.
  std::shared_ptr<NamingService> naming_ ABSL_GUARDED_BY(mu_);
  bool reap_scheduled_ ABSL_GUARDED_BY(mu_) = false;
  absl::flat_hash_map<std::string, EndpointPtr> endpoints_ ABSL_GUARDED_BY(mu_);
  std::vector<EndpointPtr> draining_ ABSL_GUARDED_BY(mu_);
  absl::flat_hash_set<std::shared_ptr<InFlightCall>> calls_ ABSL_GUARDED_BY(mu_);
  // Calls waiting for a non-empty endpoint set; expired ones are pruned as
  // the list grows, so calls that gave up do not pile up.
  std::vector<std::weak_ptr<EndpointWaiter>> waiters_ ABSL_GUARDED_BY(mu_);
  size_t waiters_prune_at_ ABSL_GUARDED_BY(mu_) = 16;
};

}  // namespace nprpc

#endif  // RPC_INTERNAL_CHANNEL_CORE_H_
