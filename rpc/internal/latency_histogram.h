// LatencyHistogram: a log-linear histogram of durations with sharded
// lock-free recording and a sliding window.
//
// Buckets (nanoseconds): values 0..15 have one bucket each; above, every
// power of two [2^e, 2^(e+1)) is cut into 16 equal sub-buckets, up to 2^37 ns
// (~137 s); larger values land in the last bucket. A bucket [L, L + w) is
// reported at its midpoint L + w/2, and w <= L/16, so a reported percentile
// is within 1/32 (3.125%) of the exact sample at that rank (values >= 137 s
// excepted).
//
// Recording adds 1 to a bucket and the value to a sum, two relaxed atomic adds
// on this thread's shard (see sharded_counter.h); nothing is ever reset.
//
// The window: the histogram registers with a MetricsSampler, which hands it
// its time every tick (1 s); it keeps a snapshot of its cumulative counts per
// tick (shared between ticks when nothing changed) for the last `window`.
// Read() returns live counts minus the newest snapshot at least `window` old
// (or minus zero while the histogram is younger than that), so the window
// spans [window, window + period) once running, and a recording shows at once.
//
//   LatencyHistogram histogram(&MetricsSampler::Default());
//   histogram.Record(absl::Microseconds(250));       // any thread, no lock
//   LatencyHistogram::Stats s = histogram.Read();    // any thread
//   s.p99; s.qps;
//
// Thread safety: Record() and Read() are safe from any thread, concurrently.
#ifndef RPC_INTERNAL_LATENCY_HISTOGRAM_H_
#define RPC_INTERNAL_LATENCY_HISTOGRAM_H_

#include <array>
#include <atomic>
#include <cstdint>
#include <deque>
#include <memory>

#include "absl/base/thread_annotations.h"
#include "absl/time/time.h"
#include "netpoll/mutex.h"
#include "rpc/internal/metrics_sampler.h"
#include "rpc/internal/sharded_counter.h"

namespace nprpc {

class LatencyHistogram final : public SampledMetric {
 public:
  static constexpr int kSubBucketBits = 4;
  static constexpr int64_t kSubBuckets = int64_t{1} << kSubBucketBits;  // 16
  static constexpr int kMaxExponent = 37;  // values >= 2^37 ns go to the last bucket
  static constexpr int kBuckets =
      static_cast<int>(kSubBuckets + (kMaxExponent - kSubBucketBits) * kSubBuckets);  // 544
  // The documented bound on a reported percentile's relative error.
  static constexpr double kMaxRelativeError = 1.0 / (2 * kSubBuckets);

  static constexpr absl::Duration kDefaultWindow = absl::Seconds(10);

  // Cumulative (or windowed) counts.
  struct Counts {
    std::array<int64_t, kBuckets> buckets{};
    int64_t count = 0;
    int64_t sum_ns = 0;
  };

  struct Stats {
    // Over the window.
    int64_t count = 0;
    absl::Duration window;  // the span the window actually covers
    double qps = 0;         // count / window
    absl::Duration p50, p90, p99, p999, mean;
    absl::Duration max;  // upper edge of the highest non-empty bucket
    // Since construction.
    int64_t total_count = 0;
    absl::Duration total_sum;
  };

  // `sampler` is not owned and must outlive the histogram; the histogram
  // registers with it now and unregisters in its destructor.
  explicit LatencyHistogram(MetricsSampler* sampler, absl::Duration window = kDefaultWindow);
  ~LatencyHistogram() override;
  LatencyHistogram(const LatencyHistogram&) = delete;
  LatencyHistogram& operator=(const LatencyHistogram&) = delete;

  void Record(absl::Duration latency) { RecordNanos(absl::ToInt64Nanoseconds(latency)); }
  void RecordNanos(int64_t ns) {
    if (ns < 0) ns = 0;
    Shard& shard = shards_[ThisThreadShard()];
    shard.buckets[BucketIndex(ns)].fetch_add(1, std::memory_order_relaxed);
    shard.sum_ns.fetch_add(ns, std::memory_order_relaxed);
  }

  Stats Read() const;
  // Cumulative counts since construction (sum over the shards).
  Counts ReadCumulative() const;

  // Ticking thread (MetricsSampler).
  void TakeSample(absl::Time now) override;

  // Bucket layout.
  static int BucketIndex(int64_t ns) {
    if (ns < kSubBuckets) return static_cast<int>(ns);
    int e = 63 - __builtin_clzll(static_cast<uint64_t>(ns));
    if (e >= kMaxExponent) return kBuckets - 1;
    int sub = static_cast<int>((ns >> (e - kSubBucketBits)) & (kSubBuckets - 1));
    return static_cast<int>(kSubBuckets) + (e - kSubBucketBits) * static_cast<int>(kSubBuckets) +
           sub;
  }
  static int64_t BucketLower(int index);
  static int64_t BucketWidth(int index);
  // The value a bucket reports: its midpoint (values < 16: the value).
  static double BucketValueNanos(int index);
  // The q-quantile (0 < q <= 1) of `counts`: the reported value of the bucket
  // holding the sample of rank ceil(q * count). 0 when empty.
  static double PercentileNanos(const Counts& counts, double q);

 private:
  struct alignas(kCacheLineSize) Shard {
    std::atomic<int64_t> sum_ns{0};
    std::array<std::atomic<int64_t>, kBuckets> buckets{};
  };
  struct Sample {
    absl::Time time;
    std::shared_ptr<const Counts> counts;
  };

  // Constant after construction.
  MetricsSampler* const sampler_;  // not owned
  const absl::Duration window_;
  std::unique_ptr<Shard[]> shards_;  // ShardCount() of them

  mutable netpoll::Mutex mu_;
  // Oldest first; the front is the newest at least window_ old (or the zero
  // sample of construction).
  std::deque<Sample> samples_ ABSL_GUARDED_BY(mu_);
};

}  // namespace nprpc

#endif  // RPC_INTERNAL_LATENCY_HISTOGRAM_H_
