#include "bench/proc_stats.h"

#include <unistd.h>

#include <cstdint>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"

namespace bench {
namespace {

absl::StatusOr<std::string> ReadFile(const std::string& path) {
  std::ifstream in(path);
  if (!in) return absl::NotFoundError(absl::StrCat("cannot open ", path));
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

}  // namespace

absl::StatusOr<int64_t> ParseStatCpuTicks(absl::string_view stat) {
  const size_t paren = stat.rfind(')');
  if (paren == absl::string_view::npos) {
    return absl::InvalidArgumentError("stat: no ')' after the command name");
  }
  // Fields after the name start at field 3 (state); utime is 14, stime 15.
  std::vector<absl::string_view> fields =
      absl::StrSplit(stat.substr(paren + 1), ' ', absl::SkipWhitespace());
  constexpr size_t kUtime = 14 - 3;
  constexpr size_t kStime = 15 - 3;
  int64_t utime = 0;
  int64_t stime = 0;
  if (fields.size() <= kStime || !absl::SimpleAtoi(fields[kUtime], &utime) ||
      !absl::SimpleAtoi(fields[kStime], &stime)) {
    return absl::InvalidArgumentError("stat: cannot parse utime/stime");
  }
  return utime + stime;
}

absl::StatusOr<SystemCpu> ParseSystemCpuTicks(absl::string_view stat) {
  const absl::string_view line = stat.substr(0, stat.find('\n'));
  std::vector<absl::string_view> fields = absl::StrSplit(line, ' ', absl::SkipWhitespace());
  // user nice system idle iowait irq softirq steal; guest time is already in user.
  constexpr size_t kFields = 8;
  if (fields.size() < 1 + kFields || fields[0] != "cpu") {
    return absl::InvalidArgumentError("stat: no aggregate cpu line");
  }
  SystemCpu ticks;
  for (size_t i = 0; i < kFields; ++i) {
    int64_t value = 0;
    if (!absl::SimpleAtoi(fields[1 + i], &value)) {
      return absl::InvalidArgumentError("stat: bad cpu field");
    }
    ticks.total_seconds += static_cast<double>(value);
    if (i != 3 && i != 4) ticks.busy_seconds += static_cast<double>(value);  // not idle, iowait
  }
  return ticks;
}

absl::StatusOr<int64_t> ParseStatusKib(absl::string_view status, absl::string_view key) {
  for (absl::string_view line : absl::StrSplit(status, '\n')) {
    if (!absl::ConsumePrefix(&line, key) || !absl::ConsumePrefix(&line, ":")) continue;
    line = absl::StripAsciiWhitespace(line);
    if (!absl::ConsumeSuffix(&line, "kB")) break;
    int64_t kib = 0;
    if (!absl::SimpleAtoi(absl::StripAsciiWhitespace(line), &kib)) break;
    return kib;
  }
  return absl::NotFoundError(absl::StrCat("status: no \"", key, ": <n> kB\" line"));
}

absl::StatusOr<ProcessCpu> ReadProcessCpu(pid_t pid) {
  absl::StatusOr<std::string> stat = ReadFile(absl::StrCat("/proc/", pid, "/stat"));
  if (!stat.ok()) return stat.status();
  absl::StatusOr<int64_t> ticks = ParseStatCpuTicks(*stat);
  if (!ticks.ok()) return ticks.status();
  static const int64_t kTicksPerSecond = sysconf(_SC_CLK_TCK);
  return ProcessCpu{.seconds = static_cast<double>(*ticks) / static_cast<double>(kTicksPerSecond)};
}

absl::StatusOr<SystemCpu> ReadSystemCpu() {
  absl::StatusOr<std::string> stat = ReadFile("/proc/stat");
  if (!stat.ok()) return stat.status();
  absl::StatusOr<SystemCpu> ticks = ParseSystemCpuTicks(*stat);
  if (!ticks.ok()) return ticks.status();
  const double ticks_per_second = static_cast<double>(sysconf(_SC_CLK_TCK));
  return SystemCpu{.busy_seconds = ticks->busy_seconds / ticks_per_second,
                   .total_seconds = ticks->total_seconds / ticks_per_second};
}

absl::StatusOr<ProcessMemory> ReadProcessMemory(pid_t pid) {
  absl::StatusOr<std::string> status = ReadFile(absl::StrCat("/proc/", pid, "/status"));
  if (!status.ok()) return status.status();
  absl::StatusOr<int64_t> rss = ParseStatusKib(*status, "VmRSS");
  if (!rss.ok()) return rss.status();
  absl::StatusOr<int64_t> hwm = ParseStatusKib(*status, "VmHWM");
  if (!hwm.ok()) return hwm.status();
  return ProcessMemory{.rss_kib = *rss, .peak_rss_kib = *hwm};
}

}  // namespace bench
