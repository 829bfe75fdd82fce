// HopRecorder: call count, errors and latency percentiles of one downstream
// hop (e.g. gateway -> catalog), for the demo's per-hop summary.
//
// Keeps the latest kMaxSamples latencies (a ring), so memory is bounded
// however long the gateway runs.
//
// Thread safety: every method is safe from any thread.
#ifndef EXAMPLES_MICROSERVICES_HOP_RECORDER_H_
#define EXAMPLES_MICROSERVICES_HOP_RECORDER_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/time/time.h"
#include "netpoll/mutex.h"
#include "proto/shop/gateway.pb.h"

namespace shop {

class HopRecorder {
 public:
  static constexpr size_t kMaxSamples = 100000;

  explicit HopRecorder(std::string hop) : hop_(std::move(hop)) {}

  void Record(absl::Duration latency, bool ok);
  HopStats Snapshot();

 private:
  const std::string hop_;
  netpoll::Mutex mu_;
  int64_t calls_ ABSL_GUARDED_BY(mu_) = 0;
  int64_t errors_ ABSL_GUARDED_BY(mu_) = 0;
  std::vector<int64_t> samples_us_ ABSL_GUARDED_BY(mu_);  // ring of the latest
  size_t next_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace shop

#endif  // EXAMPLES_MICROSERVICES_HOP_RECORDER_H_
