// LatencyHistogram: a log-bucketed (HdrHistogram-style) histogram of
// non-negative integer samples, typically latencies in nanoseconds.
//
// Memory is fixed (kNumBuckets counters, about 29 KiB) whatever the number of
// samples. Values below 128 are stored exactly; larger values fall into one of
// 64 linear sub-buckets per power of two, so a reported percentile is within
// 1/64 (1.6%) above the true sample value.
//
//   LatencyHistogram h;
//   h.Record(absl::ToInt64Nanoseconds(latency));
//   int64_t p99_ns = h.Percentile(99.0);
//
// Thread safety: none. Give each thread its own histogram and Merge() them
// after the threads have stopped.
#ifndef BENCH_HISTOGRAM_H_
#define BENCH_HISTOGRAM_H_

#include <array>
#include <cstdint>

namespace bench {

class LatencyHistogram {
 public:
  static constexpr int kSubBucketBits = 6;
  static constexpr int kSubBuckets = 1 << kSubBucketBits;  // per power of two
  // Exact buckets [0, 2 * kSubBuckets) plus kSubBuckets per higher power of two
  // up to 2^63.
  static constexpr int kNumBuckets = (64 - kSubBucketBits) * kSubBuckets;

  LatencyHistogram() = default;

  // Adds one sample. Negative values are recorded as 0.
  void Record(int64_t value);

  // Adds every sample of `other` to this histogram.
  void Merge(const LatencyHistogram& other);

  // Removes every sample.
  void Reset();

  int64_t Count() const { return count_; }
  // Exact smallest and largest recorded values; 0 when empty.
  int64_t Min() const { return count_ == 0 ? 0 : min_; }
  int64_t Max() const { return count_ == 0 ? 0 : max_; }
  // Exact arithmetic mean; 0 when empty.
  double Mean() const;

  // The value at percentile `percent` (clamped to [0, 100]): the highest value
  // equivalent to the bucket holding the sample of rank ceil(percent/100 *
  // Count()), clamped to [Min(), Max()]. Percentile(100) == Max(). 0 when empty.
  int64_t Percentile(double percent) const;

  // Bucket arithmetic, exposed for tests.
  static int BucketIndex(int64_t value);
  static int64_t BucketLowest(int index);
  static int64_t BucketHighest(int index);

 private:
  std::array<uint64_t, kNumBuckets> buckets_{};
  int64_t count_ = 0;
  int64_t min_ = 0;
  int64_t max_ = 0;
  // Sum in long double: 10^9 samples of 10^9 ns would overflow int64.
  long double sum_ = 0;
};

}  // namespace bench

#endif  // BENCH_HISTOGRAM_H_
