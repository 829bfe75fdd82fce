// Metrics: per-method request counters, errors by code, in-flight calls,
// latency percentiles over a sliding window and byte totals, on the server
// and on the client side, and their Prometheus text exposition.
//
//   MethodMetrics* m = MetricsRegistry::Default().Method(MetricsSide::kServer,
//                                                        "example.Echo", "Echo");
//   m->OnStart();
//   ...
//   m->OnEnd(/*error_code=*/0, latency, request_bytes, response_bytes);
//   MethodMetrics::Snapshot s = m->Read();        // s.p99, s.qps, ...
//   std::string text = MetricsRegistry::Default().ExportPrometheus();
//
// Cost: OnStart() is one relaxed atomic add, OnEnd() four (five on an error),
// each on a cache line of the calling thread's shard (rpc/internal/
// sharded_counter.h); no lock, nothing shared by all threads in the common
// case. Latency goes into a log-linear histogram (rpc/internal/
// latency_histogram.h): reported percentiles are within 3.125% of the exact
// sample at that rank. The window is 10 s: a once-a-second sampler thread
// (rpc/internal/metrics_sampler.h) keeps per-second snapshots, and a window
// spans the last 10 to 11 s, including calls that ended since the last tick.
//
// Exposition (ExportPrometheus), each family labelled
// method="package.Service/Method", with S = server or client:
//   nprpc_S_requests_total           counter  calls started
//   nprpc_S_errors_total{code}       counter  calls that ended with a brpc error
//                                             number (code="other" past 31 codes)
//   nprpc_S_in_flight                gauge    calls started and not ended
//   nprpc_S_latency_seconds          summary  quantile 0.5/0.9/0.99/0.999 over the
//                                             window; _sum and _count since start
//                                             (so rate(_sum)/rate(_count) works)
//   nprpc_S_request_bytes_total      counter  request payload bytes of ended calls
//   nprpc_S_response_bytes_total     counter  response payload bytes of ended calls
// then every collector's families, then the process_* families.
#ifndef RPC_METRICS_H_
#define RPC_METRICS_H_

#include <array>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "netpoll/mutex.h"
#include "rpc/internal/latency_histogram.h"
#include "rpc/internal/metrics_sampler.h"
#include "rpc/internal/prometheus_writer.h"
#include "rpc/internal/sharded_counter.h"

namespace nprpc {

enum class MetricsSide { kServer, kClient };

// One method's counters on one side.
//
// Thread safety: every method is safe from any thread. Hot path: OnStart and
// OnEnd take no lock.
class MethodMetrics {
 public:
  // Errors beyond the first kErrorSlots - 1 distinct codes are counted
  // under this code.
  static constexpr int32_t kOtherErrors = -1;
  static constexpr int kErrorSlots = 32;

  // `sampler` (not owned) ticks the latency window and must outlive this.
  explicit MethodMetrics(MetricsSampler* sampler,
                         absl::Duration window = LatencyHistogram::kDefaultWindow);
  MethodMetrics(const MethodMetrics&) = delete;
  MethodMetrics& operator=(const MethodMetrics&) = delete;
  ~MethodMetrics() = default;

  // requests + 1, in_flight + 1.
  void OnStart() { requests_.Add(1); }
  // in_flight - 1; error_code: 0 for success, else the brpc error number of
  // the answer (rpc/errors.h, e.g. 1008); errors counted per code. Latency and
  // sizes recorded. Call once per OnStart().
  void OnEnd(int32_t error_code, absl::Duration latency, size_t request_bytes,
             size_t response_bytes);

  struct Snapshot {
    int64_t requests = 0, in_flight = 0, errors = 0;
    std::map<int32_t, int64_t> errors_by_code;  // since start
    double qps = 0;                             // over the window
    int64_t window_count = 0;
    absl::Duration p50, p90, p99, p999, mean;       // over the window (zero when empty)
    int64_t request_bytes = 0, response_bytes = 0;  // totals since start
    // Additions.
    absl::Duration max;          // over the window: upper edge of the top bucket
    absl::Duration window;       // the span the window covers
    int64_t completed = 0;       // calls ended since start
    absl::Duration latency_sum;  // of the calls ended since start
  };
  Snapshot Read() const;

 private:
  int ErrorSlot(int32_t code);

  ShardedCounter requests_;
  ShardedCounter request_bytes_;
  ShardedCounter response_bytes_;
  LatencyHistogram latency_;  // its count is the number of ended calls
  // Slot -> error code, 0 while free; claimed once by compare-and-swap.
  std::array<std::atomic<int32_t>, kErrorSlots> error_codes_{};
  struct alignas(kCacheLineSize) ErrorShard {
    std::array<std::atomic<int64_t>, kErrorSlots> counts{};
  };
  std::unique_ptr<ErrorShard[]> error_shards_;  // ShardCount() of them
};

// Every method's metrics and the collectors of servers and channels.
//
// Thread safety: every method is safe from any thread.
class MetricsRegistry {
 public:
  // Process-wide, on MetricsSampler::Default(); never destroyed.
  static MetricsRegistry& Default();

  // A registry of its own (tests): `sampler` (not owned) must outlive it.
  explicit MetricsRegistry(MetricsSampler* sampler);
  MetricsRegistry(const MetricsRegistry&) = delete;
  MetricsRegistry& operator=(const MetricsRegistry&) = delete;
  ~MetricsRegistry();

  // The metrics of `service` ("package.Service") / `method` on `side`, made at
  // the first call. Stable pointer for the life of the registry. A repeat
  // lookup hits a thread-local cache: no lock, no allocation.
  MethodMetrics* Method(MetricsSide side, absl::string_view service, absl::string_view method);

  // Families written by servers and channels (connections, bytes, loop
  // stats ...). A collector runs inside ExportPrometheus(), one at a time; it
  // must not call AddCollector, RemoveCollector or ExportPrometheus, and
  // RemoveCollector must not be called under a lock that a collector takes.
  using Collector = std::function<void(PrometheusWriter&)>;
  uint64_t AddCollector(Collector collector);
  // After it returns the collector is not running and never runs again.
  void RemoveCollector(uint64_t id);

  // Text exposition (format 0.0.4) of every method, every collector, and the
  // process families (see the top of this file).
  std::string ExportPrometheus() const;
  // Writes what ExportPrometheus() returns into `writer`.
  void WriteTo(PrometheusWriter& writer) const;

  // Every method of one side with its snapshot, sorted by
  // "package.Service/Method".
  std::vector<std::pair<std::string, MethodMetrics::Snapshot>> Methods(MetricsSide side) const;

 private:
  // Constant after construction.
  const uint64_t id_;              // unique in the process: the thread-local cache's key
  MetricsSampler* const sampler_;  // not owned

  mutable netpoll::Mutex mu_;
  // Per side: "service/method" -> metrics.
  std::array<std::map<std::string, std::unique_ptr<MethodMetrics>, std::less<>>, 2> methods_
      ABSL_GUARDED_BY(mu_);

  // Held while collectors run, so that RemoveCollector waits for them.
  mutable netpoll::Mutex collectors_mu_;
  std::map<uint64_t, Collector> collectors_ ABSL_GUARDED_BY(collectors_mu_);
  uint64_t next_collector_id_ ABSL_GUARDED_BY(collectors_mu_) = 1;
};

}  // namespace nprpc

#endif  // RPC_METRICS_H_
