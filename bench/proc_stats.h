// Reads another process's CPU time and memory from /proc, so a load generator
// can report what the server under test consumed.
//
//   absl::StatusOr<bench::ProcessCpu> before = bench::ReadProcessCpu(pid);
//   ... load ...
//   absl::StatusOr<bench::ProcessCpu> after = bench::ReadProcessCpu(pid);
//   double cpu_seconds = after->seconds - before->seconds;
//   absl::StatusOr<bench::ProcessMemory> mem = bench::ReadProcessMemory(pid);
//
// Thread safety: every function is safe from any thread.
#ifndef BENCH_PROC_STATS_H_
#define BENCH_PROC_STATS_H_

#include <sys/types.h>

#include <cstdint>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace bench {

struct ProcessCpu {
  double seconds = 0;  // user + system CPU time of all threads
};

struct ProcessMemory {
  int64_t rss_kib = 0;       // VmRSS: resident now
  int64_t peak_rss_kib = 0;  // VmHWM: resident high-water mark
};

struct SystemCpu {
  double busy_seconds = 0;  // all CPUs: every state but idle and iowait
  double total_seconds = 0;
};

// utime + stime of /proc/<pid>/stat, in seconds.
absl::StatusOr<ProcessCpu> ReadProcessCpu(pid_t pid);

// VmRSS and VmHWM of /proc/<pid>/status.
absl::StatusOr<ProcessMemory> ReadProcessMemory(pid_t pid);

// The machine-wide "cpu" line of /proc/stat: with the client's and server's own
// CPU time it tells how much of the machine other processes took.
absl::StatusOr<SystemCpu> ReadSystemCpu();

// Parsers for the two files, exposed for tests.
//
// utime + stime, in clock ticks, from the text of /proc/<pid>/stat. The command
// name (field 2) may contain spaces and parentheses; fields are counted after
// its last ')'.
absl::StatusOr<int64_t> ParseStatCpuTicks(absl::string_view stat);
// Busy and total clock ticks from the text of /proc/stat (its first line,
// "cpu  user nice system idle iowait irq softirq steal ...").
absl::StatusOr<SystemCpu> ParseSystemCpuTicks(absl::string_view stat);
// The value in kB of line "<key>:   <n> kB" of /proc/<pid>/status.
absl::StatusOr<int64_t> ParseStatusKib(absl::string_view status, absl::string_view key);

}  // namespace bench

#endif  // BENCH_PROC_STATS_H_
