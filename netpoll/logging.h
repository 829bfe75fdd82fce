// Logging for netpoll and nprpc.
//
// Abseil 20220623 (the version Debian ships) has no absl/log, so the project
// keeps a small logger with a pluggable sink instead of writing its own
// framework: a severity, a stream-style macro, and one process-wide sink that a
// user may replace (to route records into glog, spdlog or a test).
//
//   NP_LOG(WARNING) << "closing connection " << id << ": " << status;
//   NP_CHECK(fd >= 0) << "socket() returned " << fd;
//
// Thread safety: everything here is safe from any thread. A sink's Send() may
// be called from several threads at once and must synchronize itself.
#ifndef NETPOLL_LOGGING_H_
#define NETPOLL_LOGGING_H_

#include <atomic>
#include <cstdint>
#include <sstream>
#include <string>

#include "absl/strings/string_view.h"
#include "absl/time/time.h"

namespace netpoll {

enum class LogSeverity { kDebug = 0, kInfo = 1, kWarning = 2, kError = 3, kFatal = 4 };

// One log record, valid only during LogSink::Send().
struct LogEntry {
  LogSeverity severity;
  absl::string_view file;  // base name of the source file
  int line;
  absl::string_view message;
};

// Receives every record at or above the minimum severity.
class LogSink {
 public:
  virtual ~LogSink() = default;
  virtual void Send(const LogEntry& entry) = 0;
};

// Replaces the process-wide sink and returns the previous one. `sink` is not
// owned and must outlive its installation; nullptr restores the default sink,
// which writes one line per record to stderr.
LogSink* SetLogSink(LogSink* sink);

// Records below `severity` are dropped before they are formatted. kFatal
// records are never dropped. Default: kInfo.
void SetMinLogSeverity(LogSeverity severity);
LogSeverity MinLogSeverity();

// "D", "I", "W", "E" or "F".
absl::string_view LogSeverityName(LogSeverity severity);

// Lets one log line through per interval and counts the ones it held back,
// for events a peer can repeat at will (broken connections, stray answers):
//
//   static netpoll::LogRateLimiter limiter(absl::Seconds(1));
//   if (int64_t skipped; limiter.Allow(&skipped)) {
//     NP_LOG(WARNING) << "... (" << skipped << " more since the last report)";
//   }
//
// Thread safety: Allow() is safe from any thread (lock-free).
class LogRateLimiter {
 public:
  explicit LogRateLimiter(absl::Duration interval)
      : interval_ns_(absl::ToInt64Nanoseconds(interval)) {}
  // True for the first event of an interval; `skipped` (may be null) is then
  // the number of events held back since the last one allowed.
  bool Allow(int64_t* skipped);

 private:
  const int64_t interval_ns_;
  std::atomic<int64_t> events_{0};
  std::atomic<int64_t> logged_at_event_{0};
  std::atomic<int64_t> next_ns_{0};  // unix nanos
};

namespace logging_internal {

// Collects one record and sends it when destroyed; aborts after a kFatal one.
class LogMessage {
 public:
  LogMessage(const char* file, int line, LogSeverity severity);
  LogMessage(const LogMessage&) = delete;
  LogMessage& operator=(const LogMessage&) = delete;
  ~LogMessage();

  std::ostream& stream() { return stream_; }

 private:
  const char* file_;
  int line_;
  LogSeverity severity_;
  std::ostringstream stream_;
};

// Lets the macros below discard the stream expression in a void context.
struct Voidify {
  void operator&(std::ostream&) {}
};

inline bool ShouldLog(LogSeverity severity) {
  return severity >= MinLogSeverity() || severity == LogSeverity::kFatal;
}

}  // namespace logging_internal
}  // namespace netpoll

#define NP_LOG_SEVERITY_DEBUG ::netpoll::LogSeverity::kDebug
#define NP_LOG_SEVERITY_INFO ::netpoll::LogSeverity::kInfo
#define NP_LOG_SEVERITY_WARNING ::netpoll::LogSeverity::kWarning
#define NP_LOG_SEVERITY_ERROR ::netpoll::LogSeverity::kError
#define NP_LOG_SEVERITY_FATAL ::netpoll::LogSeverity::kFatal

// NOLINTBEGIN(bugprone-macro-parentheses): `NP_LOG(x) << y` needs the
// stream expression open at the end.

// NP_LOG(INFO) << ...; the stream is not evaluated when the record is dropped.
#define NP_LOG(severity)                                                        \
  !::netpoll::logging_internal::ShouldLog(NP_LOG_SEVERITY_##severity)           \
      ? (void)0                                                                 \
      : ::netpoll::logging_internal::Voidify() &                                \
            ::netpoll::logging_internal::LogMessage(__FILE__, __LINE__,         \
                                                    NP_LOG_SEVERITY_##severity) \
                .stream()

// NP_CHECK(cond) << ...; aborts with the condition and message when false.
// Always on, also in optimized builds: it guards invariants whose violation
// would corrupt memory (e.g. a loop-only method called from another thread).
#define NP_CHECK(condition)                                                                 \
  (condition) ? (void)0                                                                     \
              : ::netpoll::logging_internal::Voidify() &                                    \
                    ::netpoll::logging_internal::LogMessage(__FILE__, __LINE__,             \
                                                            ::netpoll::LogSeverity::kFatal) \
                            .stream()                                                       \
                        << "Check failed: " #condition " "
// NOLINTEND(bugprone-macro-parentheses)

#endif  // NETPOLL_LOGGING_H_
