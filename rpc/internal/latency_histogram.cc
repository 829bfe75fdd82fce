#include "rpc/internal/latency_histogram.h"

#include <cmath>
#include <utility>

namespace nprpc {
namespace {

// More samples than this means the clock stalled or the period is tiny: keep
// memory bounded anyway (the window then covers fewer ticks).
constexpr size_t kMaxSamples = 4096;

}  // namespace

LatencyHistogram::LatencyHistogram(MetricsSampler* sampler, absl::Duration window)
    : sampler_(sampler), window_(window), shards_(new Shard[ShardCount()]) {
  {
    netpoll::MutexLock lock(&mu_);
    samples_.push_back(Sample{sampler_->Now(), std::make_shared<const Counts>()});
  }
  sampler_->Register(this);
}

LatencyHistogram::~LatencyHistogram() { sampler_->Unregister(this); }

int64_t LatencyHistogram::BucketLower(int index) {
  if (index < kSubBuckets) return index;
  int group = (index - static_cast<int>(kSubBuckets)) / static_cast<int>(kSubBuckets);
  int64_t sub = (index - kSubBuckets) % kSubBuckets;
  return (kSubBuckets + sub) << group;
}

int64_t LatencyHistogram::BucketWidth(int index) {
  if (index < kSubBuckets) return 1;
  int group = (index - static_cast<int>(kSubBuckets)) / static_cast<int>(kSubBuckets);
  return int64_t{1} << group;
}

double LatencyHistogram::BucketValueNanos(int index) {
  if (index < kSubBuckets) return index;
  return static_cast<double>(BucketLower(index)) + static_cast<double>(BucketWidth(index)) / 2;
}

double LatencyHistogram::PercentileNanos(const Counts& counts, double q) {
  if (counts.count <= 0) return 0;
  auto rank = static_cast<int64_t>(std::ceil(q * static_cast<double>(counts.count)));
  if (rank < 1) rank = 1;
  int64_t seen = 0;
  for (int i = 0; i < kBuckets; ++i) {
    seen += counts.buckets[i];
    if (seen >= rank) return BucketValueNanos(i);
  }
  // Buckets and count were read at slightly different times: the last
  // non-empty bucket.
  for (int i = kBuckets - 1; i >= 0; --i) {
    if (counts.buckets[i] > 0) return BucketValueNanos(i);
  }
  return 0;
}

LatencyHistogram::Counts LatencyHistogram::ReadCumulative() const {
  Counts counts;
  for (size_t s = 0; s < ShardCount(); ++s) {
    const Shard& shard = shards_[s];
    counts.sum_ns += shard.sum_ns.load(std::memory_order_relaxed);
    for (int i = 0; i < kBuckets; ++i) {
      int64_t n = shard.buckets[i].load(std::memory_order_relaxed);
      counts.buckets[i] += n;
      counts.count += n;
    }
  }
  return counts;
}

void LatencyHistogram::TakeSample(absl::Time now) {
  auto live = std::make_shared<Counts>(ReadCumulative());
  netpoll::MutexLock lock(&mu_);
  std::shared_ptr<const Counts> counts = std::move(live);
  const Counts& last = *samples_.back().counts;
  if (last.count == counts->count && last.sum_ns == counts->sum_ns) {
    counts = samples_.back().counts;  // idle: share the previous snapshot
  }
  samples_.push_back(Sample{now, std::move(counts)});
  // Drop what no window will start from again: keep the newest sample at
  // least window_ old at the front.
  while (samples_.size() >= 2 && samples_[1].time <= now - window_) samples_.pop_front();
  while (samples_.size() > kMaxSamples) samples_.pop_front();
}

LatencyHistogram::Stats LatencyHistogram::Read() const {
  Counts live = ReadCumulative();
  absl::Time now = sampler_->Now();
  std::shared_ptr<const Counts> base;
  absl::Time base_time;
  {
    netpoll::MutexLock lock(&mu_);
    size_t i = 0;
    while (i + 1 < samples_.size() && samples_[i + 1].time <= now - window_) ++i;
    base = samples_[i].counts;
    base_time = samples_[i].time;
  }
  Stats stats;
  stats.total_count = live.count;
  stats.total_sum = absl::Nanoseconds(live.sum_ns);

  Counts window;
  for (int i = 0; i < kBuckets; ++i) {
    window.buckets[i] = live.buckets[i] - base->buckets[i];
    window.count += window.buckets[i];
  }
  window.sum_ns = live.sum_ns - base->sum_ns;
  stats.count = window.count;
  stats.window = now - base_time;
  if (stats.window > absl::ZeroDuration()) {
    stats.qps = static_cast<double>(window.count) / absl::ToDoubleSeconds(stats.window);
  }
  if (window.count == 0) return stats;
  auto to_duration = [](double ns) { return absl::Nanoseconds(std::llround(ns)); };
  stats.p50 = to_duration(PercentileNanos(window, 0.5));
  stats.p90 = to_duration(PercentileNanos(window, 0.9));
  stats.p99 = to_duration(PercentileNanos(window, 0.99));
  stats.p999 = to_duration(PercentileNanos(window, 0.999));
  stats.mean = absl::Nanoseconds(window.sum_ns / window.count);
  for (int i = kBuckets - 1; i >= 0; --i) {
    if (window.buckets[i] > 0) {
      stats.max = absl::Nanoseconds(BucketLower(i) + BucketWidth(i));
      break;
    }
  }
  return stats;
}

}  // namespace nprpc
