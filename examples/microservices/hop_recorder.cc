#include "examples/microservices/hop_recorder.h"

#include <algorithm>

namespace shop {

void HopRecorder::Record(absl::Duration latency, bool ok) {
  netpoll::MutexLock lock(&mu_);
  ++calls_;
  if (!ok) {
    ++errors_;
    return;
  }
  int64_t us = absl::ToInt64Microseconds(latency);
  if (samples_us_.size() < kMaxSamples) {
    samples_us_.push_back(us);
  } else {
    samples_us_[next_] = us;
    next_ = (next_ + 1) % kMaxSamples;
  }
}

HopStats HopRecorder::Snapshot() {
  std::vector<int64_t> samples;
  HopStats stats;
  {
    netpoll::MutexLock lock(&mu_);
    samples = samples_us_;
    stats.set_calls(calls_);
    stats.set_errors(errors_);
  }
  stats.set_hop(hop_);
  if (samples.empty()) return stats;
  auto percentile = [&](double q) {
    size_t k = std::min(samples.size() - 1, static_cast<size_t>(q * samples.size()));
    std::nth_element(samples.begin(), samples.begin() + k, samples.end());
    return static_cast<double>(samples[k]);
  };
  stats.set_p50_us(percentile(0.50));
  stats.set_p99_us(percentile(0.99));
  return stats;
}

}  // namespace shop
