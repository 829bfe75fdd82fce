#include "bench/proc_stats.h"

#include <unistd.h>

#include "gtest/gtest.h"

namespace bench {
namespace {

TEST(ParseStatCpuTicksTest, SumsUtimeAndStimeAfterTheCommandName) {
  // Field 14 (utime) = 250, field 15 (stime) = 70; the name holds ") (" and spaces.
  const char* stat =
      "1234 (my ) (server) S 1 1234 1234 0 -1 4194560 100 0 0 0 250 70 0 0 20 0 3 0 "
      "5000 10000000 500 18446744073709551615\n";
  absl::StatusOr<int64_t> ticks = ParseStatCpuTicks(stat);
  ASSERT_TRUE(ticks.ok()) << ticks.status();
  EXPECT_EQ(*ticks, 320);
}

TEST(ParseStatCpuTicksTest, RejectsTruncatedText) {
  EXPECT_FALSE(ParseStatCpuTicks("1234 (x) S 1 2 3").ok());
  EXPECT_FALSE(ParseStatCpuTicks("garbage").ok());
}

TEST(ParseStatusKibTest, FindsTheKeyedLine) {
  const char* status =
      "Name:\techo\nVmPeak:\t  20000 kB\nVmHWM:\t    4096 kB\nVmRSS:\t    3072 kB\nThreads:\t1\n";
  EXPECT_EQ(*ParseStatusKib(status, "VmHWM"), 4096);
  EXPECT_EQ(*ParseStatusKib(status, "VmRSS"), 3072);
  EXPECT_FALSE(ParseStatusKib(status, "VmSwap").ok());
  EXPECT_FALSE(ParseStatusKib(status, "Threads").ok());  // no kB unit
}

TEST(ParseSystemCpuTicksTest, BusyExcludesIdleAndIowait) {
  const char* stat = "cpu  100 5 50 1000 20 3 2 1 0 0\ncpu0 50 2 25 500 10 1 1 0 0 0\nintr 1\n";
  absl::StatusOr<SystemCpu> ticks = ParseSystemCpuTicks(stat);
  ASSERT_TRUE(ticks.ok()) << ticks.status();
  EXPECT_EQ(ticks->busy_seconds, 100 + 5 + 50 + 3 + 2 + 1);
  EXPECT_EQ(ticks->total_seconds, 100 + 5 + 50 + 1000 + 20 + 3 + 2 + 1);
  EXPECT_FALSE(ParseSystemCpuTicks("cpu0 1 2 3\n").ok());
}

TEST(ReadProcessTest, ReadsThisProcess) {
  absl::StatusOr<ProcessCpu> cpu = ReadProcessCpu(getpid());
  ASSERT_TRUE(cpu.ok()) << cpu.status();
  EXPECT_GE(cpu->seconds, 0.0);
  absl::StatusOr<ProcessMemory> mem = ReadProcessMemory(getpid());
  ASSERT_TRUE(mem.ok()) << mem.status();
  EXPECT_GT(mem->rss_kib, 0);
  EXPECT_GE(mem->peak_rss_kib, mem->rss_kib);
  absl::StatusOr<SystemCpu> system = ReadSystemCpu();
  ASSERT_TRUE(system.ok()) << system.status();
  EXPECT_GT(system->total_seconds, 0.0);
  EXPECT_LE(system->busy_seconds, system->total_seconds);
}

TEST(ReadProcessTest, MissingProcessIsAnError) {
  EXPECT_FALSE(ReadProcessCpu(-1).ok());
  EXPECT_FALSE(ReadProcessMemory(-1).ok());
}

}  // namespace
}  // namespace bench
