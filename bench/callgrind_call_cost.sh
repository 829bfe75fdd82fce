#!/usr/bin/env bash
# Instructions per call of the nprpc echo server under callgrind, for
# server configurations given as flag sets (instruction counts are far less
# noisy than QPS; how many calls share a wake-up still varies with timing,
# so run on a quiet machine and compare runs of one configuration).
#
#   bench/callgrind_call_cost.sh [--duration 6] [--concurrency 16] \
#       "off=--method_metrics=false --trace_per_second=0" \
#       "metrics=--trace_per_second=0" ...
#
# Each NAME=FLAGS runs //examples:rpc_echo_server FLAGS --busy_poll_us=0 (a
# busy poll's spins would count) under valgrind --tool=callgrind, loads it
# with //bench:rpc_bench --concurrency=C --duration=D --warmup=0 (client
# metrics and tracing off), stops it with SIGTERM, and prints
#   NAME calls instructions_per_call
# where instructions per call = (total - the total of a run with no calls) /
# calls answered. Build first: bazel build --config=opt
# //examples:rpc_echo_server //bench:rpc_bench.
set -euo pipefail
cd "$(dirname "$0")/.."

duration=6
concurrency=16
configs=()
while [ $# -gt 0 ]; do
  case "$1" in
    --duration) duration="$2"; shift 2 ;;
    --concurrency) concurrency="$2"; shift 2 ;;
    *) configs+=("$1"); shift ;;
  esac
done
command -v valgrind >/dev/null || { echo "valgrind missing" >&2; exit 1; }
bin="$(bazel info --config=opt bazel-bin 2>/dev/null)"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

# run NAME SECONDS FLAGS...: prints "total calls".
run() {
  local name="$1" seconds="$2"
  shift 2
  valgrind --tool=callgrind --callgrind-out-file="$work/$name.cg" \
    "$bin/examples/rpc_echo_server" --listen=127.0.0.1:0 --busy_poll_us=0 "$@" \
    >"$work/$name.log" 2>"$work/$name.err" &
  local pid=$! port=""
  for _ in $(seq 300); do
    port="$(sed -n 's/^listening on 127\.0\.0\.1:\([0-9][0-9]*\)$/\1/p' "$work/$name.log")"
    [ -n "$port" ] && break
    sleep 0.1
  done
  [ -n "$port" ] || { echo "$name: the server did not start" >&2; exit 1; }
  local calls=0
  if [ "$seconds" != 0 ]; then
    calls="$("$bin/bench/rpc_bench" --server="127.0.0.1:$port" --concurrency="$concurrency" \
      --duration="$seconds" --warmup=0 --json --method_metrics=false --trace_per_second=0 \
      2>/dev/null | sed -n 's/.*"requests":\([0-9]*\).*/\1/p')"
  fi
  kill -TERM "$pid"
  wait "$pid" || true
  echo "$(sed -n 's/^summary: \([0-9]*\)$/\1/p' "$work/$name.cg") $calls"
}

read -r idle _ < <(run idle 0 --method_metrics=false --trace_per_second=0)
echo "# idle run (start and stop, no calls): $idle instructions"
printf '%-24s %8s %22s\n' config calls instructions_per_call
for config in "${configs[@]}"; do
  name="${config%%=*}"
  flags="${config#*=}"
  # shellcheck disable=SC2086 # flags are words
  read -r total calls < <(run "$name" "$duration" $flags)
  awk -v n="$name" -v t="$total" -v i="$idle" -v c="$calls" \
    'BEGIN { printf "%-24s %8d %22.0f\n", n, c, (t - i) / c }'
done
