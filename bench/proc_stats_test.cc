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

TEST(ReadProcessTest, ReadsThisProcess) {
  absl::StatusOr<ProcessCpu> cpu = ReadProcessCpu(getpid());
  ASSERT_TRUE(cpu.ok()) << cpu.status();
  EXPECT_GE(cpu->seconds, 0.0);
  absl::StatusOr<ProcessMemory> mem = ReadProcessMemory(getpid());
  ASSERT_TRUE(mem.ok()) << mem.status();
  EXPECT_GT(mem->rss_kib, 0);
  EXPECT_GE(mem->peak_rss_kib, mem->rss_kib);
}

TEST(ReadProcessTest, MissingProcessIsAnError) {
  EXPECT_FALSE(ReadProcessCpu(-1).ok());
  EXPECT_FALSE(ReadProcessMemory(-1).ok());
}

}  // namespace
}  // namespace bench
