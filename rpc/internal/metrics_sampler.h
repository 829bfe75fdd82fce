// MetricsSampler: the once-a-second tick behind every sliding window.
//
// Windowed metrics (LatencyHistogram) register here; each tick hands every
// registered metric the sampler's time so it can keep a snapshot of its
// cumulative counts. The process-wide sampler (Default()) starts its thread
// at the first Register() and ticks every second for the life of the process;
// with nothing registered it only wakes once a second. Tests build their own
// sampler without a thread, with a fake clock, and call Tick() by hand.
//
//   MetricsSampler::Options options;
//   options.start_thread = false;
//   options.clock = [&] { return fake_now; };
//   MetricsSampler sampler(options);
//   LatencyHistogram histogram(&sampler);   // registers itself
//   fake_now += absl::Seconds(1);
//   sampler.Tick();
//
// Thread safety: every method is safe from any thread. TakeSample() of every
// registered metric runs on the ticking thread, one tick at a time, never
// after Unregister() returned.
#ifndef RPC_INTERNAL_METRICS_SAMPLER_H_
#define RPC_INTERNAL_METRICS_SAMPLER_H_

#include <functional>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/time/time.h"
#include "netpoll/mutex.h"

namespace nprpc {

// A metric that keeps per-tick snapshots.
class SampledMetric {
 public:
  virtual ~SampledMetric() = default;
  // Ticking thread: take a snapshot dated `now` (the sampler's clock).
  virtual void TakeSample(absl::Time now) = 0;
};

class MetricsSampler {
 public:
  struct Options {
    // The time of ticks and windows. Default: a monotonic clock (only
    // differences matter).
    std::function<absl::Time()> clock;
    absl::Duration period = absl::Seconds(1);
    // false: no thread; the owner calls Tick().
    bool start_thread = true;
  };

  // The process-wide sampler: monotonic clock, 1 s period, its thread started
  // at the first Register(). Never destroyed.
  static MetricsSampler& Default();

  explicit MetricsSampler(Options options);
  MetricsSampler(const MetricsSampler&) = delete;
  MetricsSampler& operator=(const MetricsSampler&) = delete;
  // Stops and joins the thread. Every metric must have unregistered.
  ~MetricsSampler();

  // `metric` is not owned and must unregister before it is destroyed. Starts
  // the thread at the first call when Options::start_thread.
  void Register(SampledMetric* metric);
  // After it returns, metric->TakeSample() is not running and never runs again.
  // Must not be called from TakeSample().
  void Unregister(SampledMetric* metric);

  // Samples every registered metric at Now(). The thread calls it every
  // period; tests call it by hand.
  void Tick();

  absl::Time Now() const { return clock_(); }
  absl::Duration period() const { return period_; }

 private:
  void ThreadMain();

  // Constant after construction.
  const std::function<absl::Time()> clock_;
  const absl::Duration period_;
  const bool start_thread_;

  // Held for a whole tick, so that Unregister() waits for a running one.
  netpoll::Mutex tick_mu_;
  std::vector<SampledMetric*> metrics_ ABSL_GUARDED_BY(tick_mu_);

  netpoll::Mutex thread_mu_;
  netpoll::CondVar stop_cv_;
  bool stopping_ ABSL_GUARDED_BY(thread_mu_) = false;
  std::thread thread_ ABSL_GUARDED_BY(thread_mu_);
};

}  // namespace nprpc

#endif  // RPC_INTERNAL_METRICS_SAMPLER_H_
