#!/usr/bin/env bash
# A/B of two builds' rpc_echo_server (and rpc_bench) on one point, interleaved:
# for each round, A then B, each with a fresh server loaded for 6 s after a
# 1 s warm-up; prints QPS, the server's CPU microseconds per call (from
# /proc/PID/stat over the measured window), its peak RSS and where its
# handlers ran. For quick comparisons the full scripts would take too long
# for (busy-poll rules, placement fixes); docs/benchmarks.md says when it was
# used. Loopback only; servers are stopped by a trap.
#
# Usage: bench/ab_binaries.sh DIR_A DIR_B PAYLOAD CONCURRENCY ROUNDS [brpc CLIENT_BINARY]
#   DIR_A, DIR_B: directories holding rpc_echo_server and rpc_bench (copies of
#   bazel-bin/examples/rpc_echo_server and bazel-bin/bench/rpc_bench built with
#   --config=opt); with "brpc CLIENT_BINARY", brpc_bench_client loads the
#   servers instead of rpc_bench.
set -euo pipefail
[ $# -ge 5 ] || { sed -n '2,17p' "$0"; exit 2; }
dir_a="$1" dir_b="$2" payload="$3" conc="$4" rounds="$5"
brpc_client=""
if [ "${6:-}" = brpc ]; then brpc_client="$7"; fi
work="$(mktemp -d)"
server_pid=""
trap '[ -n "$server_pid" ] && kill "$server_pid" 2>/dev/null; rm -rf "$work"' EXIT
hz="$(getconf CLK_TCK)"

cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }

one() {
  local dir="$1" port t0 t1 qps hwm cpid
  "$dir/rpc_echo_server" --listen=127.0.0.1:0 >"$work/server.out" 2>&1 &
  server_pid=$!
  for _ in $(seq 100); do
    port="$(grep -o '127.0.0.1:[0-9]*' "$work/server.out" | head -1 | cut -d: -f2 || true)"
    [ -n "$port" ] && break
    sleep 0.1
  done
  if [ -n "$brpc_client" ]; then
    "$brpc_client" -server="127.0.0.1:$port" -conc="$conc" -payload="$payload" -secs=6 \
      -warmup=1 -connection_type=single >"$work/client.out" 2>&1 &
  else
    "$dir/rpc_bench" --server="127.0.0.1:$port" --concurrency="$conc" --payload="$payload" \
      --duration=6 --warmup=1 >"$work/client.out" 2>&1 &
  fi
  cpid=$!
  sleep 1
  t0="$(cpu_ticks "$server_pid")"
  sleep 6
  t1="$(cpu_ticks "$server_pid")"
  wait "$cpid"
  hwm="$(awk '/VmHWM/ {print $2}' "/proc/$server_pid/status")"
  kill "$server_pid"
  wait "$server_pid" 2>/dev/null || true
  server_pid=""
  qps="$(grep -o '"qps":[0-9.]*\|qps=[0-9.]*' "$work/client.out" | head -1 | grep -o '[0-9.]*$')"
  echo "$dir $payload:$conc qps=$qps server_us_per_call=$(python3 -c \
    "print(round(($t1 - $t0) * 1e6 / $hz / ($qps * 6), 1))") peak_rss_kib=$hwm" \
    "$(grep -E 'calls,|hand-offs' "$work/server.out" | tr '\n' ' ')"
}

for _ in $(seq "$rounds"); do
  one "$dir_a"
  one "$dir_b"
done
