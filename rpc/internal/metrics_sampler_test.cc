#include "rpc/internal/metrics_sampler.h"

#include <vector>

#include "absl/time/time.h"
#include "gtest/gtest.h"
#include "netpoll/mutex.h"

namespace nprpc {
namespace {

class RecordingMetric : public SampledMetric {
 public:
  void TakeSample(absl::Time now) override {
    netpoll::MutexLock lock(&mu_);
    times_.push_back(now);
    if (notify_) {
      notify_->Notify();
      notify_ = nullptr;
    }
  }
  std::vector<absl::Time> times() {
    netpoll::MutexLock lock(&mu_);
    return times_;
  }
  void NotifyAtNextSample(netpoll::Notification* n) {
    netpoll::MutexLock lock(&mu_);
    notify_ = n;
  }

 private:
  netpoll::Mutex mu_;
  std::vector<absl::Time> times_ ABSL_GUARDED_BY(mu_);
  netpoll::Notification* notify_ ABSL_GUARDED_BY(mu_) = nullptr;
};

MetricsSampler::Options ManualOptions(absl::Time* now) {
  MetricsSampler::Options options;
  options.start_thread = false;
  options.clock = [now] { return *now; };
  return options;
}

TEST(MetricsSamplerTest, TickSamplesEveryRegisteredMetricAtTheClocksTime) {
  absl::Time now = absl::FromUnixSeconds(100);
  MetricsSampler sampler(ManualOptions(&now));
  RecordingMetric a, b;
  sampler.Register(&a);
  sampler.Register(&b);
  sampler.Tick();
  now += absl::Seconds(1);
  sampler.Tick();
  EXPECT_EQ(a.times(),
            (std::vector<absl::Time>{absl::FromUnixSeconds(100), absl::FromUnixSeconds(101)}));
  EXPECT_EQ(b.times().size(), 2u);
  EXPECT_EQ(sampler.Now(), absl::FromUnixSeconds(101));
}

TEST(MetricsSamplerTest, UnregisteredMetricIsNotSampledAgain) {
  absl::Time now = absl::FromUnixSeconds(100);
  MetricsSampler sampler(ManualOptions(&now));
  RecordingMetric a;
  sampler.Register(&a);
  sampler.Tick();
  sampler.Unregister(&a);
  sampler.Tick();
  EXPECT_EQ(a.times().size(), 1u);
}

TEST(MetricsSamplerTest, ThreadTicksEveryPeriodAndStopsOnDestruction) {
  MetricsSampler::Options options;
  options.period = absl::Milliseconds(1);
  RecordingMetric a;
  {
    MetricsSampler sampler(options);
    sampler.Register(&a);  // starts the thread
    netpoll::Notification sampled;
    a.NotifyAtNextSample(&sampled);
    sampled.WaitForNotification();
    sampler.Unregister(&a);
  }
  EXPECT_GE(a.times().size(), 1u);
}

TEST(MetricsSamplerTest, DefaultSamplerIsOneInstance) {
  EXPECT_EQ(&MetricsSampler::Default(), &MetricsSampler::Default());
  EXPECT_EQ(MetricsSampler::Default().period(), absl::Seconds(1));
}

}  // namespace
}  // namespace nprpc
