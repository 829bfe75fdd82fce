// LoadResult: what one closed-loop RPC load run measured, and its two
// renderings, a human-readable report and one JSON line. rpc_bench and
// grpc_bench both print through these, so their outputs have the same fields
// and run_rpc_bench.sh parses them the same way.
//
//   bench::LoadResult r = loop.Run();       // bench/closed_loop.h
//   std::fputs(json ? bench::FormatLoadJson(r).c_str()
//                   : bench::FormatLoadText(r).c_str(), stdout);
//
// Thread safety: plain values and pure functions.
#ifndef BENCH_LOAD_REPORT_H_
#define BENCH_LOAD_REPORT_H_

#include <cstdint>
#include <optional>
#include <string>

namespace bench {

struct LoadResult {
  // What was run.
  std::string tool;  // "rpc_bench", "grpc_bench"
  std::string server;
  std::string connection_type;
  int channels = 0;
  int concurrency = 0;
  int payload = 0;  // request message bytes
  double warmup_s = 0;
  double duration_s = 0;  // the configured measured window

  // Calls that succeeded and completed inside the measured window; their
  // latencies are the percentiles below (microseconds).
  int64_t requests = 0;
  double p50_us = 0;
  double p99_us = 0;
  double p999_us = 0;
  double max_us = 0;
  double mean_us = 0;
  // Failed calls over the whole run (warm-up included), and the first
  // failure's text.
  int64_t errors = 0;
  std::string first_error;
  // Calls still outstanding when the run gave up waiting for them (0 when
  // every call completed).
  int64_t undrained = 0;

  // Percent of one core over the measured window (actual length window_s).
  double window_s = 0;
  double client_cpu_pct = 0;
  std::optional<double> server_cpu_pct;
  // CPU the rest of the machine used during the window; far from 0 means the
  // figures were disturbed. Needs the server's CPU.
  std::optional<double> others_cpu_pct;
  std::optional<int64_t> server_peak_rss_kib;  // VmHWM at the end of the window
  std::optional<int64_t> server_rss_kib;       // VmRSS at the end of the window

  // requests / duration_s (0 when duration_s is 0).
  double qps() const;
};

// Several lines, each ending in '\n'.
std::string FormatLoadText(const LoadResult& r);
// One flat JSON object on one line ending in '\n'; absent values are null.
std::string FormatLoadJson(const LoadResult& r);
// One progress line (with '\n'), printed on stderr once a second.
std::string FormatProgress(double elapsed_s, const char* phase, double qps, int64_t errors,
                           int64_t outstanding);

}  // namespace bench

#endif  // BENCH_LOAD_REPORT_H_
