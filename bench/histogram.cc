#include "bench/histogram.h"

#include <algorithm>
#include <cmath>
#include <limits>

namespace bench {

int LatencyHistogram::BucketIndex(int64_t value) {
  if (value < 2 * kSubBuckets) return value < 0 ? 0 : static_cast<int>(value);
  const int msb = 63 - __builtin_clzll(static_cast<uint64_t>(value));  // >= kSubBucketBits + 1
  const int shift = msb - kSubBucketBits;
  const int mantissa = static_cast<int>(value >> shift);  // in [kSubBuckets, 2 * kSubBuckets)
  return (shift + 1) * kSubBuckets + (mantissa - kSubBuckets);
}

int64_t LatencyHistogram::BucketLowest(int index) {
  if (index < 2 * kSubBuckets) return index;
  const int shift = index / kSubBuckets - 1;
  const int64_t mantissa = index % kSubBuckets + kSubBuckets;
  return mantissa << shift;
}

int64_t LatencyHistogram::BucketHighest(int index) {
  if (index < 2 * kSubBuckets) return index;
  if (index == kNumBuckets - 1) return std::numeric_limits<int64_t>::max();
  return BucketLowest(index + 1) - 1;
}

void LatencyHistogram::Record(int64_t value) {
  if (value < 0) value = 0;
  ++buckets_[BucketIndex(value)];
  if (count_ == 0 || value < min_) min_ = value;
  if (count_ == 0 || value > max_) max_ = value;
  ++count_;
  sum_ += value;
}

void LatencyHistogram::Merge(const LatencyHistogram& other) {
  if (other.count_ == 0) return;
  for (int i = 0; i < kNumBuckets; ++i) buckets_[i] += other.buckets_[i];
  min_ = count_ == 0 ? other.min_ : std::min(min_, other.min_);
  max_ = count_ == 0 ? other.max_ : std::max(max_, other.max_);
  count_ += other.count_;
  sum_ += other.sum_;
}

void LatencyHistogram::Reset() { *this = LatencyHistogram(); }

double LatencyHistogram::Mean() const {
  return count_ == 0 ? 0.0 : static_cast<double>(sum_ / count_);
}

int64_t LatencyHistogram::Percentile(double percent) const {
  if (count_ == 0) return 0;
  percent = std::clamp(percent, 0.0, 100.0);
  if (percent >= 100.0) return max_;
  int64_t rank = static_cast<int64_t>(std::ceil(percent / 100.0 * static_cast<double>(count_)));
  rank = std::clamp<int64_t>(rank, 1, count_);
  int64_t seen = 0;
  for (int i = 0; i < kNumBuckets; ++i) {
    seen += static_cast<int64_t>(buckets_[i]);
    if (seen >= rank) return std::clamp(BucketHighest(i), min_, max_);
  }
  return max_;
}

}  // namespace bench
