// Cost of recording one call's metrics (MethodMetrics::OnStart + OnEnd) at
// 1 and 2 threads, against the same counters behind one shared std::mutex and
// as plain shared std::atomic counters, and the cost of a repeat
// MetricsRegistry::Method() lookup.
//
//   flock /tmp/bench.lock bazel run --config=opt //bench:metrics_bench
#include <array>
#include <atomic>
#include <cstdint>
#include <map>
#include <mutex>
#include <string>

#include "absl/time/time.h"
#include "benchmark/benchmark.h"
#include "rpc/internal/latency_histogram.h"
#include "rpc/metrics.h"

namespace nprpc {
namespace {

constexpr size_t kRequestBytes = 64;
constexpr size_t kResponseBytes = 128;

// 1..2 us, so that calls spread over a few buckets.
absl::Duration LatencyOf(int64_t i) { return absl::Nanoseconds(1000 + (i & 1023)); }

void BM_MethodMetrics_Sharded(benchmark::State& state) {
  MethodMetrics* m =
      MetricsRegistry::Default().Method(MetricsSide::kServer, "bench.Echo", "Sharded");
  int64_t i = 0;
  for (auto _ : state) {
    m->OnStart();
    m->OnEnd(0, LatencyOf(++i), kRequestBytes, kResponseBytes);
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_MethodMetrics_Sharded)->Threads(1)->Threads(2);

// The same counters, all behind one mutex shared by every call.
struct MutexMetrics {
  std::mutex mu;
  int64_t requests = 0, in_flight = 0, request_bytes = 0, response_bytes = 0, sum_ns = 0;
  std::map<int32_t, int64_t> errors;
  std::array<int64_t, LatencyHistogram::kBuckets> buckets{};

  void OnStart() {
    std::lock_guard<std::mutex> lock(mu);
    ++requests;
    ++in_flight;
  }
  void OnEnd(int32_t code, absl::Duration latency, size_t req, size_t resp) {
    int64_t ns = absl::ToInt64Nanoseconds(latency);
    std::lock_guard<std::mutex> lock(mu);
    --in_flight;
    if (code != 0) ++errors[code];
    ++buckets[LatencyHistogram::BucketIndex(ns)];
    sum_ns += ns;
    request_bytes += static_cast<int64_t>(req);
    response_bytes += static_cast<int64_t>(resp);
  }
};

void BM_MethodMetrics_OneMutex(benchmark::State& state) {
  static MutexMetrics* const m = new MutexMetrics;
  int64_t i = 0;
  for (auto _ : state) {
    m->OnStart();
    m->OnEnd(0, LatencyOf(++i), kRequestBytes, kResponseBytes);
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_MethodMetrics_OneMutex)->Threads(1)->Threads(2);

// The same counters as plain atomics shared by every thread (no shards).
struct SharedAtomicMetrics {
  std::atomic<int64_t> requests{0}, in_flight{0}, request_bytes{0}, response_bytes{0}, sum_ns{0};
  std::array<std::atomic<int64_t>, LatencyHistogram::kBuckets> buckets{};

  void OnStart() {
    requests.fetch_add(1, std::memory_order_relaxed);
    in_flight.fetch_add(1, std::memory_order_relaxed);
  }
  void OnEnd(int32_t code, absl::Duration latency, size_t req, size_t resp) {
    int64_t ns = absl::ToInt64Nanoseconds(latency);
    in_flight.fetch_sub(1, std::memory_order_relaxed);
    buckets[LatencyHistogram::BucketIndex(ns)].fetch_add(1, std::memory_order_relaxed);
    sum_ns.fetch_add(ns, std::memory_order_relaxed);
    request_bytes.fetch_add(static_cast<int64_t>(req), std::memory_order_relaxed);
    response_bytes.fetch_add(static_cast<int64_t>(resp), std::memory_order_relaxed);
  }
};

void BM_MethodMetrics_SharedAtomics(benchmark::State& state) {
  static SharedAtomicMetrics* const m = new SharedAtomicMetrics;
  int64_t i = 0;
  for (auto _ : state) {
    m->OnStart();
    m->OnEnd(0, LatencyOf(++i), kRequestBytes, kResponseBytes);
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_MethodMetrics_SharedAtomics)->Threads(1)->Threads(2);

// A failed call: one more add, on the error code's slot.
void BM_MethodMetrics_ShardedError(benchmark::State& state) {
  MethodMetrics* m =
      MetricsRegistry::Default().Method(MetricsSide::kServer, "bench.Echo", "Errors");
  int64_t i = 0;
  for (auto _ : state) {
    m->OnStart();
    m->OnEnd(1008, LatencyOf(++i), kRequestBytes, 0);
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_MethodMetrics_ShardedError)->Threads(1)->Threads(2);

void BM_RegistryMethodRepeatLookup(benchmark::State& state) {
  MetricsRegistry& registry = MetricsRegistry::Default();
  for (int i = 0; i < 50; ++i) {  // a registry with a few methods
    registry.Method(MetricsSide::kServer, "bench.Many", std::to_string(i));
  }
  for (auto _ : state) {
    benchmark::DoNotOptimize(
        registry.Method(MetricsSide::kServer, "bench.EchoService", "EchoMethod"));
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_RegistryMethodRepeatLookup)->Threads(1)->Threads(2);

}  // namespace
}  // namespace nprpc
