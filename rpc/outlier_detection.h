// Outlier ejection (circuit breaking) for a channel's endpoints: the options
// (ChannelOptions::outlier) and the counters a channel reports
// (Channel::outlier_stats()).
//
//   nprpc::ChannelOptions options;
//   options.outlier.enabled = true;              // judge endpoints by their calls
//   options.outlier.error_rate_threshold = 0.5;  // half of the calls failing...
//   options.outlier.latency_factor = 5;          // ...or 5x slower than the peers
//
// Every `interval` the channel judges each endpoint on the attempts that
// ended there in that interval (at least min_requests of them): an endpoint
// whose error rate reaches error_rate_threshold while the median of its
// peers' rates stays below half of it, or (latency_factor > 0) whose mean
// latency of successful attempts is at least latency_factor times the
// peers' median and at least latency_floor, is ejected: out of load
// balancing for base_ejection_time, doubling with each ejection in a row up
// to max_ejection_time. When its time is up it is on probation: it gets
// about 1/8 of its share of calls; one good interval restores it, a bad one
// ejects it again for longer. Never more than max_ejection_share of the
// endpoints are ejected at once (rounded down: one of two or three at 0.5).
// Errors are failures of the endpoint, not of the request: our connection
// failing, timeouts, and the server answering EINTERNAL, ELIMIT or a bad
// response. References: Envoy's outlier detection, brpc's circuit breaker.
#ifndef RPC_OUTLIER_DETECTION_H_
#define RPC_OUTLIER_DETECTION_H_

#include <cstdint>

#include "absl/time/time.h"

namespace nprpc {

struct OutlierDetectionOptions {
  bool enabled = false;
  // The window an endpoint is judged over (and how often it is judged).
  absl::Duration interval = absl::Seconds(1);
  // Fewer attempts than this in a window: not judged (nor a peer).
  int64_t min_requests = 10;
  double error_rate_threshold = 0.5;
  // 0: latency alone never ejects.
  double latency_factor = 0;
  absl::Duration latency_floor = absl::Milliseconds(10);
  double max_ejection_share = 0.5;
  absl::Duration base_ejection_time = absl::Seconds(1);
  absl::Duration max_ejection_time = absl::Seconds(30);
};

struct OutlierStats {
  int64_t ejections = 0;     // since the channel was made
  int64_t ejected_now = 0;   // endpoints out of load balancing now
  int64_t on_probation = 0;  // endpoints back on a little traffic
};

}  // namespace nprpc

#endif  // RPC_OUTLIER_DETECTION_H_
