#!/usr/bin/env bash
# The JSON call rate: wrk (Debian's) POSTs JSON EchoRequests to
# /example.EchoService/Echo of the default nprpc echo server over HTTP/1.1
# keep-alive connections, and for comparison //bench:rpc_bench makes the same
# calls over baidu_std, against a fresh server each, at each connection
# count. One wrk thread, like rpc_bench's one channel; closed loop (wrk keeps
# one request in flight per connection).
#
# Usage: bench/run_json_bench.sh [--conns "1 16 128"] [--payload 16]
#                                [--duration 8] [--no-build]
# Prints, per connection count: JSON qps, p50 and p99 (wrk), and baidu_std
# qps (rpc_bench at concurrency = connections) with the ratio.
set -euo pipefail
cd "$(dirname "$0")/.."

conns="1 16 128"
payload=16
duration=8
build=1
while [ $# -gt 0 ]; do
  case "$1" in
    --conns) conns="$2"; shift 2 ;;
    --payload) payload="$2"; shift 2 ;;
    --duration) duration="$2"; shift 2 ;;
    --no-build) build=0; shift ;;
    *) echo "unknown option $1" >&2; exit 2 ;;
  esac
done
command -v wrk >/dev/null || { echo "wrk missing: run tools/setup.sh" >&2; exit 1; }
if [ "$build" = 1 ]; then
  bazel build --config=opt //examples:rpc_echo_server //bench:rpc_bench >&2
fi
bin="$(bazel info --config=opt bazel-bin 2>/dev/null)"
work="$(mktemp -d)"
server_pid=""
cleanup() {
  [ -n "$server_pid" ] && kill "$server_pid" 2>/dev/null && wait "$server_pid" 2>/dev/null
  rm -rf "$work"
}
trap cleanup EXIT

start_server() {
  : >"$work/server.out"
  "$bin/examples/rpc_echo_server" --listen=127.0.0.1:0 >"$work/server.out" 2>"$work/server.err" &
  server_pid=$!
  port=""
  for _ in $(seq 100); do
    port="$(sed -n 's/^listening on 127\.0\.0\.1:\([0-9][0-9]*\)$/\1/p' "$work/server.out")"
    [ -n "$port" ] && return 0
    sleep 0.1
  done
  echo "the server did not start" >&2
  tail -5 "$work/server.err" >&2
  exit 1
}
stop_server() {
  kill "$server_pid" 2>/dev/null || true
  wait "$server_pid" 2>/dev/null || true
  server_pid=""
}

printf '%6s %12s %10s %10s %14s %8s\n' conns json_qps p50_us p99_us baidu_std_qps ratio
for c in $conns; do
  start_server
  json="$(PAYLOAD="$payload" wrk -t1 -c"$c" -d"${duration}s" --latency \
    -s bench/json_echo.lua "http://127.0.0.1:$port/example.EchoService/Echo" |
    grep '^JSON ')"
  stop_server
  start_server
  rpc="$("$bin/bench/rpc_bench" --server="127.0.0.1:$port" --concurrency="$c" \
    --payload="$payload" --duration="$duration" --warmup=1 --json)"
  stop_server
  jq_qps="$(echo "$json" | awk '{print $7}')"
  p50="$(echo "$json" | awk '{print $9}')"
  p99="$(echo "$json" | awk '{print $11}')"
  errors="$(echo "$json" | awk '{print $5}')"
  rpc_qps="$(echo "$rpc" | sed -n 's/.*"qps":\([0-9.]*\).*/\1/p')"
  ratio="$(awk -v a="$jq_qps" -v b="$rpc_qps" 'BEGIN { if (b > 0) printf "%.2f", a / b }')"
  printf '%6s %12s %10s %10s %14.0f %8s\n' "$c" "$jq_qps" "$p50" "$p99" "$rpc_qps" "$ratio"
  [ "$errors" = 0 ] || echo "  wrk counted $errors errors at $c connections" >&2
done
