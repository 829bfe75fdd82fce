#include "rpc/internal/outlier_detector.h"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <utility>

#include "netpoll/logging.h"
#include "rpc/errors.h"
#include "rpc/metrics.h"

namespace nprpc {
namespace {

double Median(std::vector<double> values) {
  std::sort(values.begin(), values.end());
  const size_t n = values.size();
  return n % 2 == 1 ? values[n / 2] : (values[n / 2 - 1] + values[n / 2]) / 2;
}

// One endpoint's window as Evaluate() sees it.
struct Window {
  Endpoint* endpoint;
  int64_t attempts = 0;
  int64_t failures = 0;
  double error_rate = 0;
  double mean_latency_us = 0;  // of the successful attempts; 0 when none
};

// Process-wide, over every channel: exported in /metrics.
std::atomic<int64_t> g_ejections_total{0};
std::atomic<int64_t> g_ejected_now{0};

void ExportOnce() {
  static const bool registered = [] {
    MetricsRegistry::Default().AddCollector([](PrometheusWriter& writer) {
      writer.Family("nprpc_client_outlier_ejections_total", PrometheusWriter::kCounter,
                    "Endpoints ejected by outlier detection, over all channels.");
      writer.Sample({}, static_cast<double>(g_ejections_total.load(std::memory_order_relaxed)));
      writer.Family("nprpc_client_outlier_ejected", PrometheusWriter::kGauge,
                    "Endpoints out of load balancing for outlier detection now.");
      writer.Sample({}, static_cast<double>(g_ejected_now.load(std::memory_order_relaxed)));
    });
    return true;
  }();
  (void)registered;
}

}  // namespace

OutlierDetector::OutlierDetector(const OutlierDetectionOptions& options) : options_(options) {
  ExportOnce();
}

OutlierDetector::~OutlierDetector() {
  netpoll::MutexLock lock(&mu_);
  g_ejected_now.fetch_sub(ejected_now_, std::memory_order_relaxed);
}

bool IsEndpointFailure(const absl::Status& status, bool answered) {
  if (status.ok()) return false;
  const int32_t code = ErrorCodeOf(status);
  if (!answered) return code == EFAILEDSOCKET || code == ERPCTIMEDOUT || code == EOVERCROWDED;
  return code == EINTERNAL || code == ELIMIT || code == ERESPONSE;
}

void OutlierDetector::Record(Endpoint& endpoint, bool failed, absl::Duration latency) {
  endpoint.window_attempts.fetch_add(1, std::memory_order_relaxed);
  if (failed) {
    endpoint.window_failures.fetch_add(1, std::memory_order_relaxed);
  } else {
    endpoint.window_latency_us.fetch_add(absl::ToInt64Microseconds(latency),
                                         std::memory_order_relaxed);
  }
}

void OutlierDetector::EjectLocked(Endpoint& endpoint, History& history, absl::Time now,
                                  const char* why) {
  ++history.ejections_in_a_row;
  absl::Duration time = options_.base_ejection_time;
  for (int i = 1; i < history.ejections_in_a_row && time < options_.max_ejection_time; ++i) {
    time *= 2;
  }
  time = std::min(time, options_.max_ejection_time);
  history.ejected_until = now + time;
  endpoint.probation_flag.store(false, std::memory_order_relaxed);
  endpoint.ejected_flag.store(true, std::memory_order_relaxed);
  ++ejections_;
  g_ejections_total.fetch_add(1, std::memory_order_relaxed);
  NP_LOG(WARNING) << "endpoint " << endpoint.node.address << " ejected for " << time << " (" << why
                  << ", ejection " << history.ejections_in_a_row << " in a row)";
}

void OutlierDetector::Evaluate(const std::vector<EndpointPtr>& endpoints, absl::Time now) {
  netpoll::MutexLock lock(&mu_);
  absl::flat_hash_map<const Endpoint*, History> kept;
  for (const EndpointPtr& e : endpoints) {
    auto it = history_.find(e.get());
    if (it != history_.end() && it->second.endpoint.lock() == e) {
      kept.emplace(e.get(), std::move(it->second));
    } else {
      kept.emplace(
          e.get(),
          History{.endpoint = e, .ejections_in_a_row = 0, .ejected_until = absl::InfinitePast()});
    }
  }
  history_ = std::move(kept);

  std::vector<Window> windows;
  windows.reserve(endpoints.size());
  for (const EndpointPtr& e : endpoints) {
    Window w{.endpoint = e.get(),
             .attempts = e->window_attempts.exchange(0, std::memory_order_relaxed),
             .failures = e->window_failures.exchange(0, std::memory_order_relaxed),
             .error_rate = 0,
             .mean_latency_us = 0};
    const int64_t latency_us = e->window_latency_us.exchange(0, std::memory_order_relaxed);
    if (w.attempts > 0) w.error_rate = static_cast<double>(w.failures) / w.attempts;
    if (w.attempts > w.failures) {
      w.mean_latency_us = static_cast<double>(latency_us) / (w.attempts - w.failures);
    }
    windows.push_back(w);
  }

  // Ejections that are over: back on probation. Their window (attempts that
  // were already under way when they were ejected) is not judged.
  std::vector<const Endpoint*> released;
  for (const Window& w : windows) {
    History& h = history_[w.endpoint];
    if (w.endpoint->ejected() && now >= h.ejected_until) {
      released.push_back(w.endpoint);
      w.endpoint->ejected_flag.store(false, std::memory_order_relaxed);
      w.endpoint->probation_flag.store(true, std::memory_order_relaxed);
      NP_LOG(INFO) << "endpoint " << w.endpoint->node.address << " back on probation";
    }
  }

  int64_t ejected = 0;
  for (const Window& w : windows) ejected += w.endpoint->ejected();
  const auto max_ejected =
      static_cast<int64_t>(std::floor(options_.max_ejection_share * windows.size()));

  // Peers: endpoints in full service with enough attempts to be judged.
  auto judged = [&](const Window& w) {
    return !w.endpoint->ejected() && !w.endpoint->on_probation() &&
           w.attempts >= options_.min_requests;
  };
  auto is_bad = [&](const Window& w, const char** why) {
    std::vector<double> rates;
    std::vector<double> latencies;
    for (const Window& peer : windows) {
      if (&peer == &w || !judged(peer)) continue;
      rates.push_back(peer.error_rate);
      if (peer.mean_latency_us > 0) latencies.push_back(peer.mean_latency_us);
    }
    if (rates.empty()) return false;  // nobody to compare with
    const double threshold = options_.error_rate_threshold;
    if (w.error_rate >= threshold && Median(rates) < threshold / 2) {
      *why = "error rate far above its peers'";
      return true;
    }
    if (options_.latency_factor > 0 && w.mean_latency_us > 0 && !latencies.empty() &&
        w.mean_latency_us >= absl::ToDoubleMicroseconds(options_.latency_floor) &&
        w.mean_latency_us >= options_.latency_factor * Median(latencies)) {
      *why = "latency far above its peers'";
      return true;
    }
    return false;
  };

  // Probation verdicts: one bad window ejects again (longer), one good
  // window restores full service.
  for (Window& w : windows) {
    if (!w.endpoint->on_probation() || w.attempts == 0 ||
        std::find(released.begin(), released.end(), w.endpoint) != released.end()) {
      continue;
    }
    const char* why = "";
    const bool failing = w.error_rate >= options_.error_rate_threshold || is_bad(w, &why);
    if (failing && ejected < max_ejected) {
      EjectLocked(*w.endpoint, history_[w.endpoint], now, "failed again on probation");
      ++ejected;
    } else if (!failing) {
      w.endpoint->probation_flag.store(false, std::memory_order_relaxed);
      NP_LOG(INFO) << "endpoint " << w.endpoint->node.address << " restored";
    }
  }

  // Judge the endpoints in full service, worst error rate first.
  std::vector<Window*> order;
  for (Window& w : windows) {
    if (judged(w)) order.push_back(&w);
  }
  std::sort(order.begin(), order.end(),
            [](const Window* a, const Window* b) { return a->error_rate > b->error_rate; });
  for (Window* w : order) {
    History& h = history_[w->endpoint];
    const char* why = "";
    if (is_bad(*w, &why)) {
      if (ejected < max_ejected) {
        EjectLocked(*w->endpoint, h, now, why);
        ++ejected;
      }
    } else if (h.ejections_in_a_row > 0) {
      --h.ejections_in_a_row;  // a good window: the next ejection is shorter
    }
  }

  const int64_t was_ejected = ejected_now_;
  ejected_now_ = 0;
  on_probation_ = 0;
  for (const Window& w : windows) {
    ejected_now_ += w.endpoint->ejected();
    on_probation_ += w.endpoint->on_probation();
  }
  g_ejected_now.fetch_add(ejected_now_ - was_ejected, std::memory_order_relaxed);
}

OutlierStats OutlierDetector::stats() const {
  netpoll::MutexLock lock(&mu_);
  return OutlierStats{
      .ejections = ejections_, .ejected_now = ejected_now_, .on_probation = on_probation_};
}

}  // namespace nprpc
