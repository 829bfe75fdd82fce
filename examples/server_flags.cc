#include "examples/server_flags.h"

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "absl/flags/flag.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "rpc/interceptor.h"
#include "rpc/tracing.h"

ABSL_FLAG(int, threads, 0, "handler (worker) threads (0: one per core, at least 4)");
ABSL_FLAG(int, io_loops, 0, "I/O loops (0: one per two cores, at least 1)");
ABSL_FLAG(int, busy_poll_us, -1,
          "I/O loops' and workers' busy poll in microseconds (0: off; -1: nprpc's default)");
namespace examples {

// --handler_threads: a bad value fails absl::ParseCommandLine with this
// message.
struct HandlerThreadsFlag {
  nprpc::ServerOptions::HandlerThreads value = nprpc::ServerOptions::HandlerThreads::kAdaptive;
};

bool AbslParseFlag(absl::string_view text, HandlerThreadsFlag* flag, std::string* error) {
  using HandlerThreads = nprpc::ServerOptions::HandlerThreads;
  if (text == "adaptive") {
    flag->value = HandlerThreads::kAdaptive;
  } else if (text == "pool") {
    flag->value = HandlerThreads::kWorkerPool;
  } else if (text == "loop") {
    flag->value = HandlerThreads::kIoLoop;
  } else {
    *error = "must be adaptive, pool or loop";
    return false;
  }
  return true;
}

std::string AbslUnparseFlag(HandlerThreadsFlag flag) {
  switch (flag.value) {
    case nprpc::ServerOptions::HandlerThreads::kAdaptive:
      return "adaptive";
    case nprpc::ServerOptions::HandlerThreads::kWorkerPool:
      return "pool";
    case nprpc::ServerOptions::HandlerThreads::kIoLoop:
      return "loop";
  }
  return "adaptive";
}

}  // namespace examples

ABSL_FLAG(examples::HandlerThreadsFlag, handler_threads, examples::HandlerThreadsFlag{},
          "where sync handlers run: adaptive (on the I/O loops, moved to the worker pool when "
          "they block or run long), pool (always the worker pool) or loop (always the I/O loops, "
          "no hand-off: only for handlers that never block)");
ABSL_FLAG(int64_t, memory_budget_mb, 0,
          "memory the server may hold for its peers, all connections together (0: a quarter "
          "of the machine's memory, between 64 MiB and 1 GiB)");
ABSL_FLAG(int64_t, output_high_watermark_kb, 0,
          "unsent answers above this stop reading the connection (0: 4096)");
ABSL_FLAG(int64_t, output_low_watermark_kb, 0, "reading resumes below this (0: 1024)");
ABSL_FLAG(int, max_in_flight_per_connection, 0, "calls handled at once per connection (0: 256)");
ABSL_FLAG(int64_t, max_queued_calls, 0, "calls waiting for a worker (0: 10000)");
ABSL_FLAG(int, max_concurrency, 0, "calls handled at once, server-wide (0: unlimited)");
ABSL_FLAG(int64_t, max_body_mb, 0, "largest frame body accepted (0: 64)");
ABSL_FLAG(int64_t, max_decompressed_mb, 0, "largest decompressed payload (0: 64)");
ABSL_FLAG(int64_t, read_timeout_ms, -1,
          "close a connection whose partial frame gets no byte for this long (0: never; -1: "
          "30000)");
ABSL_FLAG(int64_t, write_timeout_ms, -1,
          "close a connection whose answers make no progress for this long (0: never; -1: "
          "30000)");
ABSL_FLAG(int64_t, idle_timeout_ms, -1,
          "close a connection silent both ways this long (0 or -1: "
          "never)");
ABSL_FLAG(bool, release_memory_after_bursts, true,
          "trim caches and return free memory to the system after a burst");

ABSL_FLAG(bool, method_metrics, true, "per-method metrics (/metrics, /status)");
ABSL_FLAG(int, noop_interceptors, 0,
          "install this many server interceptors that do nothing (to measure the chain's cost)");
ABSL_FLAG(int, trace_per_second, -1,
          "traces sampled per second at the edge (-1: the default, 100; 0: none)");

namespace examples {
namespace {

// An interceptor that does nothing: the cost of the chain itself.
class NoopInterceptor : public nprpc::ServerInterceptor {};

// -1: keep; 0: infinite; else milliseconds.
void SetTimeout(int64_t ms, absl::Duration& timeout) {
  if (ms < 0) return;
  timeout = ms == 0 ? absl::InfiniteDuration() : absl::Milliseconds(ms);
}

}  // namespace

nprpc::ServerOptions ServerOptionsFromFlags() {
  nprpc::ServerOptions options;
  options.num_worker_threads = absl::GetFlag(FLAGS_threads);
  options.num_io_loops = absl::GetFlag(FLAGS_io_loops);
  options.handler_threads = absl::GetFlag(FLAGS_handler_threads).value;
  if (int us = absl::GetFlag(FLAGS_busy_poll_us); us >= 0) {
    options.io_busy_poll = absl::Microseconds(us);
    options.worker_busy_poll = absl::Microseconds(us);
  }
  constexpr size_t kKiB = 1024;
  constexpr size_t kMiB = 1024 * 1024;
  if (int64_t mb = absl::GetFlag(FLAGS_memory_budget_mb); mb > 0) {
    options.memory_budget_bytes = static_cast<size_t>(mb) * kMiB;
  }
  if (int64_t kb = absl::GetFlag(FLAGS_output_high_watermark_kb); kb > 0) {
    options.output_high_watermark = static_cast<size_t>(kb) * kKiB;
  }
  if (int64_t kb = absl::GetFlag(FLAGS_output_low_watermark_kb); kb > 0) {
    options.output_low_watermark = static_cast<size_t>(kb) * kKiB;
  }
  if (int n = absl::GetFlag(FLAGS_max_in_flight_per_connection); n > 0) {
    options.max_in_flight_per_connection = n;
  }
  if (int64_t n = absl::GetFlag(FLAGS_max_queued_calls); n > 0) {
    options.max_queued_calls = static_cast<size_t>(n);
  }
  options.max_concurrency = absl::GetFlag(FLAGS_max_concurrency);
  if (int64_t mb = absl::GetFlag(FLAGS_max_body_mb); mb > 0) {
    options.max_body_size = static_cast<size_t>(mb) * kMiB;
  }
  if (int64_t mb = absl::GetFlag(FLAGS_max_decompressed_mb); mb > 0) {
    options.max_decompressed_size = static_cast<size_t>(mb) * kMiB;
  }
  SetTimeout(absl::GetFlag(FLAGS_read_timeout_ms), options.read_timeout);
  SetTimeout(absl::GetFlag(FLAGS_write_timeout_ms), options.write_timeout);
  SetTimeout(absl::GetFlag(FLAGS_idle_timeout_ms), options.idle_timeout);
  options.release_memory_after_bursts = absl::GetFlag(FLAGS_release_memory_after_bursts);
  options.method_metrics = absl::GetFlag(FLAGS_method_metrics);
  for (int i = 0; i < absl::GetFlag(FLAGS_noop_interceptors); ++i) {
    options.interceptors.push_back(std::make_shared<NoopInterceptor>());
  }
  if (int n = absl::GetFlag(FLAGS_trace_per_second); n >= 0) {
    nprpc::TracingOptions tracing = nprpc::CurrentTracingOptions();
    tracing.max_sampled_per_second = n;
    nprpc::ConfigureTracing(tracing);
  }
  return options;
}

}  // namespace examples
