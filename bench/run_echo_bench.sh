#!/usr/bin/env bash
# Transport echo benchmark: runs //bench:echo_load against one or more echo
# servers and prints a table. Each data point gets a freshly started server (so
# its peak RSS belongs to that point alone), on an ephemeral loopback port.
#
# Usage: bench/run_echo_bench.sh [options] SERVER...
#   SERVER                one of the names in SERVERS below (default: epoll threaded)
#   --conns "1 16 128 1000"   connection counts
#   --payloads "16"           payload sizes in bytes, e.g. "16 4096"
#   --duration 5              measured seconds per point
#   --warmup 1                warm-up seconds per point
#   --client-threads 1        echo_load --threads
#   --idle N                  also measure server RSS per idle connection at N
#   --pin                     pin the server to CPU 0 and echo_load to CPU 1
#   --json FILE               append echo_load's raw JSON lines to FILE
#   --no-build                use the binaries already built
#
# Environment: BAZEL_OUTPUT_BASE=dir runs bazel with --output_base=dir (default:
# bazel's normal output base); EPOLL_THREADS=n for the epoll server and
# NETPOLL_LOOPS=n for the netpoll server (default 1 each); NETPOLL_BUSY_POLL_US=us
# for the netpoll server's busy poll (default: off, netpoll's default).
#
# Every server must take --listen=127.0.0.1:0 and print
# "listening on 127.0.0.1:PORT" on stdout once it accepts connections.
set -euo pipefail
cd "$(dirname "$0")/.."

# name -> "bazel label [server flags]". Adding a server is one line here.
declare -A SERVERS=(
  [epoll]="//bench:epoll_echo_server --threads=${EPOLL_THREADS:-1}"
  [threaded]="//bench:threaded_echo_server"
  [netpoll]="//examples:raw_echo_server --loops=${NETPOLL_LOOPS:-1}${NETPOLL_BUSY_POLL_US:+ --busy_poll_us=$NETPOLL_BUSY_POLL_US}"
)

conns="1 16 128 1000"
payloads="16"
duration=5
warmup=1
client_threads=1
idle=0
pin=0
json_out=""
build=1
names=()
while [ $# -gt 0 ]; do
  case "$1" in
    --conns) conns="$2"; shift 2 ;;
    --payloads) payloads="$2"; shift 2 ;;
    --duration) duration="$2"; shift 2 ;;
    --warmup) warmup="$2"; shift 2 ;;
    --client-threads) client_threads="$2"; shift 2 ;;
    --idle) idle="$2"; shift 2 ;;
    --pin) pin=1; shift ;;
    --json) json_out="$2"; shift 2 ;;
    --no-build) build=0; shift ;;
    -h|--help) sed -n '2,23p' "$0"; exit 0 ;;
    -*) echo "unknown option $1" >&2; exit 2 ;;
    *) names+=("$1"); shift ;;
  esac
done
[ ${#names[@]} -eq 0 ] && names=(epoll threaded)
for name in "${names[@]}"; do
  if [ -z "${SERVERS[$name]:-}" ]; then
    echo "unknown server '$name'; known: ${!SERVERS[*]}" >&2
    exit 2
  fi
done

bazel_cmd=(bazel)
[ -n "${BAZEL_OUTPUT_BASE:-}" ] && bazel_cmd+=(--output_base="$BAZEL_OUTPUT_BASE")
labels=(//bench:echo_load)
for name in "${names[@]}"; do
  read -r label _ <<<"${SERVERS[$name]}"
  labels+=("$label")
done
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

# start_server NAME: starts it, sets server_pid and server_port.
start_server() {
  local label args
  read -r label args <<<"${SERVERS[$1]}"
  # Created here: the background child may open its redirections after we first look.
  : >"$work/server.out"
  # shellcheck disable=SC2086  # args are flags, split on purpose
  "${server_cpu[@]}" "$(binary "$label")" --listen=127.0.0.1:0 $args >"$work/server.out" \
    2>"$work/server.err" &
  server_pid=$!
  server_port=""
  for _ in $(seq 100); do
    server_port="$(sed -n 's/^listening on 127\.0\.0\.1:\([0-9][0-9]*\)$/\1/p' "$work/server.out" || true)"
    [ -n "$server_port" ] && return 0
    kill -0 "$server_pid" 2>/dev/null || break
    sleep 0.1
  done
  echo "server $1 did not print 'listening on 127.0.0.1:PORT':" >&2
  cat "$work/server.err" >&2
  exit 1
}

field() { sed -n "s/.*\"$1\":\"\{0,1\}\([^,\"}]*\).*/\1/p" <<<"$2"; }

echo "# $(date -u '+%Y-%m-%d %H:%M UTC')  $(nproc) CPUs  $(uptime | sed 's/.*load/load/')"
echo "# client and server share this machine; echo_load --threads=$client_threads, pin=$pin"
# oth_cpu%: CPU used by the rest of the machine during the window; far from 0 = disturbed.
printf '%-9s %7s %6s %10s %9s %9s %9s %7s %8s %8s %8s %10s\n' server payload conns qps \
  p50_us p99_us p999_us errors cli_cpu% srv_cpu% oth_cpu% srv_peakKiB
for name in "${names[@]}"; do
  for payload in $payloads; do
    for c in $conns; do
      start_server "$name"
      line="$("${client_cpu[@]}" "$(binary //bench:echo_load)" --server="127.0.0.1:$server_port" \
        --connections="$c" --payload="$payload" --duration="$duration" --warmup="$warmup" \
        --threads="$client_threads" --server_pid="$server_pid" --json 2>"$work/load.err")" || {
        echo "echo_load failed for $name C=$c:" >&2
        cat "$work/load.err" >&2
      }
      stop_server
      [ -n "$json_out" ] && [ -n "$line" ] && echo "{\"name\":\"$name\",${line#\{}" >>"$json_out"
      printf '%-9s %7s %6s %10s %9s %9s %9s %7s %8s %8s %8s %10s\n' "$name" "$payload" "$c" \
        "$(field qps "$line")" "$(field p50_us "$line")" "$(field p99_us "$line")" \
        "$(field p999_us "$line")" "$(field errors "$line")" "$(field client_cpu_pct "$line")" \
        "$(field server_cpu_pct "$line")" "$(field others_cpu_pct "$line")" \
        "$(field server_peak_rss_kib "$line")"
    done
  done
done

if [ "$idle" -gt 0 ]; then
  echo
  printf '%-9s %7s %9s %7s %12s %12s %10s\n' server idle connected errors rss_beforeKiB \
    rss_afterKiB bytes/conn
  for name in "${names[@]}"; do
    start_server "$name"
    line="$("${client_cpu[@]}" "$(binary //bench:echo_load)" --server="127.0.0.1:$server_port" \
      --idle_connections="$idle" --duration="$duration" --threads="$client_threads" \
      --server_pid="$server_pid" --json 2>"$work/load.err")" || {
      echo "echo_load --idle_connections failed for $name:" >&2
      cat "$work/load.err" >&2
    }
    stop_server
    [ -n "$json_out" ] && [ -n "$line" ] && echo "{\"name\":\"$name\",${line#\{}" >>"$json_out"
    printf '%-9s %7s %9s %7s %12s %12s %10s\n' "$name" "$idle" "$(field connected "$line")" \
      "$(field errors "$line")" "$(field server_rss_before_kib "$line")" \
      "$(field server_rss_after_kib "$line")" "$(field rss_per_conn_bytes "$line")"
  done
fi
echo "# done: $(uptime | sed 's/.*load/load/')"
