// Command-line flags for nprpc::ServerOptions, shared by the example servers:
// every limit of the server (threads, memory budget, backpressure, timeouts,
// frame sizes) can be set without recompiling. Defaults are ServerOptions'
// own (0 or -1 below means "keep the default").
//
//   nprpc::Server server(examples::ServerOptionsFromFlags());
//
//   --threads --io_loops --busy_poll_us --handler_threads=adaptive|pool|loop
//   --memory_budget_mb --output_high_watermark_kb --output_low_watermark_kb
//   --max_in_flight_per_connection --max_queued_calls --max_concurrency
//   --max_body_mb --max_decompressed_mb
//   --read_timeout_ms --write_timeout_ms --idle_timeout_ms
//   --release_memory_after_bursts
//
// docs/reliability.md explains each limit and its default.
//
// Thread safety: call after absl::ParseCommandLine, from main().
#ifndef EXAMPLES_SERVER_FLAGS_H_
#define EXAMPLES_SERVER_FLAGS_H_

#include "rpc/server_options.h"

namespace examples {

nprpc::ServerOptions ServerOptionsFromFlags();

}  // namespace examples

#endif  // EXAMPLES_SERVER_FLAGS_H_
