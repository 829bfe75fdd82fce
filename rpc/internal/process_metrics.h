// Process metrics: the standard process_* families of Prometheus client
// libraries, read from /proc/self.
//
//   absl::StatusOr<ProcessMetrics> m = ReadProcessMetrics();
//   WriteProcessMetrics(writer);   // the seven families, or none on error
//
// Thread safety: every function is safe from any thread.
#ifndef RPC_INTERNAL_PROCESS_METRICS_H_
#define RPC_INTERNAL_PROCESS_METRICS_H_

#include <cstdint>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "rpc/internal/prometheus_writer.h"

namespace nprpc {

struct ProcessMetrics {
  double cpu_seconds = 0;  // user + system
  int64_t resident_memory_bytes = 0;
  int64_t virtual_memory_bytes = 0;
  int64_t open_fds = 0;
  int64_t max_fds = 0;            // soft RLIMIT_NOFILE
  double start_time_seconds = 0;  // since the Unix epoch
  int64_t threads = 0;
};

absl::StatusOr<ProcessMetrics> ReadProcessMetrics();

// Parses the text of /proc/<pid>/stat into the fields it has (cpu, memory,
// threads, start time). `ticks_per_second` is sysconf(_SC_CLK_TCK),
// `page_size` sysconf(_SC_PAGESIZE), `boot_time_seconds` the btime line of
// /proc/stat. Exposed for tests.
absl::Status ParseProcStat(absl::string_view stat, int64_t ticks_per_second, int64_t page_size,
                           int64_t boot_time_seconds, ProcessMetrics& out);

// Writes process_cpu_seconds_total, process_resident_memory_bytes,
// process_virtual_memory_bytes, process_open_fds, process_max_fds,
// process_start_time_seconds and process_threads. Writes nothing when /proc
// cannot be read.
void WriteProcessMetrics(PrometheusWriter& writer);

}  // namespace nprpc

#endif  // RPC_INTERNAL_PROCESS_METRICS_H_
