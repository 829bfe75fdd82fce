#!/usr/bin/env bash
# Regenerates docs/benchmarks.md and its charts (docs/img/bench_*.png) from one
# run of the benchmark tools:
#   - the transport echo comparison, netpoll vs the minimal epoll loop vs
#     thread-per-connection (bench/run_echo_bench.sh), and RSS per idle
#     connection;
#   - nprpc vs gRPC C++ (bench/run_rpc_bench.sh);
#   - nprpc's connection types (single, pooled, short) and request compression
#     (none, snappy, gzip, zlib);
#   - the target points again in 5 interleaved rounds (the verdicts use the
#     median);
# over concurrency 1/16/128/1024 and payloads 16 B/4 KiB/64 KiB. The raw JSON
# lines, the machine, the load average and the exact commands go into a run
# directory; bench/report_gen.py turns them into the page (tables, verdicts,
# gnuplot charts) through bench/report_template.md.
#
# Usage: bench/report.sh [options]
#   --quick          short windows and fewer points (about 2 minutes), to try it out
#   --no-wait        do not wait for a quiet machine (load average < 1.5)
#   --no-build       use the binaries already built
#   --run-dir DIR    keep the raw data in DIR (default: a temporary directory, removed)
#   --from DIR       only regenerate the page from an earlier --run-dir
#   --out FILE       the page (default docs/benchmarks.md)
#   --img-dir DIR    the charts (default docs/img)
#   --brpc-dir DIR   also the brpc baseline in the nprpc vs gRPC sweep and rounds
#                    (bench/run_rpc_bench.sh --brpc-dir: DIR holds brpc_echo_server
#                    and brpc_bench_client, built outside the repository)
#
# The full run takes about 25 minutes on the 2-core development VM.
# Environment: BAZEL_OUTPUT_BASE=dir runs bazel with --output_base=dir (passed
# on to the two run scripts).
#
# Installs what it needs through tools/setup.sh (Debian packages, including
# gnuplot-nox; apt-get runs only when one is missing). Loopback only; every
# server is started and stopped by the run scripts (traps: none is left).
set -euo pipefail
caller_dir="$PWD"  # a relative --brpc-dir is relative to it
cd "$(dirname "$0")/.."

quick=0
wait_quiet=1
build=1
run_dir=""
from=""
out=docs/benchmarks.md
img_dir=docs/img
brpc_dir=""
args=("$@")
while [ $# -gt 0 ]; do
  case "$1" in
    --quick) quick=1; shift ;;
    --no-wait) wait_quiet=0; shift ;;
    --no-build) build=0; shift ;;
    --run-dir) run_dir="$2"; shift 2 ;;
    --from) from="$2"; shift 2 ;;
    --out) out="$2"; shift 2 ;;
    --img-dir) img_dir="$2"; shift 2 ;;
    --brpc-dir) brpc_dir="$2"; shift 2 ;;
    -h|--help) sed -n '2,35p' "$0"; exit 0 ;;
    *) echo "unknown option $1" >&2; exit 2 ;;
  esac
done

generate() {
  python3 bench/report_gen.py --run-dir "$1" --template bench/report_template.md --out "$out" \
    --img-dir "$img_dir"
  echo "report: wrote $out and $img_dir/bench_*.png" >&2
}

if [ -n "$from" ]; then
  generate "$from"
  exit 0
fi

if [ "$quick" = 1 ]; then
  duration=1
  warmup=0.5
  echo_points="16:1 16:128 4096:128"
  idle=1000
  rpc_points="16:1 16:16 16:128 4096:128"
  conn_points="16:16"
  compress_points="4096:16"
  rounds=2
  round_duration=1
  round_warmup=0.5
  max_wait=0
else
  duration=10
  warmup=2
  echo_points=""
  for p in 16 4096 65536; do
    for c in 1 16 128 1024; do echo_points+=" $p:$c"; done
  done
  idle=10000
  rpc_points="$echo_points"
  conn_points="16:1 16:16 16:128"
  compress_points="4096:16 65536:16"
  rounds=5
  round_duration=5
  round_warmup=1
  max_wait=600
fi
# The points the targets of issues 3 and 4 name; measured again in rounds.
target_echo_conns=1024
target_rpc_points="16:1 16:16 16:128 4096:128"
[ "$wait_quiet" = 0 ] && max_wait=0

tools/setup.sh >&2

keep=1
if [ -z "$run_dir" ]; then
  run_dir="$(mktemp -d)"
  keep=0
fi
mkdir -p "$run_dir"
rm -f "$run_dir"/*.jsonl "$run_dir"/meta.txt "$run_dir"/commands.txt
cleanup() { [ "$keep" = 1 ] || rm -rf "$run_dir"; }
trap cleanup EXIT
trap 'exit 130' INT TERM

load1() { cut -d' ' -f1 /proc/loadavg; }
loadavg() { cut -d' ' -f1-3 /proc/loadavg | sed 's/ /, /g'; }
meta() { printf '%s=%s\n' "$1" "$2" >>"$run_dir/meta.txt"; }
# shell_words ARGS...: the arguments as one would type them (single quotes
# around any with characters other than [A-Za-z0-9_./:=@,+-]).
shell_words() {
  local out="" a
  for a in "$@"; do
    if [[ "$a" =~ ^[A-Za-z0-9_./:=@,+-]+$ ]]; then out+=" $a"; else out+=" '${a//\'/\'\\\'\'}'"; fi
  done
  echo "${out# }"
}
# run CMD...: records the command (as typed, from the repository root) and runs it.
run() {
  local env=""
  [ -n "${BAZEL_OUTPUT_BASE:-}" ] && env="BAZEL_OUTPUT_BASE=$BAZEL_OUTPUT_BASE "
  echo "$env$(shell_words "$@")" >>"$run_dir/commands.txt"
  echo "report: $*" >&2
  "$@"
}

bazel_cmd=(bazel)
[ -n "${BAZEL_OUTPUT_BASE:-}" ] && bazel_cmd+=(--output_base="$BAZEL_OUTPUT_BASE")
if [ "$build" = 1 ]; then
  "${bazel_cmd[@]}" build --config=opt //bench:echo_load //bench:epoll_echo_server \
    //bench:threaded_echo_server //examples:raw_echo_server //bench:rpc_bench //bench:grpc_bench \
    //bench:grpc_echo_server //examples:rpc_echo_server >&2
fi

# The brpc baseline's flags for the two run_rpc_bench.sh calls that compare
# servers side by side (the sweep and the rounds).
brpc_args=()
if [ -n "$brpc_dir" ]; then
  brpc_dir="$(cd "$caller_dir" && cd "$brpc_dir" && pwd)"
  brpc_args=(--brpc-dir "$brpc_dir")
  meta brpc_dir "$brpc_dir"
fi

# Wait (bounded) for the other tenants' builds to finish.
waited=0
while [ "$waited" -lt "$max_wait" ] &&
  awk -v l="$(load1)" 'BEGIN { exit !(l + 0 >= 1.5) }'; do
  echo "report: load average $(loadavg); waiting for < 1.5 (${waited}s of ${max_wait}s)" >&2
  sleep 30
  waited=$((waited + 30))
done

meta mode "$([ "$quick" = 1 ] && echo quick || echo full)"
meta command "bench/report.sh${args[*]:+ ${args[*]}}"
meta started_utc "$(date -u '+%Y-%m-%d %H:%M UTC')"
meta commit "$(git rev-parse --short HEAD)"
meta commit_subject "$(git log -1 --format=%s | awk '{ print (length($0) > 100 ? substr($0, 1, 100) "…" : $0) }')"
meta commit_date "$(git log -1 --format=%cd --date=format:'%Y-%m-%d %H:%M')"
# Uncommitted edits in the tree (other engineers work in the same checkout).
meta dirty_files "$(git status --porcelain --untracked-files=no | wc -l)"
meta nproc "$(nproc)"
meta cpu_model "$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -1)"
meta mem "$(awk '/^MemTotal/ { printf "%.0f GiB", $2 / 1048576 }' /proc/meminfo)"
meta kernel "$(uname -sr)"
meta os "$(. /etc/os-release && echo "$PRETTY_NAME")"
meta compiler "$(g++ --version | head -1)"
meta waited_s "$waited"
meta load_before "$(loadavg)"
meta duration_s "$duration"
meta warmup_s "$warmup"
meta idle_connections "$idle"

# Transport echo: one invocation per point, so the three servers run back to
# back at every point (a slow phase of the machine hits all three).
meta load_echo "$(loadavg)"
for point in $echo_points; do
  run bench/run_echo_bench.sh --no-build --payloads "${point%%:*}" --conns "${point##*:}" \
    --duration "$duration" --warmup "$warmup" --json "$run_dir/echo.jsonl" netpoll epoll threaded >&2
done
run bench/run_echo_bench.sh --no-build --conns "" --idle "$idle" --duration "$duration" \
  --json "$run_dir/echo.jsonl" netpoll epoll threaded >&2

# nprpc vs gRPC: the script alternates the two at every point.
meta load_rpc "$(loadavg)"
run bench/run_rpc_bench.sh --no-build --points "${rpc_points# }" --duration "$duration" \
  --warmup "$warmup" --json "$run_dir/rpc.jsonl" ${brpc_args[@]+"${brpc_args[@]}"} >&2

meta load_conn "$(loadavg)"
for type in single pooled short; do
  run bench/run_rpc_bench.sh --no-build --no-grpc --connection-type "$type" \
    --points "$conn_points" --duration "$duration" --warmup "$warmup" \
    --json "$run_dir/conn_$type.jsonl" >&2
done

meta load_compress "$(loadavg)"
for algo in none snappy gzip zlib; do
  run bench/run_rpc_bench.sh --no-build --no-grpc --client-flags "--compress=$algo" \
    --points "$compress_points" --duration "$duration" --warmup "$warmup" \
    --json "$run_dir/compress_$algo.jsonl" >&2
done

# The target points again, in interleaved rounds: the verdicts use the median.
meta load_rounds "$(loadavg)"
meta rounds "$rounds"
for i in $(seq 1 "$rounds"); do
  run bench/run_echo_bench.sh --no-build --payloads 16 --conns "$target_echo_conns" \
    --duration "$round_duration" --warmup "$round_warmup" --json "$run_dir/round${i}_echo.jsonl" \
    netpoll epoll threaded >&2
  run bench/run_rpc_bench.sh --no-build --points "$target_rpc_points" --duration "$round_duration" \
    --warmup "$round_warmup" --json "$run_dir/round${i}_rpc.jsonl" \
    ${brpc_args[@]+"${brpc_args[@]}"} >&2
done

meta load_after "$(loadavg)"
meta finished_utc "$(date -u '+%Y-%m-%d %H:%M UTC')"
generate "$run_dir"
[ "$keep" = 1 ] && echo "report: raw data in $run_dir" >&2
exit 0
