#include "rpc/internal/metrics_sampler.h"

#include <algorithm>
#include <chrono>
#include <utility>

namespace nprpc {
namespace {

absl::Time MonotonicNow() {
  return absl::FromUnixNanos(std::chrono::duration_cast<std::chrono::nanoseconds>(
                                 std::chrono::steady_clock::now().time_since_epoch())
                                 .count());
}

}  // namespace

MetricsSampler& MetricsSampler::Default() {
  static MetricsSampler* const sampler = new MetricsSampler(Options{});
  return *sampler;
}

MetricsSampler::MetricsSampler(Options options)
    : clock_(options.clock ? std::move(options.clock) : std::function<absl::Time()>(MonotonicNow)),
      period_(options.period),
      start_thread_(options.start_thread) {}

MetricsSampler::~MetricsSampler() {
  std::thread thread;
  {
    netpoll::MutexLock lock(&thread_mu_);
    stopping_ = true;
    stop_cv_.SignalAll();
    thread = std::move(thread_);
  }
  if (thread.joinable()) thread.join();
}

void MetricsSampler::Register(SampledMetric* metric) {
  {
    netpoll::MutexLock lock(&tick_mu_);
    metrics_.push_back(metric);
  }
  if (!start_thread_) return;
  netpoll::MutexLock lock(&thread_mu_);
  if (!thread_.joinable() && !stopping_) thread_ = std::thread([this] { ThreadMain(); });
}

void MetricsSampler::Unregister(SampledMetric* metric) {
  netpoll::MutexLock lock(&tick_mu_);
  metrics_.erase(std::remove(metrics_.begin(), metrics_.end(), metric), metrics_.end());
}

void MetricsSampler::Tick() {
  netpoll::MutexLock lock(&tick_mu_);
  absl::Time now = Now();
  for (SampledMetric* metric : metrics_) metric->TakeSample(now);
}

void MetricsSampler::ThreadMain() {
  while (true) {
    {
      netpoll::MutexLock lock(&thread_mu_);
      absl::Time deadline = absl::Now() + period_;
      while (!stopping_ && !stop_cv_.WaitWithDeadline(&thread_mu_, deadline)) {
      }
      if (stopping_) return;
    }
    Tick();
  }
}

}  // namespace nprpc
