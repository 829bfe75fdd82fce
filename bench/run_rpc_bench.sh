#!/usr/bin/env bash
# RPC benchmark: nprpc vs gRPC C++, side by side in one run.
#
# For every point (payload bytes x concurrency) it starts a fresh nprpc echo
# server (//examples:rpc_echo_server) and runs //bench:rpc_bench against it,
# then a fresh gRPC echo server (//bench:grpc_echo_server) and runs
# //bench:grpc_bench against it with the same flags; each server's peak RSS
# therefore belongs to that point alone. Prints one table with both and the
# ratios, then the verdicts against the targets of issue 4. With --rounds N
# the whole list of points is run N times (interleaved, so slow phases of a
# noisy machine hit both sides) and the verdicts use the median ratio.
#
# Columns: qps and latency per side and nprpc/gRPC ratios; err = failed
# calls; srv% = server CPU (% of one core); us/call = server CPU
# microseconds per call (srv% / qps: less sensitive to the machine's noise
# than qps); peakKiB = server VmHWM; oth% = CPU the rest of the machine
# took during the window (the larger of the two sides).
#
# Usage: bench/run_rpc_bench.sh [options]
#   --points "16:1 16:16 16:128 4096:128"   payload:concurrency points
#   --duration 5            measured seconds per point and side
#   --warmup 1              warm-up seconds per point and side
#   --rounds 1              repeat every point this many times
#   --channels 1            client channel objects (both sides)
#   --connection-type single   rpc_bench --connection_type
#   --nprpc-flags "..."     rpc_echo_server flags (default "--inline_handlers")
#   --client-flags "..."    extra rpc_bench flags, e.g. "--compress=snappy"
#   --no-grpc               nprpc only (gRPC columns empty, no verdicts)
#   --pin                   servers on CPU 0, clients on CPU 1
#   --json FILE             append the clients' raw JSON lines to FILE
#   --no-build              use the binaries already built
#
# Environment: BAZEL_OUTPUT_BASE=dir runs bazel with --output_base=dir.
#
# The machine is noisy (2 shared cores, client and server on the same
# cores, other engineers' builds): compare nprpc with gRPC only within one
# run; the oth_cpu% column says how much the rest of the machine took.
set -euo pipefail
cd "$(dirname "$0")/.."

points="16:1 16:16 16:128 4096:128"
duration=5
warmup=1
rounds=1
channels=1
connection_type=single
# Echo handlers never block, so nprpc runs them on its I/O loop, as gRPC's
# callback API runs its reactors on gRPC's own threads. Pass
# --nprpc-flags "" to measure the worker-pool hand-off instead.
nprpc_flags="--inline_handlers"
client_flags=""
grpc=1
pin=0
json_out=""
build=1
while [ $# -gt 0 ]; do
  case "$1" in
    --points) points="$2"; shift 2 ;;
    --duration) duration="$2"; shift 2 ;;
    --warmup) warmup="$2"; shift 2 ;;
    --rounds) rounds="$2"; shift 2 ;;
    --channels) channels="$2"; shift 2 ;;
    --connection-type) connection_type="$2"; shift 2 ;;
    --nprpc-flags) nprpc_flags="$2"; shift 2 ;;
    --client-flags) client_flags="$2"; shift 2 ;;
    --no-grpc) grpc=0; shift ;;
    --pin) pin=1; shift ;;
    --json) json_out="$2"; shift 2 ;;
    --no-build) build=0; shift ;;
    -h|--help) sed -n '2,38p' "$0"; exit 0 ;;
    *) echo "unknown option $1" >&2; exit 2 ;;
  esac
done

bazel_cmd=(bazel)
[ -n "${BAZEL_OUTPUT_BASE:-}" ] && bazel_cmd+=(--output_base="$BAZEL_OUTPUT_BASE")
labels=(//bench:rpc_bench //bench:grpc_bench //bench:grpc_echo_server //examples:rpc_echo_server)
if [ "$build" = 1 ]; then
  "${bazel_cmd[@]}" build --config=opt "${labels[@]}" >&2
fi
bin_dir="$("${bazel_cmd[@]}" info --config=opt bazel-bin 2>/dev/null)"
binary() { local l="${1#//}"; echo "$bin_dir/${l/://}"; }  # //a/b:c -> bin/a/b/c

server_cpu=()
client_cpu=()
if [ "$pin" = 1 ]; then
  server_cpu=(taskset -c 0)
  client_cpu=(taskset -c 1)
fi

work="$(mktemp -d)"
server_pid=""
stop_server() {
  if [ -n "$server_pid" ]; then
    kill "$server_pid" 2>/dev/null || true
    wait "$server_pid" 2>/dev/null || true
    server_pid=""
  fi
}
trap 'stop_server; rm -rf "$work"' EXIT
trap 'exit 130' INT TERM

# start_server BINARY [FLAGS...]: starts it on an ephemeral port, sets
# server_pid and server_port.
start_server() {
  local bin="$1"
  shift
  : >"$work/server.out"  # exists before the background child opens it
  "${server_cpu[@]}" "$bin" --listen=127.0.0.1:0 "$@" >"$work/server.out" 2>"$work/server.err" &
  server_pid=$!
  server_port=""
  for _ in $(seq 100); do
    server_port="$(sed -n 's/^listening on 127\.0\.0\.1:\([0-9][0-9]*\)$/\1/p' "$work/server.out" || true)"
    [ -n "$server_port" ] && return 0
    kill -0 "$server_pid" 2>/dev/null || break
    sleep 0.1
  done
  echo "$bin did not print 'listening on 127.0.0.1:PORT':" >&2
  cat "$work/server.err" >&2
  exit 1
}

# check_server NAME: says on stderr when the server under test died or was
# told to stop during the run (its last output lines show why).
check_server() {
  if ! kill -0 "$server_pid" 2>/dev/null || grep -q '^signal' "$work/server.out"; then
    echo "# $1 server (pid $server_pid) stopped during the run:" >&2
    tail -3 "$work/server.out" "$work/server.err" >&2
  fi
}

# run_client BINARY PAYLOAD CONCURRENCY [FLAGS...]: one JSON line on stdout.
run_client() {
  local bin="$1" payload="$2" c="$3"
  shift 3
  "${client_cpu[@]}" "$bin" --server="127.0.0.1:$server_port" --payload="$payload" \
    --concurrency="$c" --duration="$duration" --warmup="$warmup" --channels="$channels" \
    --server_pid="$server_pid" --json "$@" 2>"$work/client.err" || {
    echo "$(basename "$bin") failed at payload=$payload C=$c:" >&2
    tail -5 "$work/client.err" >&2
  }
}

field() { sed -n "s/.*\"$1\":\"\{0,1\}\([^,\"}]*\).*/\1/p" <<<"$2"; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (a == "" || b == "" || b + 0 == 0) print "n/a"; else printf "%.2f", a / b }'; }
# Server CPU microseconds per call from a JSON line.
cpu_per_call() {
  awk -v c="$(field server_cpu_pct "$1")" -v q="$(field qps "$1")" \
    'BEGIN { if (c == "" || c == "null" || q + 0 == 0) print "n/a"; else printf "%.1f", c * 1e4 / q }'
}
# median VALUES...: the median of the numeric values ("n/a" ignored).
median() {
  printf '%s\n' "$@" | grep -v '^n/a$' | sort -g |
    awk '{ v[NR] = $1 } END { if (NR == 0) print "n/a"; else if (NR % 2) print v[(NR + 1) / 2]; else printf "%.2f", (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}

# Per point, space-separated values of every round, for the verdicts.
declare -A qps_ratio p50_ratio nprpc_rss

echo "# $(date -u '+%Y-%m-%d %H:%M UTC')  $(nproc) CPUs  $(uptime | sed 's/.*load/load/')"
echo "# nprpc vs gRPC C++, loopback; clients and servers share the machine (pin=$pin);"
echo "# duration=${duration}s warmup=${warmup}s rounds=$rounds channels=$channels connection_type=$connection_type client_flags=$client_flags"
echo "# noisy machine: compare the two sides within this run only"
fmt='%7s %5s | %9s %9s %6s | %8s %8s %6s | %8s %8s | %6s %6s | %6s %6s | %7s %7s %6s | %9s %9s | %5s\n'
# shellcheck disable=SC2059  # the format is ours
printf "$fmt" payload conc nprpc_qps grpc_qps ratio np_p50us gr_p50us ratio np_p99us \
  gr_p99us np_err gr_err np_srv% gr_srv% np_us/c gr_us/c ratio np_peakKiB gr_peakKiB oth%
for _ in $(seq "$rounds"); do
for point in $points; do
  payload="${point%%:*}"
  c="${point##*:}"
  # shellcheck disable=SC2086  # extra server flags split on purpose
  start_server "$(binary //examples:rpc_echo_server)" $nprpc_flags
  # shellcheck disable=SC2086  # extra client flags split on purpose
  np="$(run_client "$(binary //bench:rpc_bench)" "$payload" "$c" \
    --connection_type="$connection_type" $client_flags)"
  check_server nprpc
  stop_server
  gr=""
  if [ "$grpc" = 1 ]; then
    start_server "$(binary //bench:grpc_echo_server)"
    gr="$(run_client "$(binary //bench:grpc_bench)" "$payload" "$c")"
    check_server gRPC
    stop_server
  fi
  if [ -n "$json_out" ]; then
    [ -n "$np" ] && echo "$np" >>"$json_out"
    [ -n "$gr" ] && echo "$gr" >>"$json_out"
  fi
  qr="$(ratio "$(field qps "$np")" "$(field qps "$gr")")"
  pr="$(ratio "$(field p50_us "$np")" "$(field p50_us "$gr")")"
  # A side with failed calls is not a comparison: keep the row, drop the
  # ratios from the verdicts.
  if [ "$(field errors "$np")" != 0 ] || { [ "$grpc" = 1 ] && [ "$(field errors "$gr")" != 0 ]; }; then
    echo "# payload=$payload C=$c: failed calls, ratios left out of the verdicts" >&2
    qr=n/a
    pr=n/a
  fi
  np_cpu="$(cpu_per_call "$np")"
  gr_cpu="$(cpu_per_call "$gr")"
  qps_ratio[$point]+=" $qr"
  p50_ratio[$point]+=" $pr"
  nprpc_rss[$point]+=" $(field server_peak_rss_kib "$np")"
  # The busier of the two runs' "rest of the machine" figures.
  oth="$(awk -v a="$(field others_cpu_pct "$np")" -v b="$(field others_cpu_pct "$gr")" \
    'BEGIN { printf "%.0f", (a + 0 > b + 0) ? a : b }')"
  # shellcheck disable=SC2059
  printf "$fmt" "$payload" "$c" "$(field qps "$np")" "$(field qps "$gr")" "$qr" \
    "$(field p50_us "$np")" "$(field p50_us "$gr")" "$pr" "$(field p99_us "$np")" \
    "$(field p99_us "$gr")" "$(field errors "$np")" "$(field errors "$gr")" \
    "$(field server_cpu_pct "$np")" "$(field server_cpu_pct "$gr")" "$np_cpu" "$gr_cpu" \
    "$(ratio "$np_cpu" "$gr_cpu")" "$(field server_peak_rss_kib "$np")" \
    "$(field server_peak_rss_kib "$gr")" "$oth"
done
done

# verdict NAME VALUE OP LIMIT: one line, "n/a" when the point was not run.
verdict() {
  local name="$1" value="$2" op="$3" limit="$4"
  if [ -z "$value" ] || [ "$value" = n/a ]; then
    printf '  %-34s %8s  (not measured)\n' "$name" n/a
    return
  fi
  local ok
  ok="$(awk -v v="$value" -v l="$limit" -v op="$op" \
    'BEGIN { print ((op == ">=" && v + 0 >= l + 0) || (op == "<=" && v + 0 <= l + 0)) ? "MET" : "MISSED" }')"
  printf '  %-34s %8s  %s %s  %s\n' "$name" "$value" "$op" "$limit" "$ok"
}
echo
echo "# targets (issue 4): median over $rounds round(s) of nprpc/gRPC ratios from this run"
# shellcheck disable=SC2086  # word lists on purpose
{
  verdict "QPS ratio 16 B C=128" "$(median ${qps_ratio[16:128]:-n/a})" ">=" 4
  verdict "QPS ratio 16 B C=16" "$(median ${qps_ratio[16:16]:-n/a})" ">=" 1.7
  verdict "QPS ratio 4 KiB C=128" "$(median ${qps_ratio[4096:128]:-n/a})" ">=" 2
  verdict "QPS ratio 16 B C=1" "$(median ${qps_ratio[16:1]:-n/a})" ">=" 1.4
  verdict "p50 ratio 16 B C=1" "$(median ${p50_ratio[16:1]:-n/a})" "<=" 0.7
}
# The largest nprpc peak of the C=128 points, over all rounds.
# shellcheck disable=SC2086
rss_mb="$(printf '%s\n' ${nprpc_rss[16:128]:-} ${nprpc_rss[4096:128]:-} | awk NF | sort -g |
  tail -1 | awk '{ printf "%.1f", $1 / 1024 }')"
[ -n "$rss_mb" ] || rss_mb=n/a  # no C=128 point in this run
verdict "nprpc server peak RSS MB, C=128" "$rss_mb" "<=" 12
echo "# done: $(uptime | sed 's/.*load/load/')"
