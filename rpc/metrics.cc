#include "rpc/metrics.h"

#include <algorithm>
#include <tuple>

#include "absl/container/flat_hash_map.h"
#include "absl/hash/hash.h"
#include "absl/strings/str_cat.h"
#include "rpc/internal/process_metrics.h"

namespace nprpc {
namespace {

int SideIndex(MetricsSide side) { return side == MetricsSide::kServer ? 0 : 1; }

// The thread-local cache of MetricsRegistry::Method(): (registry id, side,
// service, method) -> metrics. Looked up by string_views (heterogeneous
// lookup), so a hit allocates nothing. Registry ids are never reused, so an
// entry of a destroyed registry is never hit again.
struct CacheKey {
  uint64_t registry;
  int side;
  std::string service;
  std::string method;
};
struct CacheKeyView {
  uint64_t registry;
  int side;
  absl::string_view service;
  absl::string_view method;
};
CacheKeyView View(const CacheKey& key) {
  return CacheKeyView{key.registry, key.side, key.service, key.method};
}
struct CacheHash {
  using is_transparent = void;
  size_t operator()(const CacheKeyView& key) const {
    return absl::HashOf(key.registry, key.side, key.service, key.method);
  }
  size_t operator()(const CacheKey& key) const { return (*this)(View(key)); }
};
struct CacheEq {
  using is_transparent = void;
  static bool Equal(const CacheKeyView& a, const CacheKeyView& b) {
    return a.registry == b.registry && a.side == b.side && a.service == b.service &&
           a.method == b.method;
  }
  bool operator()(const CacheKey& a, const CacheKey& b) const { return Equal(View(a), View(b)); }
  bool operator()(const CacheKey& a, const CacheKeyView& b) const { return Equal(View(a), b); }
  bool operator()(const CacheKeyView& a, const CacheKey& b) const { return Equal(a, View(b)); }
  bool operator()(const CacheKeyView& a, const CacheKeyView& b) const { return Equal(a, b); }
};
using MethodCache = absl::flat_hash_map<CacheKey, MethodMetrics*, CacheHash, CacheEq>;

MethodCache& ThreadMethodCache() {
  static thread_local MethodCache cache;
  return cache;
}

uint64_t NextRegistryId() {
  static std::atomic<uint64_t> next{1};
  return next.fetch_add(1, std::memory_order_relaxed);
}

double Seconds(absl::Duration d) { return absl::ToDoubleSeconds(d); }

void WriteMethods(const std::vector<std::pair<std::string, MethodMetrics::Snapshot>>& methods,
                  absl::string_view side, PrometheusWriter& w) {
  using W = PrometheusWriter;
  std::string prefix = absl::StrCat("nprpc_", side, "_");
  std::string requests = absl::StrCat(prefix, "requests_total");
  std::string errors = absl::StrCat(prefix, "errors_total");
  std::string in_flight = absl::StrCat(prefix, "in_flight");
  std::string latency = absl::StrCat(prefix, "latency_seconds");
  std::string request_bytes = absl::StrCat(prefix, "request_bytes_total");
  std::string response_bytes = absl::StrCat(prefix, "response_bytes_total");
  for (const auto& [name, s] : methods) {
    W::Labels labels = {{"method", name}};
    w.Family(requests, W::kCounter, absl::StrCat("Calls started (", side, " side)."));
    w.Sample(labels, static_cast<double>(s.requests));
    if (!s.errors_by_code.empty()) {
      w.Family(
          errors, W::kCounter,
          absl::StrCat("Calls that ended with an error, by brpc error number (", side, " side)."));
      for (const auto& [code, count] : s.errors_by_code) {
        std::string code_text =
            code == MethodMetrics::kOtherErrors ? std::string("other") : absl::StrCat(code);
        w.Sample({{"method", name}, {"code", code_text}}, static_cast<double>(count));
      }
    }
    w.Family(in_flight, W::kGauge, absl::StrCat("Calls started and not ended (", side, " side)."));
    w.Sample(labels, static_cast<double>(s.in_flight));
    w.Family(latency, W::kSummary,
             absl::StrCat("Call latency (", side,
                          " side): quantiles over the last 10 s, sum and count since start."));
    w.Summary(labels,
              {{0.5, Seconds(s.p50)},
               {0.9, Seconds(s.p90)},
               {0.99, Seconds(s.p99)},
               {0.999, Seconds(s.p999)}},
              Seconds(s.latency_sum), s.completed);
    w.Family(request_bytes, W::kCounter,
             absl::StrCat("Request payload bytes of ended calls (", side, " side)."));
    w.Sample(labels, static_cast<double>(s.request_bytes));
    w.Family(response_bytes, W::kCounter,
             absl::StrCat("Response payload bytes of ended calls (", side, " side)."));
    w.Sample(labels, static_cast<double>(s.response_bytes));
  }
}

}  // namespace

// --- MethodMetrics ---

MethodMetrics::MethodMetrics(MetricsSampler* sampler, absl::Duration window)
    : latency_(sampler, window), error_shards_(new ErrorShard[ShardCount()]) {}

int MethodMetrics::ErrorSlot(int32_t code) {
  if (code == 0 || code == kOtherErrors) return kErrorSlots - 1;
  for (int i = 0; i < kErrorSlots - 1; ++i) {
    int32_t slot_code = error_codes_[i].load(std::memory_order_acquire);
    if (slot_code == code) return i;
    if (slot_code == 0) {
      if (error_codes_[i].compare_exchange_strong(slot_code, code, std::memory_order_acq_rel)) {
        return i;
      }
      if (slot_code == code) return i;  // another thread claimed it for the same code
    }
  }
  return kErrorSlots - 1;
}

void MethodMetrics::OnEnd(int32_t error_code, absl::Duration latency, size_t request_bytes,
                          size_t response_bytes) {
  latency_.Record(latency);
  request_bytes_.Add(static_cast<int64_t>(request_bytes));
  response_bytes_.Add(static_cast<int64_t>(response_bytes));
  if (error_code != 0) {
    error_shards_[ThisThreadShard()].counts[ErrorSlot(error_code)].fetch_add(
        1, std::memory_order_relaxed);
  }
}

MethodMetrics::Snapshot MethodMetrics::Read() const {
  Snapshot s;
  // Ended calls before started ones: both only grow, so in_flight does not
  // come out negative from a racing call (clamped anyway).
  LatencyHistogram::Stats latency = latency_.Read();
  s.requests = requests_.Value();
  s.completed = latency.total_count;
  s.in_flight = std::max<int64_t>(0, s.requests - s.completed);
  s.latency_sum = latency.total_sum;
  s.window_count = latency.count;
  s.window = latency.window;
  s.qps = latency.qps;
  s.p50 = latency.p50;
  s.p90 = latency.p90;
  s.p99 = latency.p99;
  s.p999 = latency.p999;
  s.mean = latency.mean;
  s.max = latency.max;
  s.request_bytes = request_bytes_.Value();
  s.response_bytes = response_bytes_.Value();
  for (int i = 0; i < kErrorSlots; ++i) {
    int64_t count = 0;
    for (size_t shard = 0; shard < ShardCount(); ++shard) {
      count += error_shards_[shard].counts[i].load(std::memory_order_relaxed);
    }
    if (count == 0) continue;
    int32_t code =
        i == kErrorSlots - 1 ? kOtherErrors : error_codes_[i].load(std::memory_order_acquire);
    s.errors_by_code[code] += count;
    s.errors += count;
  }
  return s;
}

// --- MetricsRegistry ---

MetricsRegistry& MetricsRegistry::Default() {
  static MetricsRegistry* const registry = new MetricsRegistry(&MetricsSampler::Default());
  return *registry;
}

MetricsRegistry::MetricsRegistry(MetricsSampler* sampler)
    : id_(NextRegistryId()), sampler_(sampler) {}

MetricsRegistry::~MetricsRegistry() = default;

MethodMetrics* MetricsRegistry::Method(MetricsSide side, absl::string_view service,
                                       absl::string_view method) {
  int side_index = SideIndex(side);
  MethodCache& cache = ThreadMethodCache();
  auto hit = cache.find(CacheKeyView{id_, side_index, service, method});
  if (hit != cache.end()) return hit->second;

  std::string name = absl::StrCat(service, "/", method);
  MethodMetrics* metrics = nullptr;
  {
    netpoll::MutexLock lock(&mu_);
    auto& methods = methods_[side_index];
    auto it = methods.find(name);
    if (it == methods.end()) {
      it = methods.emplace(name, std::make_unique<MethodMetrics>(sampler_)).first;
    }
    metrics = it->second.get();
  }
  cache.emplace(CacheKey{id_, side_index, std::string(service), std::string(method)}, metrics);
  return metrics;
}

uint64_t MetricsRegistry::AddCollector(Collector collector) {
  netpoll::MutexLock lock(&collectors_mu_);
  uint64_t id = next_collector_id_++;
  collectors_.emplace(id, std::move(collector));
  return id;
}

void MetricsRegistry::RemoveCollector(uint64_t id) {
  Collector doomed;  // destroyed outside the lock
  netpoll::MutexLock lock(&collectors_mu_);
  auto it = collectors_.find(id);
  if (it == collectors_.end()) return;
  doomed = std::move(it->second);
  collectors_.erase(it);
}

std::vector<std::pair<std::string, MethodMetrics::Snapshot>> MetricsRegistry::Methods(
    MetricsSide side) const {
  std::vector<std::pair<std::string, const MethodMetrics*>> methods;
  {
    netpoll::MutexLock lock(&mu_);
    for (const auto& [name, metrics] : methods_[SideIndex(side)]) {
      methods.emplace_back(name, metrics.get());
    }
  }
  std::vector<std::pair<std::string, MethodMetrics::Snapshot>> result;
  result.reserve(methods.size());
  for (auto& [name, metrics] : methods) result.emplace_back(std::move(name), metrics->Read());
  return result;
}

void MetricsRegistry::WriteTo(PrometheusWriter& writer) const {
  WriteMethods(Methods(MetricsSide::kServer), "server", writer);
  WriteMethods(Methods(MetricsSide::kClient), "client", writer);
  {
    netpoll::MutexLock lock(&collectors_mu_);
    for (const auto& [id, collector] : collectors_) collector(writer);
  }
  WriteProcessMetrics(writer);
}

std::string MetricsRegistry::ExportPrometheus() const {
  PrometheusWriter writer;
  WriteTo(writer);
  return writer.ToString();
}

}  // namespace nprpc
