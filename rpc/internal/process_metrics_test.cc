#include "rpc/internal/process_metrics.h"

#include <unistd.h>

#include <string>

#include "absl/strings/match.h"
#include "gtest/gtest.h"
#include "rpc/internal/prometheus_writer.h"
#include "rpc/internal/testing/promtool_check.h"

namespace nprpc {
namespace {

TEST(ProcessMetricsTest, ParsesProcStatWithSpacesAndParenthesesInTheName) {
  // Fields per proc(5): utime 14 = 250, stime 15 = 50, threads 20 = 7,
  // starttime 22 = 1000, vsize 23 = 4096000, rss 24 = 300 pages.
  std::string stat =
      "1234 (a (weird) name) S 1 1234 1234 0 -1 4194560 100 0 0 0 250 50 0 0 20 0 7 0 1000 "
      "4096000 300 18446744073709551615 1 1 0 0 0 0 0 0 0 0 0 0 17 0 0 0 0 0 0";
  ProcessMetrics m;
  ASSERT_TRUE(ParseProcStat(stat, /*ticks_per_second=*/100, /*page_size=*/4096,
                            /*boot_time_seconds=*/1700000000, m)
                  .ok());
  EXPECT_DOUBLE_EQ(m.cpu_seconds, 3.0);
  EXPECT_EQ(m.threads, 7);
  EXPECT_DOUBLE_EQ(m.start_time_seconds, 1700000010.0);
  EXPECT_EQ(m.virtual_memory_bytes, 4096000);
  EXPECT_EQ(m.resident_memory_bytes, 300 * 4096);
}

TEST(ProcessMetricsTest, TruncatedStatIsAnError) {
  ProcessMetrics m;
  EXPECT_FALSE(ParseProcStat("1234 (x) S 1 2 3", 100, 4096, 0, m).ok());
  EXPECT_FALSE(ParseProcStat("garbage", 100, 4096, 0, m).ok());
}

TEST(ProcessMetricsTest, ReadsThisProcess) {
  absl::StatusOr<ProcessMetrics> m = ReadProcessMetrics();
  ASSERT_TRUE(m.ok()) << m.status();
  EXPECT_GT(m->resident_memory_bytes, 0);
  EXPECT_GE(m->virtual_memory_bytes, m->resident_memory_bytes);
  EXPECT_GE(m->open_fds, 3);  // stdin, stdout, stderr at least
  EXPECT_GE(m->max_fds, m->open_fds);
  EXPECT_GE(m->threads, 1);
  EXPECT_GT(m->start_time_seconds, 1e9);
  EXPECT_LE(m->start_time_seconds, static_cast<double>(time(nullptr)) + 1);
  EXPECT_GE(m->cpu_seconds, 0);
}

TEST(ProcessMetricsTest, OpenFdsCountsANewDescriptor) {
  absl::StatusOr<ProcessMetrics> before = ReadProcessMetrics();
  ASSERT_TRUE(before.ok());
  int fds[2];
  ASSERT_EQ(pipe(fds), 0);
  absl::StatusOr<ProcessMetrics> after = ReadProcessMetrics();
  close(fds[0]);
  close(fds[1]);
  ASSERT_TRUE(after.ok());
  EXPECT_EQ(after->open_fds, before->open_fds + 2);
}

TEST(ProcessMetricsTest, WritesTheStandardFamiliesThatPromtoolAccepts) {
  PrometheusWriter w;
  WriteProcessMetrics(w);
  EXPECT_TRUE(w.status().ok()) << w.status();
  std::string text = w.ToString();
  for (const char* family : {"process_cpu_seconds_total", "process_resident_memory_bytes",
                             "process_virtual_memory_bytes", "process_open_fds", "process_max_fds",
                             "process_start_time_seconds", "process_threads"}) {
    EXPECT_TRUE(absl::StrContains(text, absl::StrCat("# TYPE ", family, " "))) << family;
  }
  absl::Status s = testing::PromtoolCheck(text);
  if (!absl::IsUnavailable(s)) {
    EXPECT_TRUE(s.ok()) << s << "\n" << text;
  }
}

}  // namespace
}  // namespace nprpc
