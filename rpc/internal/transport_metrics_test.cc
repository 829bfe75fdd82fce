#include "rpc/internal/transport_metrics.h"

#include <string>

#include "absl/strings/match.h"
#include "gtest/gtest.h"
#include "netpoll/stats.h"
#include "rpc/internal/prometheus_writer.h"
#include "rpc/internal/testing/promtool_check.h"

namespace nprpc {
namespace {

TEST(TransportMetricsTest, TwoServersMergeIntoOneFamilyEachAndPromtoolAccepts) {
  netpoll::TransportStatsSnapshot a;
  a.connections_active = 3;
  a.bytes_in = 1000;
  a.busy_polls = 77;
  a.wakeups = 5;
  netpoll::TransportStatsSnapshot b;
  b.connections_active = 1;
  PrometheusWriter w;
  WriteTransportStats(w, "nprpc_server", {{"server", "127.0.0.1:8000"}}, a);
  WriteTransportStats(w, "nprpc_server", {{"server", "127.0.0.1:8001"}}, b);
  EXPECT_TRUE(w.status().ok()) << w.status();
  std::string text = w.ToString();
  EXPECT_TRUE(absl::StrContains(text,
                                "# TYPE nprpc_server_connections gauge\n"
                                "nprpc_server_connections{server=\"127.0.0.1:8000\"} 3\n"
                                "nprpc_server_connections{server=\"127.0.0.1:8001\"} 1\n"))
      << text;
  EXPECT_TRUE(
      absl::StrContains(text, "nprpc_server_read_bytes_total{server=\"127.0.0.1:8000\"} 1000\n"));
  EXPECT_TRUE(absl::StrContains(
      text, "nprpc_server_loop_busy_polls_total{server=\"127.0.0.1:8000\"} 77\n"));
  EXPECT_TRUE(
      absl::StrContains(text, "nprpc_server_loop_wakeups_total{server=\"127.0.0.1:8000\"} 5\n"));
  absl::Status s = testing::PromtoolCheck(text);
  if (!absl::IsUnavailable(s)) {
    EXPECT_TRUE(s.ok()) << s << "\n" << text;
  }
}

}  // namespace
}  // namespace nprpc
