#include "netpoll/logging.h"

#include <sys/syscall.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "absl/strings/str_format.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"

namespace netpoll {
namespace {

class StderrSink : public LogSink {
 public:
  void Send(const LogEntry& entry) override {
    // One fwrite per record so that lines from different threads do not mix.
    std::string line = absl::StrFormat(
        "%s%s %d %s:%d] %s\n", LogSeverityName(entry.severity),
        absl::FormatTime("%m%d %H:%M:%E6S", absl::Now(), absl::LocalTimeZone()),
        static_cast<int>(::syscall(SYS_gettid)), entry.file, entry.line, entry.message);
    std::fwrite(line.data(), 1, line.size(), stderr);
  }
};

StderrSink* DefaultSink() {
  static StderrSink* sink = new StderrSink();  // never destroyed: usable at exit
  return sink;
}

std::atomic<LogSink*> g_sink{nullptr};
std::atomic<int> g_min_severity{static_cast<int>(LogSeverity::kInfo)};

absl::string_view BaseName(const char* path) {
  const char* slash = std::strrchr(path, '/');
  return slash == nullptr ? path : slash + 1;
}

}  // namespace

LogSink* SetLogSink(LogSink* sink) { return g_sink.exchange(sink); }

void SetMinLogSeverity(LogSeverity severity) {
  g_min_severity.store(static_cast<int>(severity), std::memory_order_relaxed);
}

LogSeverity MinLogSeverity() {
  return static_cast<LogSeverity>(g_min_severity.load(std::memory_order_relaxed));
}

absl::string_view LogSeverityName(LogSeverity severity) {
  switch (severity) {
    case LogSeverity::kDebug:
      return "D";
    case LogSeverity::kInfo:
      return "I";
    case LogSeverity::kWarning:
      return "W";
    case LogSeverity::kError:
      return "E";
    case LogSeverity::kFatal:
      return "F";
  }
  return "?";
}

bool LogRateLimiter::Allow(int64_t* skipped) {
  const int64_t count = events_.fetch_add(1, std::memory_order_relaxed) + 1;
  const int64_t now = absl::ToUnixNanos(absl::Now());
  int64_t next = next_ns_.load(std::memory_order_relaxed);
  if (now < next ||
      !next_ns_.compare_exchange_strong(next, now + interval_ns_, std::memory_order_relaxed)) {
    return false;
  }
  const int64_t previous = logged_at_event_.exchange(count, std::memory_order_relaxed);
  if (skipped != nullptr) *skipped = count - previous - 1;
  return true;
}

namespace logging_internal {

LogMessage::LogMessage(const char* file, int line, LogSeverity severity)
    : file_(file), line_(line), severity_(severity) {}

LogMessage::~LogMessage() {
  std::string message = stream_.str();
  LogEntry entry{severity_, BaseName(file_), line_, message};
  LogSink* sink = g_sink.load();
  (sink != nullptr ? sink : DefaultSink())->Send(entry);
  if (severity_ == LogSeverity::kFatal) {
    if (sink != nullptr) DefaultSink()->Send(entry);  // always visible
    std::fflush(stderr);
    std::abort();
  }
}

}  // namespace logging_internal
}  // namespace netpoll
