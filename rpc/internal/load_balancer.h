// LoadBalancer: picks the endpoint for each attempt.
//
// Policies (ChannelOptions::load_balancer):
//   "rr"    round-robin
//   "wrr"   weighted round-robin (smooth, as nginx does: no bursts)
//   "random"
//   "la"    least outstanding: power of two random choices on in-flight calls,
//           ties broken by the lower latency (EWMA)
//   "c_hash" consistent hashing on CallOptions::hash_key (ketama ring with
//           virtual nodes; see consistent_hash.h)
//
// Endpoints that are unhealthy (failed to connect, waiting for their probe),
// ejected (OutlierDetector: their calls fail or are slow) and those in
// `exclude` (already tried by this call) are skipped; an endpoint on
// probation after an ejection gets about one pick in kProbationShare. When
// every endpoint is excluded, excluded ones are allowed again so a retry
// still goes somewhere; then unhealthy and ejected ones (an attempt that
// fails fast beats no attempt). Select() returns null only when the list is
// empty.
//
// Each Update() publishes one immutable snapshot (the list and, for c_hash,
// its ring), so a Select() racing an Update() sees the old or the new set,
// never a mix of both.
//
// Thread safety: Select() and Update() are safe from any thread.
#ifndef RPC_INTERNAL_LOAD_BALANCER_H_
#define RPC_INTERNAL_LOAD_BALANCER_H_

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "rpc/internal/transport.h"
#include "rpc/naming_service.h"

namespace nprpc {

// One server of a channel, with the state load balancing reads.
struct Endpoint {
  Endpoint(ServerNode n, std::shared_ptr<Transport> t)
      : node(std::move(n)), transport(std::move(t)) {}

  bool healthy() const { return healthy_flag.load(std::memory_order_relaxed); }
  bool ejected() const { return ejected_flag.load(std::memory_order_relaxed); }
  bool on_probation() const { return probation_flag.load(std::memory_order_relaxed); }
  // Folds a call's latency into the moving average (weight 1/8).
  void RecordLatency(absl::Duration latency);

  // An attempt or stream takes the endpoint (outstanding + 1) unless it is
  // retired; Release() gives it back. Retire() (the channel, for an endpoint
  // the naming service removed) makes every later TryAcquire() fail and says
  // whether nothing is outstanding, i.e. whether the transport may shut down.
  // An attempt that selected the endpoint just before its removal thus either
  // holds it, and the transport stays up until the attempt ends, or does not
  // get it and selects again. Both sides are sequentially consistent, so at
  // least one of them sees the other; Release() orders the attempt's use of
  // the transport before a Retire() that finds it idle.
  bool TryAcquire();
  void Release() { outstanding.fetch_sub(1, std::memory_order_release); }
  bool Retire();

  const ServerNode node;
  const std::shared_ptr<Transport> transport;
  std::atomic<int64_t> outstanding{0};  // attempts in flight here
  std::atomic<bool> retired{false};     // Retire() was called
  std::atomic<int64_t> latency_us{0};   // EWMA of successful attempts
  std::atomic<bool> healthy_flag{true};
  // Set by the channel's OutlierDetector (rpc/internal/outlier_detector.h).
  std::atomic<bool> ejected_flag{false};
  std::atomic<bool> probation_flag{false};
  // The outlier detector's current window: attempts ended here, how many of
  // them failed, and the summed latency of the successful ones.
  std::atomic<int64_t> window_attempts{0};
  std::atomic<int64_t> window_failures{0};
  std::atomic<int64_t> window_latency_us{0};
};

// An endpoint on probation gets about 1 of this many of the picks it would
// get otherwise.
inline constexpr int kProbationShare = 8;

using EndpointPtr = std::shared_ptr<Endpoint>;

class LoadBalancer {
 public:
  // "rr", "wrr", "random", "la" or "c_hash".
  static absl::StatusOr<std::unique_ptr<LoadBalancer>> Create(absl::string_view policy);

  virtual ~LoadBalancer() = default;
  // Replaces the endpoint set (the channel calls it on naming changes).
  virtual void Update(std::vector<EndpointPtr> endpoints) = 0;
  // Null when there is no endpoint at all.
  virtual EndpointPtr Select(absl::string_view hash_key,
                             const std::vector<const Endpoint*>& exclude) = 0;
};

}  // namespace nprpc

#endif  // RPC_INTERNAL_LOAD_BALANCER_H_
