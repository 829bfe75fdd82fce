#include "rpc/metrics.h"

#include <atomic>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "gtest/gtest.h"
#include "netpoll/mutex.h"
#include "rpc/errors.h"
#include "rpc/internal/metrics_sampler.h"
#include "rpc/internal/prometheus_writer.h"
#include "rpc/internal/testing/promtool_check.h"

namespace nprpc {
namespace {

class MetricsTest : public ::testing::Test {
 protected:
  MetricsTest() : sampler_(Options(&now_)), registry_(&sampler_) {}

  static MetricsSampler::Options Options(absl::Time* now) {
    MetricsSampler::Options options;
    options.start_thread = false;
    options.clock = [now] { return *now; };
    return options;
  }
  void AdvanceOneSecond() {
    now_ += absl::Seconds(1);
    sampler_.Tick();
  }

  absl::Time now_ = absl::FromUnixSeconds(1000);
  MetricsSampler sampler_;
  MetricsRegistry registry_;
};

TEST_F(MetricsTest, CountsRequestsInFlightErrorsAndBytes) {
  MethodMetrics* m = registry_.Method(MetricsSide::kServer, "pkg.Echo", "Echo");
  m->OnStart();
  m->OnStart();
  m->OnStart();
  m->OnEnd(0, absl::Milliseconds(2), 100, 200);
  m->OnEnd(ERPCTIMEDOUT, absl::Milliseconds(4), 10, 0);
  MethodMetrics::Snapshot s = m->Read();
  EXPECT_EQ(s.requests, 3);
  EXPECT_EQ(s.in_flight, 1);
  EXPECT_EQ(s.completed, 2);
  EXPECT_EQ(s.errors, 1);
  EXPECT_EQ(s.errors_by_code, (std::map<int32_t, int64_t>{{1008, 1}}));
  EXPECT_EQ(s.request_bytes, 110);
  EXPECT_EQ(s.response_bytes, 200);
  EXPECT_EQ(s.window_count, 2);
  EXPECT_EQ(s.latency_sum, absl::Milliseconds(6));
  EXPECT_EQ(s.mean, absl::Milliseconds(3));
  EXPECT_NEAR(absl::ToDoubleMilliseconds(s.p50), 2, 2 * LatencyHistogram::kMaxRelativeError);
  EXPECT_NEAR(absl::ToDoubleMilliseconds(s.p99), 4, 4 * LatencyHistogram::kMaxRelativeError);
}

TEST_F(MetricsTest, ErrorsAreCountedPerCodeAndOverflowGoesToOther) {
  MethodMetrics* m = registry_.Method(MetricsSide::kClient, "pkg.Echo", "Echo");
  for (int32_t code = 1; code <= 40; ++code) {
    m->OnStart();
    m->OnEnd(code, absl::Microseconds(5), 0, 0);
  }
  m->OnStart();
  m->OnEnd(ELIMIT, absl::Microseconds(5), 0, 0);
  MethodMetrics::Snapshot s = m->Read();
  EXPECT_EQ(s.errors, 41);
  EXPECT_EQ(s.errors_by_code.size(), MethodMetrics::kErrorSlots);
  EXPECT_EQ(s.errors_by_code[1], 1);
  EXPECT_EQ(s.errors_by_code[31], 1);
  // Codes 32..40 and ELIMIT came after every slot was taken.
  EXPECT_EQ(s.errors_by_code[MethodMetrics::kOtherErrors], 10);
}

TEST_F(MetricsTest, LatencyAndQpsAreOverTheWindowAndTotalsSinceStart) {
  MethodMetrics* m = registry_.Method(MetricsSide::kServer, "pkg.Echo", "Slow");
  for (int i = 0; i < 100; ++i) {
    m->OnStart();
    m->OnEnd(0, absl::Milliseconds(50), 1, 1);
  }
  for (int i = 0; i < 11; ++i) AdvanceOneSecond();
  for (int i = 0; i < 20; ++i) {
    m->OnStart();
    m->OnEnd(0, absl::Microseconds(100), 1, 1);
  }
  MethodMetrics::Snapshot s = m->Read();
  EXPECT_EQ(s.requests, 120);
  EXPECT_EQ(s.window_count, 20);
  EXPECT_EQ(s.window, absl::Seconds(10));
  EXPECT_DOUBLE_EQ(s.qps, 2);
  EXPECT_NEAR(absl::ToDoubleMicroseconds(s.p999), 100, 100 * LatencyHistogram::kMaxRelativeError);
  EXPECT_EQ(s.request_bytes, 120);
}

TEST_F(MetricsTest, MethodReturnsOneStablePointerPerSideAndName) {
  MethodMetrics* a = registry_.Method(MetricsSide::kServer, "pkg.S", "A");
  EXPECT_EQ(registry_.Method(MetricsSide::kServer, "pkg.S", "A"), a);
  EXPECT_NE(registry_.Method(MetricsSide::kClient, "pkg.S", "A"), a);
  EXPECT_NE(registry_.Method(MetricsSide::kServer, "pkg.S", "B"), a);
  // "pkg.S/A" split differently is another key in the cache but the same name.
  MethodMetrics* from_other_thread = nullptr;
  std::thread other([&] {
    from_other_thread = registry_.Method(MetricsSide::kServer, std::string("pkg.S"), "A");
  });
  other.join();
  EXPECT_EQ(from_other_thread, a);
}

TEST_F(MetricsTest, RegistriesDoNotShareMethods) {
  MetricsRegistry other(&sampler_);
  EXPECT_NE(other.Method(MetricsSide::kServer, "pkg.S", "A"),
            registry_.Method(MetricsSide::kServer, "pkg.S", "A"));
}

TEST_F(MetricsTest, MethodsListsOneSideSortedByName) {
  registry_.Method(MetricsSide::kServer, "pkg.Z", "A")->OnStart();
  registry_.Method(MetricsSide::kServer, "pkg.A", "B");
  registry_.Method(MetricsSide::kServer, "pkg.A", "A");
  registry_.Method(MetricsSide::kClient, "pkg.C", "C");
  auto methods = registry_.Methods(MetricsSide::kServer);
  ASSERT_EQ(methods.size(), 3u);
  EXPECT_EQ(methods[0].first, "pkg.A/A");
  EXPECT_EQ(methods[1].first, "pkg.A/B");
  EXPECT_EQ(methods[2].first, "pkg.Z/A");
  EXPECT_EQ(methods[2].second.requests, 1);
  auto client = registry_.Methods(MetricsSide::kClient);
  ASSERT_EQ(client.size(), 1u);
  EXPECT_EQ(client[0].first, "pkg.C/C");
}

TEST_F(MetricsTest, ExportHasEveryFamilyAndPromtoolAcceptsIt) {
  MethodMetrics* server = registry_.Method(MetricsSide::kServer, "pkg.Echo", "Echo");
  server->OnStart();
  server->OnEnd(0, absl::Microseconds(300), 64, 64);
  server->OnStart();
  server->OnEnd(ERPCTIMEDOUT, absl::Seconds(1), 64, 0);
  server->OnStart();
  MethodMetrics* client = registry_.Method(MetricsSide::kClient, "pkg.Echo", "Echo");
  client->OnStart();
  client->OnEnd(EFAILEDSOCKET, absl::Milliseconds(1), 64, 0);
  // Two servers' collectors write the same families.
  for (const char* address : {"127.0.0.1:8000", "127.0.0.1:8001"}) {
    registry_.AddCollector([address](PrometheusWriter& w) {
      w.Family("nprpc_server_connections", PrometheusWriter::kGauge, "Open connections.");
      w.Sample({{"server", address}}, 2);
      w.Family("nprpc_server_busy_polls_total", PrometheusWriter::kCounter, "Busy-poll spins.");
      w.Sample({{"server", address}}, 7);
    });
  }
  std::string text = registry_.ExportPrometheus();
  for (const char* line : {
           "nprpc_server_requests_total{method=\"pkg.Echo/Echo\"} 3\n",
           "nprpc_server_errors_total{method=\"pkg.Echo/Echo\",code=\"1008\"} 1\n",
           "nprpc_server_in_flight{method=\"pkg.Echo/Echo\"} 1\n",
           "nprpc_server_latency_seconds_count{method=\"pkg.Echo/Echo\"} 2\n",
           "nprpc_server_request_bytes_total{method=\"pkg.Echo/Echo\"} 128\n",
           "nprpc_server_response_bytes_total{method=\"pkg.Echo/Echo\"} 64\n",
           "nprpc_client_errors_total{method=\"pkg.Echo/Echo\",code=\"1009\"} 1\n",
           "nprpc_server_connections{server=\"127.0.0.1:8001\"} 2\n",
           "# TYPE nprpc_server_latency_seconds summary\n",
           "# TYPE process_resident_memory_bytes gauge\n",
       }) {
    EXPECT_TRUE(absl::StrContains(text, line)) << line << "\n--- text ---\n" << text;
  }
  EXPECT_TRUE(absl::StrContains(
      text, "nprpc_server_latency_seconds{method=\"pkg.Echo/Echo\",quantile=\"0.999\"} 0.98"))
      << text;
  PrometheusWriter check;
  registry_.WriteTo(check);
  EXPECT_TRUE(check.status().ok()) << check.status();
  absl::Status s = testing::PromtoolCheck(text);
  if (!absl::IsUnavailable(s)) {
    EXPECT_TRUE(s.ok()) << s << "\n" << text;
  }
}

TEST_F(MetricsTest, RemovedCollectorNeverRunsAgain) {
  std::atomic<int> runs{0};
  uint64_t id = registry_.AddCollector([&](PrometheusWriter&) { runs.fetch_add(1); });
  registry_.ExportPrometheus();
  EXPECT_EQ(runs.load(), 1);
  registry_.RemoveCollector(id);
  registry_.ExportPrometheus();
  EXPECT_EQ(runs.load(), 1);
  registry_.RemoveCollector(id);  // twice: no-op
}

TEST_F(MetricsTest, RemoveCollectorWaitsForARunningCollector) {
  netpoll::Notification entered, release;
  std::atomic<bool> finished{false};
  uint64_t id = registry_.AddCollector([&](PrometheusWriter&) {
    entered.Notify();
    release.WaitForNotification();
    finished.store(true);
  });
  std::thread exporter([&] { registry_.ExportPrometheus(); });
  entered.WaitForNotification();
  std::atomic<bool> removed{false};
  std::thread remover([&] {
    registry_.RemoveCollector(id);
    EXPECT_TRUE(finished.load());
    removed.store(true);
  });
  EXPECT_FALSE(removed.load());
  release.Notify();
  remover.join();
  exporter.join();
  EXPECT_TRUE(removed.load());
}

TEST_F(MetricsTest, ConcurrentCallsFromSeveralThreadsLoseNothing) {
  constexpr int kThreads = 4;
  constexpr int kCalls = 10000;
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      MethodMetrics* m = registry_.Method(MetricsSide::kServer, "pkg.Echo", "Echo");
      for (int i = 0; i < kCalls; ++i) {
        m->OnStart();
        m->OnEnd(i % 10 == 0 ? EINTERNAL : 0, absl::Microseconds(10 * (t + 1)), 3, 5);
      }
    });
  }
  // Readers, the sampler and an export race with the writers.
  for (int i = 0; i < 3; ++i) {
    AdvanceOneSecond();
    registry_.ExportPrometheus();
  }
  for (auto& thread : threads) thread.join();
  MethodMetrics::Snapshot s = registry_.Method(MetricsSide::kServer, "pkg.Echo", "Echo")->Read();
  EXPECT_EQ(s.requests, kThreads * kCalls);
  EXPECT_EQ(s.completed, kThreads * kCalls);
  EXPECT_EQ(s.in_flight, 0);
  EXPECT_EQ(s.errors, kThreads * kCalls / 10);
  EXPECT_EQ(s.errors_by_code[EINTERNAL], kThreads * kCalls / 10);
  EXPECT_EQ(s.request_bytes, 3 * kThreads * kCalls);
  EXPECT_EQ(s.response_bytes, 5 * kThreads * kCalls);
}

TEST(MetricsRegistryDefaultTest, DefaultIsOneProcessWideRegistry) {
  MetricsRegistry& registry = MetricsRegistry::Default();
  EXPECT_EQ(&registry, &MetricsRegistry::Default());
  MethodMetrics* m = registry.Method(MetricsSide::kServer, "pkg.Default", "M");
  m->OnStart();
  m->OnEnd(0, absl::Microseconds(1), 0, 0);
  EXPECT_EQ(m->Read().requests, 1);
}

}  // namespace
}  // namespace nprpc
