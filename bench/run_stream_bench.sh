#!/usr/bin/env bash
# Streaming throughput on one stream: nprpc's gRPC protocol vs gRPC C++, in
# one run. Starts the interop servers of both (tests/interop/), then for
# each direction (server streams to the client, client streams to the
# server) and payload (16 B, 4 KiB) runs bench/stream_bench against nprpc's
# and bench/grpc_stream_bench against gRPC C++'s. Loopback only; run it
# under `flock /tmp/bench.lock` and compare the two sides within one run.
#
# Usage: bench/run_stream_bench.sh [--no-build]
set -euo pipefail
cd "$(dirname "$0")/.."
targets=(//tests/interop:nprpc_interop_server //tests/interop:grpc_cpp_server
         //bench:stream_bench //bench:grpc_stream_bench)
[ "${1:-}" = "--no-build" ] || bazel build --config=opt "${targets[@]}" >&2
bin="$(bazel info --config=opt bazel-bin 2>/dev/null)"
logs="$(mktemp -d)"
"$bin/tests/interop/nprpc_interop_server" --port=0 >"$logs/nprpc.log" 2>&1 &
nprpc_pid=$!
"$bin/tests/interop/grpc_cpp_server" --port=0 >"$logs/grpc.log" 2>&1 &
grpc_pid=$!
trap 'kill $nprpc_pid $grpc_pid 2>/dev/null; wait 2>/dev/null; rm -rf "$logs"' EXIT
for _ in $(seq 1 100); do
  grep -q "listening on" "$logs/nprpc.log" && grep -q "listening on" "$logs/grpc.log" && break
  sleep 0.1
done
nprpc="$(sed -n 's/.*listening on //p' "$logs/nprpc.log" | head -1)"
grpc="$(sed -n 's/.*listening on //p' "$logs/grpc.log" | head -1)"
echo "# $(date -u '+%F %H:%M UTC') load average: $(cut -d' ' -f1-3 /proc/loadavg)"
for direction in server client; do
  for payload in 16 4096; do
    messages=200000
    [ "$payload" = 4096 ] && messages=50000
    "$bin/bench/stream_bench" --server="$nprpc" --direction=$direction --payload=$payload \
      --messages=$messages
    "$bin/bench/grpc_stream_bench" --server="$grpc" --direction=$direction --payload=$payload \
      --messages=$messages
  done
done
