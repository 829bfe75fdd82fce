#include "rpc/internal/process_metrics.h"

#include <dirent.h>
#include <sys/resource.h>
#include <unistd.h>

#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"

namespace nprpc {
namespace {

absl::StatusOr<std::string> ReadFile(const char* path) {
  std::ifstream in(path);
  if (!in) return absl::UnavailableError(absl::StrCat("cannot open ", path));
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

absl::StatusOr<int64_t> BootTimeSeconds() {
  absl::StatusOr<std::string> stat = ReadFile("/proc/stat");
  if (!stat.ok()) return stat.status();
  for (absl::string_view line : absl::StrSplit(*stat, '\n')) {
    if (absl::ConsumePrefix(&line, "btime ")) {
      int64_t btime = 0;
      if (absl::SimpleAtoi(line, &btime)) return btime;
    }
  }
  return absl::DataLossError("no btime in /proc/stat");
}

absl::StatusOr<int64_t> CountOpenFds() {
  DIR* dir = opendir("/proc/self/fd");
  if (dir == nullptr) return absl::UnavailableError("cannot open /proc/self/fd");
  int64_t count = 0;
  while (dirent* entry = readdir(dir)) {
    if (entry->d_name[0] != '.') ++count;
  }
  closedir(dir);
  return count - 1;  // the directory's own fd
}

}  // namespace

absl::Status ParseProcStat(absl::string_view stat, int64_t ticks_per_second, int64_t page_size,
                           int64_t boot_time_seconds, ProcessMetrics& out) {
  // "pid (comm) state ppid ...": comm may hold spaces and parentheses, so
  // the fields start after the last ')'.
  size_t close = stat.rfind(')');
  if (close == absl::string_view::npos) return absl::DataLossError("bad /proc/self/stat");
  std::vector<absl::string_view> fields =
      absl::StrSplit(stat.substr(close + 1), ' ', absl::SkipWhitespace());
  // fields[0] is field 3 (state) of proc(5); field n is fields[n - 3].
  auto field = [&](int n, int64_t& value) {
    size_t i = static_cast<size_t>(n - 3);
    return i < fields.size() && absl::SimpleAtoi(fields[i], &value);
  };
  int64_t utime = 0, stime = 0, threads = 0, start_ticks = 0, vsize = 0, rss_pages = 0;
  if (!field(14, utime) || !field(15, stime) || !field(20, threads) || !field(22, start_ticks) ||
      !field(23, vsize) || !field(24, rss_pages)) {
    return absl::DataLossError("bad /proc/self/stat");
  }
  double ticks = static_cast<double>(ticks_per_second);
  out.cpu_seconds = static_cast<double>(utime + stime) / ticks;
  out.threads = threads;
  out.start_time_seconds =
      static_cast<double>(boot_time_seconds) + static_cast<double>(start_ticks) / ticks;
  out.virtual_memory_bytes = vsize;
  out.resident_memory_bytes = rss_pages * page_size;
  return absl::OkStatus();
}

absl::StatusOr<ProcessMetrics> ReadProcessMetrics() {
  ProcessMetrics metrics;
  absl::StatusOr<std::string> stat = ReadFile("/proc/self/stat");
  if (!stat.ok()) return stat.status();
  absl::StatusOr<int64_t> boot_time = BootTimeSeconds();
  if (!boot_time.ok()) return boot_time.status();
  absl::Status parsed =
      ParseProcStat(*stat, sysconf(_SC_CLK_TCK), sysconf(_SC_PAGESIZE), *boot_time, metrics);
  if (!parsed.ok()) return parsed;
  absl::StatusOr<int64_t> fds = CountOpenFds();
  if (!fds.ok()) return fds.status();
  metrics.open_fds = *fds;
  rlimit limit{};
  if (getrlimit(RLIMIT_NOFILE, &limit) == 0) {
    metrics.max_fds = limit.rlim_cur == RLIM_INFINITY ? -1 : static_cast<int64_t>(limit.rlim_cur);
  }
  return metrics;
}

void WriteProcessMetrics(PrometheusWriter& writer) {
  absl::StatusOr<ProcessMetrics> m = ReadProcessMetrics();
  if (!m.ok()) return;
  using W = PrometheusWriter;
  writer.Family("process_cpu_seconds_total", W::kCounter,
                "Total user and system CPU time spent in seconds.");
  writer.Sample({}, m->cpu_seconds);
  writer.Family("process_resident_memory_bytes", W::kGauge, "Resident memory size in bytes.");
  writer.Sample({}, static_cast<double>(m->resident_memory_bytes));
  writer.Family("process_virtual_memory_bytes", W::kGauge, "Virtual memory size in bytes.");
  writer.Sample({}, static_cast<double>(m->virtual_memory_bytes));
  writer.Family("process_open_fds", W::kGauge, "Number of open file descriptors.");
  writer.Sample({}, static_cast<double>(m->open_fds));
  if (m->max_fds >= 0) {
    writer.Family("process_max_fds", W::kGauge, "Maximum number of open file descriptors.");
    writer.Sample({}, static_cast<double>(m->max_fds));
  }
  writer.Family("process_start_time_seconds", W::kGauge,
                "Start time of the process since unix epoch in seconds.");
  writer.Sample({}, m->start_time_seconds);
  writer.Family("process_threads", W::kGauge, "Number of OS threads in the process.");
  writer.Sample({}, static_cast<double>(m->threads));
}

}  // namespace nprpc
