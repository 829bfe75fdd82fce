#!/usr/bin/env bash
# RPC benchmark: nprpc vs gRPC C++, side by side in one run.
#
# For every point (payload bytes x concurrency) it starts a fresh nprpc echo
# server (//examples:rpc_echo_server) and runs //bench:rpc_bench against it,
# then a fresh gRPC echo server (//bench:grpc_echo_server) and runs
# //bench:grpc_bench against it with the same flags; each server's peak RSS
# therefore belongs to that point alone. Prints one table with both and the
# ratios, then the verdicts against the targets of issue 4.
#
# Usage: bench/run_rpc_bench.sh [options]
#   --points "16:1 16:16 16:128 4096:128"   payload:concurrency points
#   --duration 5            measured seconds per point and side
#   --warmup 1              warm-up seconds per point and side
#   --channels 1            client channel objects (both sides)
#   --connection-type single   rpc_bench --connection_type
#   --nprpc-flags "..."     extra rpc_echo_server flags (e.g. "--threads=2")
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
channels=1
connection_type=single
nprpc_flags=""
pin=0
json_out=""
build=1
while [ $# -gt 0 ]; do
  case "$1" in
    --points) points="$2"; shift 2 ;;
    --duration) duration="$2"; shift 2 ;;
    --warmup) warmup="$2"; shift 2 ;;
    --channels) channels="$2"; shift 2 ;;
    --connection-type) connection_type="$2"; shift 2 ;;
    --nprpc-flags) nprpc_flags="$2"; shift 2 ;;
    --pin) pin=1; shift ;;
    --json) json_out="$2"; shift 2 ;;
    --no-build) build=0; shift ;;
    -h|--help) sed -n '2,25p' "$0"; exit 0 ;;
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

# nprpc_qps/grpc_qps per point, for the verdicts.
declare -A qps_ratio p50_ratio nprpc_rss

echo "# $(date -u '+%Y-%m-%d %H:%M UTC')  $(nproc) CPUs  $(uptime | sed 's/.*load/load/')"
echo "# nprpc vs gRPC C++, loopback; clients and servers share the machine (pin=$pin);"
echo "# duration=${duration}s warmup=${warmup}s channels=$channels connection_type=$connection_type"
echo "# noisy machine: compare the two sides within this run only"
fmt='%7s %5s | %9s %9s %6s | %8s %8s %6s | %8s %8s | %7s %7s | %7s %7s | %9s %9s | %7s\n'
# shellcheck disable=SC2059  # the format is ours
printf "$fmt" payload conc nprpc_qps grpc_qps ratio np_p50us gr_p50us ratio np_p99us \
  gr_p99us np_err gr_err np_srv% gr_srv% np_peakKiB gr_peakKiB oth_cpu%
for point in $points; do
  payload="${point%%:*}"
  c="${point##*:}"
  # shellcheck disable=SC2086  # extra server flags split on purpose
  start_server "$(binary //examples:rpc_echo_server)" $nprpc_flags
  np="$(run_client "$(binary //bench:rpc_bench)" "$payload" "$c" \
    --connection_type="$connection_type")"
  stop_server
  start_server "$(binary //bench:grpc_echo_server)"
  gr="$(run_client "$(binary //bench:grpc_bench)" "$payload" "$c")"
  stop_server
  if [ -n "$json_out" ]; then
    [ -n "$np" ] && echo "$np" >>"$json_out"
    [ -n "$gr" ] && echo "$gr" >>"$json_out"
  fi
  qps_ratio[$point]="$(ratio "$(field qps "$np")" "$(field qps "$gr")")"
  p50_ratio[$point]="$(ratio "$(field p50_us "$np")" "$(field p50_us "$gr")")"
  nprpc_rss[$point]="$(field server_peak_rss_kib "$np")"
  # The busier of the two runs' "rest of the machine" figures.
  oth="$(awk -v a="$(field others_cpu_pct "$np")" -v b="$(field others_cpu_pct "$gr")" \
    'BEGIN { printf "%.0f", (a + 0 > b + 0) ? a : b }')"
  # shellcheck disable=SC2059
  printf "$fmt" "$payload" "$c" "$(field qps "$np")" "$(field qps "$gr")" \
    "${qps_ratio[$point]}" "$(field p50_us "$np")" "$(field p50_us "$gr")" \
    "${p50_ratio[$point]}" "$(field p99_us "$np")" "$(field p99_us "$gr")" \
    "$(field errors "$np")" "$(field errors "$gr")" "$(field server_cpu_pct "$np")" \
    "$(field server_cpu_pct "$gr")" "${nprpc_rss[$point]}" \
    "$(field server_peak_rss_kib "$gr")" "$oth"
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
echo "# targets (issue 4), ratios nprpc/gRPC from this run"
verdict "QPS ratio 16 B C=128" "${qps_ratio[16:128]:-}" ">=" 4
verdict "QPS ratio 16 B C=16" "${qps_ratio[16:16]:-}" ">=" 1.7
verdict "QPS ratio 4 KiB C=128" "${qps_ratio[4096:128]:-}" ">=" 2
verdict "QPS ratio 16 B C=1" "${qps_ratio[16:1]:-}" ">=" 1.4
verdict "p50 ratio 16 B C=1" "${p50_ratio[16:1]:-}" "<=" 0.7
# The larger of the C=128 points' peaks.
rss_mb="$(awk -v a="${nprpc_rss[16:128]:-}" -v b="${nprpc_rss[4096:128]:-}" \
  'BEGIN { k = (a + 0 > b + 0) ? a : b; if (k == "") print ""; else printf "%.1f", k / 1024 }')"
verdict "nprpc server peak RSS MB, C=128" "$rss_mb" "<=" 12
echo "# done: $(uptime | sed 's/.*load/load/')"
