#include "bench/load_report.h"

#include "gtest/gtest.h"

namespace bench {
namespace {

LoadResult Sample() {
  LoadResult r;
  r.tool = "rpc_bench";
  r.server = "127.0.0.1:8000";
  r.connection_type = "single";
  r.channels = 1;
  r.concurrency = 16;
  r.payload = 16;
  r.warmup_s = 1;
  r.duration_s = 2;
  r.window_s = 2.01;
  r.requests = 100000;
  r.p50_us = 150;
  r.p99_us = 400;
  r.p999_us = 900;
  r.max_us = 2000;
  r.mean_us = 160;
  r.client_cpu_pct = 95.5;
  return r;
}

TEST(LoadReportTest, QpsIsRequestsOverTheConfiguredDuration) {
  EXPECT_DOUBLE_EQ(Sample().qps(), 50000);
  LoadResult empty;
  EXPECT_EQ(empty.qps(), 0);
}

TEST(LoadReportTest, JsonIsOneLineWithNullForAbsentServerFigures) {
  const std::string json = FormatLoadJson(Sample());
  EXPECT_EQ(json.find('\n'), json.size() - 1);
  EXPECT_NE(json.find("\"tool\":\"rpc_bench\""), std::string::npos);
  EXPECT_NE(json.find("\"qps\":50000,"), std::string::npos);
  EXPECT_NE(json.find("\"p50_us\":150.0,"), std::string::npos);
  EXPECT_NE(json.find("\"server_cpu_pct\":null,"), std::string::npos);
  EXPECT_NE(json.find("\"server_peak_rss_kib\":null,"), std::string::npos);
}

TEST(LoadReportTest, JsonCarriesServerFiguresAndEscapesTheErrorText) {
  LoadResult r = Sample();
  r.server_cpu_pct = 80.26;
  r.server_peak_rss_kib = 9000;
  r.errors = 2;
  r.first_error = "UNAVAILABLE: \"reset\"\n";
  const std::string json = FormatLoadJson(r);
  EXPECT_NE(json.find("\"server_cpu_pct\":80.3,"), std::string::npos);
  EXPECT_NE(json.find("\"server_peak_rss_kib\":9000,"), std::string::npos);
  EXPECT_NE(json.find("\"errors\":2,"), std::string::npos);
  EXPECT_NE(json.find(R"("first_error":"UNAVAILABLE: \"reset\"\u000a"})"), std::string::npos);
  EXPECT_EQ(json.find('\n'), json.size() - 1);
}

TEST(LoadReportTest, TextNamesEveryFigure) {
  LoadResult r = Sample();
  r.errors = 1;
  r.first_error = "DEADLINE_EXCEEDED: x";
  const std::string text = FormatLoadText(r);
  EXPECT_NE(text.find("rpc_bench: server=127.0.0.1:8000"), std::string::npos);
  EXPECT_NE(text.find("100000 (50000 qps)"), std::string::npos);
  EXPECT_NE(text.find("p50 150.0  p99 400.0  p999 900.0"), std::string::npos);
  EXPECT_NE(text.find("errors       1 (first: DEADLINE_EXCEEDED: x)"), std::string::npos);
  EXPECT_NE(text.find("server rss   peak n/a KiB"), std::string::npos);
  EXPECT_EQ(text.find("undrained"), std::string::npos);
}

TEST(LoadReportTest, ProgressLine) {
  EXPECT_EQ(FormatProgress(3.04, "measure", 12345.4, 0, 128),
            "[   3.0s] measure qps=12345      outstanding=128 errors=0\n");
}

}  // namespace
}  // namespace bench
