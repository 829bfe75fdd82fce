// OutlierDetector: judges a channel's endpoints on their calls' outcomes and
// ejects the sick ones (rpc/outlier_detection.h has the rules and options).
//
//   OutlierDetector detector(options);
//   OutlierDetector::Record(*endpoint, failed, latency);  // per attempt
//   detector.Evaluate(endpoints, clock.Now());            // every interval
//
// Record() counts into the endpoint's window counters (lock-free atomics on
// the Endpoint); Evaluate() takes the window, sets Endpoint::ejected_flag
// and probation_flag (the load balancer reads them) and keeps each
// endpoint's ejection history. An ejection ends at the first Evaluate() at
// or after its end time.
//
// Thread safety: Record() from any thread; Evaluate() and stats() from any
// thread (serialized by the detector's lock).
#ifndef RPC_INTERNAL_OUTLIER_DETECTOR_H_
#define RPC_INTERNAL_OUTLIER_DETECTOR_H_

#include <cstdint>
#include <memory>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/time/time.h"
#include "netpoll/mutex.h"
#include "rpc/internal/load_balancer.h"
#include "rpc/outlier_detection.h"

namespace nprpc {

// Whether an attempt's outcome says its endpoint is sick (not the request):
// our connection failed (`answered` false), the attempt timed out, or the
// server answered EINTERNAL, ELIMIT, or something we could not parse.
bool IsEndpointFailure(const absl::Status& status, bool answered);

class OutlierDetector {
 public:
  // The first detector adds the process-wide families to /metrics:
  // nprpc_client_outlier_ejections_total (counter) and
  // nprpc_client_outlier_ejected (gauge), summed over all channels.
  explicit OutlierDetector(const OutlierDetectionOptions& options);
  ~OutlierDetector();
  OutlierDetector(const OutlierDetector&) = delete;
  OutlierDetector& operator=(const OutlierDetector&) = delete;

  // An attempt on `endpoint` ended. Lock-free.
  static void Record(Endpoint& endpoint, bool failed, absl::Duration latency);

  // Judges the window that just ended for `endpoints` (the channel's whole
  // current set) and resets it; forgets endpoints no longer listed.
  void Evaluate(const std::vector<EndpointPtr>& endpoints, absl::Time now);

  OutlierStats stats() const;
  const OutlierDetectionOptions& options() const { return options_; }

 private:
  struct History {
    std::weak_ptr<Endpoint> endpoint;
    int ejections_in_a_row = 0;
    absl::Time ejected_until = absl::InfinitePast();
  };
  void EjectLocked(Endpoint& endpoint, History& history, absl::Time now, const char* why)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const OutlierDetectionOptions options_;

  mutable netpoll::Mutex mu_;
  absl::flat_hash_map<const Endpoint*, History> history_ ABSL_GUARDED_BY(mu_);
  int64_t ejections_ ABSL_GUARDED_BY(mu_) = 0;
  int64_t ejected_now_ ABSL_GUARDED_BY(mu_) = 0;
  int64_t on_probation_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace nprpc

#endif  // RPC_INTERNAL_OUTLIER_DETECTOR_H_
