// The command line shared by rpc_bench and grpc_bench, so both clients take
// exactly the same flags:
//
//   --server=127.0.0.1:PORT  --concurrency=C  --payload=BYTES  --duration=S
//   --warmup=S  --connection_type=single  --channels=N  --timeout_ms=MS
//   --server_pid=PID  --think_us=US  --json
//
//   absl::ParseCommandLine(argc, argv);
//   absl::StatusOr<bench::LoadConfig> config = bench::LoadConfigFromFlags();
//
// Thread safety: LoadConfigFromFlags() reads the global flags; call it from
// main() after parsing.
#ifndef BENCH_LOAD_FLAGS_H_
#define BENCH_LOAD_FLAGS_H_

#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "bench/closed_loop.h"
#include "bench/load_report.h"

namespace bench {

struct LoadConfig {
  std::string server;  // "127.x.y.z:port" (loopback only)
  int concurrency = 1;
  int payload = 16;
  double duration_s = 5;
  double warmup_s = 1;
  std::string connection_type = "single";
  int channels = 1;
  absl::Duration timeout = absl::Seconds(5);  // per call
  int server_pid = 0;
  int think_us = 0;  // pause between a slot's calls (paced load); 0: none
  bool json = false;

  ClosedLoopOptions LoopOptions() const;
  // Copies what was run into the result's descriptive fields.
  void Describe(const char* tool, LoadResult* result) const;
};

// Validates the flags (ranges, loopback server). InvalidArgument otherwise.
absl::StatusOr<LoadConfig> LoadConfigFromFlags();

// Prints `result` on stdout (one JSON line or the text report) and returns
// the exit code: 0 when some call succeeded and none is left outstanding.
int PrintLoadResult(const LoadConfig& config, const LoadResult& result);

}  // namespace bench

#endif  // BENCH_LOAD_FLAGS_H_
