#include "rpc/internal/prometheus_writer.h"

#include <cmath>
#include <limits>
#include <string>

#include "gtest/gtest.h"
#include "rpc/internal/testing/promtool_check.h"

namespace nprpc {
namespace {

using W = PrometheusWriter;

// Fails on any promtool complaint; passes (with a note) where it is absent.
void ExpectPromtoolAccepts(const std::string& text) {
  absl::Status s = testing::PromtoolCheck(text);
  if (absl::IsUnavailable(s)) {
    GTEST_LOG_(INFO) << "promtool not installed: " << s;
    return;
  }
  EXPECT_TRUE(s.ok()) << s << "\n--- text ---\n" << text;
}

TEST(PrometheusWriterTest, WritesHelpTypeAndSamplesOfACounterAndAGauge) {
  W w;
  w.Family("nprpc_server_requests_total", W::kCounter, "Calls started.");
  w.Sample({{"method", "pkg.Echo/Echo"}}, 42);
  w.Family("nprpc_server_connections", W::kGauge, "Open connections.");
  w.Sample({}, 3);
  EXPECT_TRUE(w.status().ok()) << w.status();
  EXPECT_EQ(w.ToString(),
            "# HELP nprpc_server_requests_total Calls started.\n"
            "# TYPE nprpc_server_requests_total counter\n"
            "nprpc_server_requests_total{method=\"pkg.Echo/Echo\"} 42\n"
            "# HELP nprpc_server_connections Open connections.\n"
            "# TYPE nprpc_server_connections gauge\n"
            "nprpc_server_connections 3\n");
  ExpectPromtoolAccepts(w.ToString());
}

TEST(PrometheusWriterTest, SummaryHasQuantileLabelsThenSumAndCount) {
  W w;
  w.Family("rpc_latency_seconds", W::kSummary, "Latency.");
  w.Summary({{"method", "a.B/C"}}, {{0.5, 0.001}, {0.999, 0.25}}, 12.5, 10000);
  EXPECT_EQ(w.ToString(),
            "# HELP rpc_latency_seconds Latency.\n"
            "# TYPE rpc_latency_seconds summary\n"
            "rpc_latency_seconds{method=\"a.B/C\",quantile=\"0.5\"} 0.001\n"
            "rpc_latency_seconds{method=\"a.B/C\",quantile=\"0.999\"} 0.25\n"
            "rpc_latency_seconds_sum{method=\"a.B/C\"} 12.5\n"
            "rpc_latency_seconds_count{method=\"a.B/C\"} 10000\n");
  ExpectPromtoolAccepts(w.ToString());
}

TEST(PrometheusWriterTest, SamplesOfOneFamilyFromSeveralWritersAreMerged) {
  W w;
  // Two collectors, each writing both families.
  for (const char* server : {"127.0.0.1:1", "127.0.0.1:2"}) {
    w.Family("srv_connections", W::kGauge, "Open connections.");
    w.Sample({{"server", server}}, 1);
    w.Family("srv_bytes_in_total", W::kCounter, "Bytes read.");
    w.Sample({{"server", server}}, 100);
  }
  EXPECT_TRUE(w.status().ok()) << w.status();
  EXPECT_EQ(w.ToString(),
            "# HELP srv_connections Open connections.\n"
            "# TYPE srv_connections gauge\n"
            "srv_connections{server=\"127.0.0.1:1\"} 1\n"
            "srv_connections{server=\"127.0.0.1:2\"} 1\n"
            "# HELP srv_bytes_in_total Bytes read.\n"
            "# TYPE srv_bytes_in_total counter\n"
            "srv_bytes_in_total{server=\"127.0.0.1:1\"} 100\n"
            "srv_bytes_in_total{server=\"127.0.0.1:2\"} 100\n");
  ExpectPromtoolAccepts(w.ToString());
}

TEST(PrometheusWriterTest, LabelValuesAndHelpAreEscaped) {
  W w;
  w.Family("x_info", W::kGauge, "Back\\slash and\nnewline \"quotes\" stay.");
  w.Sample({{"v", "a\\b\"c\nd"}}, 1);
  EXPECT_EQ(w.ToString(),
            "# HELP x_info Back\\\\slash and\\nnewline \"quotes\" stay.\n"
            "# TYPE x_info gauge\n"
            "x_info{v=\"a\\\\b\\\"c\\nd\"} 1\n");
  ExpectPromtoolAccepts(w.ToString());
}

TEST(PrometheusWriterTest, ValuesUseGoFloatSyntax) {
  EXPECT_EQ(W::FormatValue(0), "0");
  EXPECT_EQ(W::FormatValue(-7), "-7");
  EXPECT_EQ(W::FormatValue(123456789012), "123456789012");
  EXPECT_EQ(W::FormatValue(0.25), "0.25");
  EXPECT_EQ(W::FormatValue(1e20), "1e+20");
  EXPECT_EQ(W::FormatValue(std::numeric_limits<double>::infinity()), "+Inf");
  EXPECT_EQ(W::FormatValue(-std::numeric_limits<double>::infinity()), "-Inf");
  EXPECT_EQ(W::FormatValue(std::nan("")), "NaN");
}

TEST(PrometheusWriterTest, NamesAreValidated) {
  EXPECT_TRUE(W::IsValidMetricName("a:b_c9"));
  EXPECT_FALSE(W::IsValidMetricName("9a"));
  EXPECT_FALSE(W::IsValidMetricName("a-b"));
  EXPECT_FALSE(W::IsValidMetricName(""));
  EXPECT_TRUE(W::IsValidLabelName("method_2"));
  EXPECT_FALSE(W::IsValidLabelName("__name__"));
  EXPECT_FALSE(W::IsValidLabelName("a:b"));
  EXPECT_FALSE(W::IsValidLabelName("2a"));
}

TEST(PrometheusWriterTest, BadFamiliesAndSamplesAreLeftOutAndReported) {
  W w;
  w.Family("bad-name", W::kGauge, "x");
  w.Sample({}, 1);
  EXPECT_FALSE(w.status().ok());
  EXPECT_EQ(w.ToString(), "");

  W counter_without_total;
  counter_without_total.Family("requests", W::kCounter, "x");
  EXPECT_FALSE(counter_without_total.status().ok());

  W gauge_with_total;
  gauge_with_total.Family("requests_total", W::kGauge, "x");
  EXPECT_FALSE(gauge_with_total.status().ok());

  W retyped;
  retyped.Family("a_total", W::kCounter, "x");
  retyped.Sample({}, 1);
  retyped.Family("a_total", W::kGauge, "x");
  retyped.Sample({{"k", "v"}}, 2);  // dropped
  EXPECT_FALSE(retyped.status().ok());
  EXPECT_EQ(retyped.ToString(), "# HELP a_total x\n# TYPE a_total counter\na_total 1\n");

  W bad_label;
  bad_label.Family("g", W::kGauge, "x");
  bad_label.Sample({{"quantile", "1"}}, 1);
  bad_label.Sample({{"a", "1"}, {"a", "2"}}, 1);
  bad_label.Sample({{"__x", "1"}}, 1);
  EXPECT_FALSE(bad_label.status().ok());
  EXPECT_EQ(bad_label.ToString(), "# HELP g x\n# TYPE g gauge\n");

  W duplicate;
  duplicate.Family("g", W::kGauge, "x");
  duplicate.Sample({{"a", "1"}}, 1);
  duplicate.Sample({{"a", "1"}}, 2);  // same series again: dropped
  EXPECT_FALSE(duplicate.status().ok());
  EXPECT_EQ(duplicate.ToString(), "# HELP g x\n# TYPE g gauge\ng{a=\"1\"} 1\n");

  W wrong_kind;
  wrong_kind.Family("s_seconds", W::kSummary, "x");
  wrong_kind.Sample({}, 1);
  EXPECT_FALSE(wrong_kind.status().ok());

  W no_family;
  no_family.Sample({}, 1);
  EXPECT_FALSE(no_family.status().ok());
}

TEST(PrometheusWriterTest, PromtoolAcceptsAMixOfEveryKind) {
  W w;
  w.Family("nprpc_server_requests_total", W::kCounter, "Calls started.");
  w.Sample({{"method", "a.B/C"}}, 1);
  w.Sample({{"method", "a.B/D"}}, 2);
  w.Family("nprpc_server_errors_total", W::kCounter, "Errors by code.");
  w.Sample({{"method", "a.B/C"}, {"code", "1008"}}, 1);
  w.Family("nprpc_server_latency_seconds", W::kSummary, "Latency.");
  w.Summary({{"method", "a.B/C"}}, {{0.5, 1e-5}, {0.9, 2e-5}, {0.99, 3e-5}, {0.999, 4e-5}}, 0.001,
            100);
  w.Family("nprpc_loop_busy_polls_total", W::kCounter, "Busy-poll spins.");
  w.Sample({{"server", "127.0.0.1:8000"}, {"loop", "0"}}, 12345);
  w.Family("nprpc_server_worker_queue_depth", W::kGauge, "Queued calls.");
  w.Sample({{"server", "127.0.0.1:8000"}}, 0);
  EXPECT_TRUE(w.status().ok()) << w.status();
  ExpectPromtoolAccepts(w.ToString());
}

TEST(PrometheusWriterTest, PromtoolCheckRejectsBrokenText) {
  absl::Status s = testing::PromtoolCheck("# TYPE a counter\n# TYPE a counter\na 1\n");
  if (absl::IsUnavailable(s)) GTEST_SKIP() << "promtool not installed";
  EXPECT_FALSE(s.ok());
}

}  // namespace
}  // namespace nprpc
