#!/usr/bin/env bash
# Memory after a burst, per allocator (issue 12, "give memory back").
#
# For every allocator variant it starts a fresh //examples:rpc_echo_server on
# 127.0.0.1 (an ephemeral port) with that variant's environment (LD_PRELOAD,
# MALLOC_*), runs //bench:memory_burst against it (idle baseline, a burst of
# large calls, then idle: the server's VmRSS sampled every 100 ms) and stops
# it; --rounds N repeats the whole list N times, interleaved. Then, unless
# --no-tput, the throughput of each variant: 16 B echo at C=128 with
# //bench:rpc_bench, the command bench/run_rpc_bench.sh runs for that point
# (server --handler_threads=loop, --channels=1 --connection_type=single), in
# --tput-rounds interleaved rounds of --tput-duration seconds.
#
# Variants (all by environment; the server binary is the same):
#   glibc             glibc malloc, defaults
#   glibc_arena2      MALLOC_ARENA_MAX=2
#   glibc_trim1s      LD_PRELOAD=libmalloc_trim_shim.so: malloc_trim(0) every 1 s
#   glibc_trim_idle   the shim, MALLOC_TRIM_SHIM_IDLE=1 every 500 ms: one malloc_trim(0)
#                     in the first 500 ms tick with < 5 % CPU after busy ones
#   glibc_trim_once   the shim with no timer: one malloc_trim(0) when the burst's
#                     last answer is in (memory_burst --signal_after_burst=SIGUSR1),
#                     timed: the trim_ms column (memory only, no throughput run)
#   jemalloc          LD_PRELOAD=libjemalloc.so.2 (Debian's libjemalloc2), defaults
#   jemalloc_decay1s  + MALLOC_CONF=background_thread:true,dirty_decay_ms:1000,muzzy_decay_ms:1000
#   jemalloc_decay1s_m0  + MALLOC_CONF=background_thread:true,dirty_decay_ms:1000,muzzy_decay_ms:0
#   mimalloc          LD_PRELOAD=libmimalloc.so.2 (Debian's libmimalloc2.0, 2.0.9), defaults
#   mimalloc_delay0   + MIMALLOC_DECOMMIT_DELAY=0 MIMALLOC_SEGMENT_DECOMMIT_DELAY=0
#                     (2.0.x names; MIMALLOC_RESET_DELAY is the deprecated alias of
#                     the first, MIMALLOC_PURGE_DELAY exists only from 2.1)
#
# Memory columns (MiB, VmRSS): base = idle with the burst's connections open,
# before the burst; peak = the largest sample; hwm = VmHWM at the end;
# end = when the burst's last answer came in; +1s ... +10s after that;
# near_ms = ms until the RSS was within 4 MiB of base (-1: not within 10 s);
# ok/fail = burst calls; trim_ms = the longest logged malloc_trim(0) call
# (shim variants; see the server's stderr under the log directory).
# Throughput columns: qps per round and their median, server CPU us per call
# (median), server VmHWM, and others' CPU % (the rest of the machine).
#
# Usage: bench/run_memory_burst.sh [options] [VARIANT...]
#   --rounds 2                memory runs per variant (interleaved rounds; 0: throughput only)
#   --tput-rounds 3           throughput rounds (interleaved)
#   --tput-duration 5         measured seconds per throughput run (warm-up 1 s)
#   --no-tput                 memory only
#   --server-flags "..."      rpc_echo_server flags for the memory runs (default: none,
#                             the server's defaults: handlers on the worker pool)
#   --tput-server-flags "..." rpc_echo_server flags for throughput (default
#                             "--handler_threads=loop", as bench/run_rpc_bench.sh)
#   --burst-flags "..."       extra memory_burst flags (e.g. "--close_after_burst")
#   --json FILE               append the raw JSON lines to FILE
#   --log-dir DIR             keep every server's and client's output there
#   --no-build                use the binaries already built
#
# Take the benchmark lock around the whole run on a shared machine:
#   flock /tmp/bench.lock bench/run_memory_burst.sh --no-build
# Environment: BAZEL_OUTPUT_BASE=dir runs bazel with --output_base=dir.
set -euo pipefail
cd "$(dirname "$0")/.."

all_variants="glibc glibc_arena2 glibc_trim1s glibc_trim_idle glibc_trim_once jemalloc jemalloc_decay1s jemalloc_decay1s_m0 mimalloc mimalloc_delay0"
rounds=2
tput_rounds=3
tput_duration=5
tput=1
server_flags=""
tput_server_flags="--handler_threads=loop"
burst_flags=""
json_out=""
log_dir=""
build=1
variants=()
while [ $# -gt 0 ]; do
  case "$1" in
    --rounds) rounds="$2"; shift 2 ;;
    --tput-rounds) tput_rounds="$2"; shift 2 ;;
    --tput-duration) tput_duration="$2"; shift 2 ;;
    --no-tput) tput=0; shift ;;
    --server-flags) server_flags="$2"; shift 2 ;;
    --tput-server-flags) tput_server_flags="$2"; shift 2 ;;
    --burst-flags) burst_flags="$2"; shift 2 ;;
    --json) json_out="$2"; shift 2 ;;
    --log-dir) log_dir="$2"; shift 2 ;;
    --no-build) build=0; shift ;;
    -h|--help) sed -n '2,55p' "$0"; exit 0 ;;
    -*) echo "unknown option $1" >&2; exit 2 ;;
    *) variants+=("$1"); shift ;;
  esac
done
# shellcheck disable=SC2206  # word list on purpose
[ ${#variants[@]} -gt 0 ] || variants=($all_variants)

bazel_cmd=(bazel)
[ -n "${BAZEL_OUTPUT_BASE:-}" ] && bazel_cmd+=(--output_base="$BAZEL_OUTPUT_BASE")
labels=(//examples:rpc_echo_server //bench:memory_burst //bench:rpc_bench //bench:libmalloc_trim_shim.so)
if [ "$build" = 1 ]; then
  "${bazel_cmd[@]}" build --config=opt "${labels[@]}" >&2
fi
bin_dir="$("${bazel_cmd[@]}" info --config=opt bazel-bin 2>/dev/null)"
server_bin="$bin_dir/examples/rpc_echo_server"
burst_bin="$bin_dir/bench/memory_burst"
load_bin="$bin_dir/bench/rpc_bench"
shim="$bin_dir/bench/libmalloc_trim_shim.so"

# The Debian allocators' shared objects (empty when not installed).
lib_of() { dpkg -L "$1" 2>/dev/null | grep -m1 "/$2\$" || true; }
jemalloc_so="$(lib_of libjemalloc2 libjemalloc.so.2)"
mimalloc_so="$(lib_of libmimalloc2.0 libmimalloc.so.2)"

# variant_env NAME: the variant's environment, one VAR=value per line;
# fails when its library is missing.
variant_env() {
  case "$1" in
    glibc) ;;
    glibc_arena2) echo MALLOC_ARENA_MAX=2 ;;
    glibc_trim1s) echo "LD_PRELOAD=$shim"; echo MALLOC_TRIM_SHIM_INTERVAL_MS=1000 ;;
    glibc_trim_idle)
      echo "LD_PRELOAD=$shim"; echo MALLOC_TRIM_SHIM_INTERVAL_MS=500; echo MALLOC_TRIM_SHIM_IDLE=1 ;;
    glibc_trim_once) echo "LD_PRELOAD=$shim"; echo MALLOC_TRIM_SHIM_INTERVAL_MS=0 ;;
    jemalloc|jemalloc_decay1s|jemalloc_decay1s_m0)
      [ -n "$jemalloc_so" ] || { echo "libjemalloc2 is not installed (tools/setup.sh)" >&2; return 1; }
      echo "LD_PRELOAD=$jemalloc_so"
      case "$1" in
        jemalloc_decay1s) echo MALLOC_CONF=background_thread:true,dirty_decay_ms:1000,muzzy_decay_ms:1000 ;;
        jemalloc_decay1s_m0) echo MALLOC_CONF=background_thread:true,dirty_decay_ms:1000,muzzy_decay_ms:0 ;;
      esac ;;
    mimalloc|mimalloc_delay0)
      [ -n "$mimalloc_so" ] || { echo "libmimalloc2.0 is not installed (tools/setup.sh)" >&2; return 1; }
      echo "LD_PRELOAD=$mimalloc_so"
      if [ "$1" = mimalloc_delay0 ]; then
        echo MIMALLOC_DECOMMIT_DELAY=0
        echo MIMALLOC_SEGMENT_DECOMMIT_DELAY=0
      fi ;;
    *) echo "unknown variant $1 (known: $all_variants)" >&2; return 1 ;;
  esac
}
for v in "${variants[@]}"; do variant_env "$v" >/dev/null || exit 2; done

work="$(mktemp -d)"
[ -n "$log_dir" ] && mkdir -p "$log_dir"
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

# start_server VARIANT [FLAGS...]: starts the server with the variant's
# environment on an ephemeral port; sets server_pid and server_port.
start_server() {
  local variant="$1"
  shift
  local envs=()
  mapfile -t envs < <(variant_env "$variant")
  : >"$work/server.out"
  : >"$work/server.err"
  env "${envs[@]}" "$server_bin" --listen=127.0.0.1:0 "$@" >"$work/server.out" 2>"$work/server.err" &
  server_pid=$!
  server_port=""
  for _ in $(seq 100); do
    server_port="$(sed -n 's/^listening on 127\.0\.0\.1:\([0-9][0-9]*\)$/\1/p' "$work/server.out" || true)"
    [ -n "$server_port" ] && return 0
    kill -0 "$server_pid" 2>/dev/null || break
    sleep 0.1
  done
  echo "server ($variant) did not print 'listening on 127.0.0.1:PORT':" >&2
  cat "$work/server.err" >&2
  exit 1
}

# keep_logs NAME: copies the last run's outputs into --log-dir.
keep_logs() {
  [ -n "$log_dir" ] || return 0
  for f in server.out server.err client.err; do
    [ -f "$work/$f" ] && cp "$work/$f" "$log_dir/$1.$f"
  done
}

field() { sed -n "s/.*\"$1\":\"\{0,1\}\([^,\"}]*\).*/\1/p" <<<"$2"; }
mib() { awk -v k="$1" 'BEGIN { if (k == "" || k == "null") print "n/a"; else printf "%.1f", k / 1024 }'; }
median() {
  printf '%s\n' "$@" | grep -v '^n/a$' | sort -g |
    awk '{ v[NR] = $1 } END { if (NR == 0) print "n/a"; else if (NR % 2) print v[(NR + 1) / 2]; else printf "%.1f", (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}
# The longest malloc_trim(0) the shim logged in the last run, in ms.
trim_ms() {
  sed -n 's/^malloc_trim_shim: trim .* took_us=\([0-9]*\) .*/\1/p' "$work/server.err" |
    sort -g | tail -1 | awk '{ printf "%.2f", $1 / 1000 }'
}

echo "# $(date -u '+%Y-%m-%d %H:%M UTC')  $(nproc) CPUs  $(uptime | sed 's/.*load/load/')"
echo "# commit $(git rev-parse --short HEAD 2>/dev/null || echo '?')$(git diff --quiet 2>/dev/null || echo ' (+ uncommitted edits)')  glibc $(ldd --version | head -1 | awk '{ print $NF }')  jemalloc ${jemalloc_so:-none}  mimalloc ${mimalloc_so:-none}"
echo "# memory: rpc_echo_server ${server_flags:-(default flags)}; memory_burst defaults (64 conns x 32 in flight x 64 KiB, 3 s burst, 10 s after)${burst_flags:+ with $burst_flags}"
fmt='%-20s %2s | %6s %6s %6s %6s | %6s %6s %6s %6s | %6s | %6s %4s | %7s\n'
# shellcheck disable=SC2059
printf "$fmt" variant rd base peak hwm end +1s +2s +5s +10s near_ms ok fail trim_ms
sigusr1="$(kill -l USR1)"
for r in $(seq "$rounds"); do
  for v in "${variants[@]}"; do
    extra=()
    [ "$v" = glibc_trim_once ] && extra+=(--signal_after_burst="$sigusr1")
    # shellcheck disable=SC2086  # extra server flags split on purpose
    start_server "$v" $server_flags
    # shellcheck disable=SC2086  # extra client flags split on purpose
    line="$("$burst_bin" --server="127.0.0.1:$server_port" --server_pid="$server_pid" \
      --label="$v" "${extra[@]}" $burst_flags 2>"$work/client.err")" || {
      echo "# memory_burst failed for $v round $r:" >&2
      tail -5 "$work/client.err" >&2
    }
    stop_server
    keep_logs "mem.$v.r$r"
    [ -n "$json_out" ] && [ -n "$line" ] && echo "$line" >>"$json_out"
    tm="-"
    case "$v" in glibc_trim*) tm="$(trim_ms)" ;; esac
    # shellcheck disable=SC2059
    printf "$fmt" "$v" "$r" "$(mib "$(field baseline_rss_kib "$line")")" \
      "$(mib "$(field peak_rss_kib "$line")")" "$(mib "$(field hwm_kib "$line")")" \
      "$(mib "$(field drained_rss_kib "$line")")" "$(mib "$(field rss_after_1s_kib "$line")")" \
      "$(mib "$(field rss_after_2s_kib "$line")")" "$(mib "$(field rss_after_5s_kib "$line")")" \
      "$(mib "$(field rss_after_10s_kib "$line")")" "$(field near_idle_after_ms "$line")" \
      "$(field burst_ok "$line")" "$(field burst_failed "$line")" "${tm:-n/a}"
  done
done

[ "$tput" = 1 ] || exit 0

echo
echo "# throughput: rpc_bench --payload=16 --concurrency=128 --duration=$tput_duration --warmup=1 --channels=1 --connection_type=single; rpc_echo_server ${tput_server_flags:-(default flags)}; $tput_rounds interleaved rounds"
declare -A qps cpu hwm oth
tput_variants=()
for v in "${variants[@]}"; do
  [ "$v" = glibc_trim_once ] || tput_variants+=("$v")  # steady state = glibc
done
for r in $(seq "$tput_rounds"); do
  for v in "${tput_variants[@]}"; do
    # shellcheck disable=SC2086
    start_server "$v" $tput_server_flags
    line="$("$load_bin" --server="127.0.0.1:$server_port" --payload=16 --concurrency=128 \
      --duration="$tput_duration" --warmup=1 --channels=1 --connection_type=single \
      --server_pid="$server_pid" --json 2>"$work/client.err")" || {
      echo "# rpc_bench failed for $v round $r:" >&2
      tail -5 "$work/client.err" >&2
    }
    stop_server
    keep_logs "tput.$v.r$r"
    [ -n "$json_out" ] && [ -n "$line" ] && echo "{\"label\":\"$v\",${line#\{}" >>"$json_out"
    q="$(field qps "$line")"
    c="$(field server_cpu_pct "$line")"
    qps[$v]+=" ${q:-n/a}"
    cpu[$v]+=" $(awk -v c="$c" -v q="$q" 'BEGIN { if (c == "" || q + 0 == 0) print "n/a"; else printf "%.1f", c * 1e4 / q }')"
    hwm[$v]+=" $(field server_peak_rss_kib "$line")"
    oth[$v]+=" $(field others_cpu_pct "$line")"
  done
done
tfmt='%-20s | %-30s %8s | %8s | %8s | %s\n'
# shellcheck disable=SC2059  # the format is ours
printf "$tfmt" variant "qps per round" median "us/call" "hwm MiB" "oth% per round"
for v in "${tput_variants[@]}"; do
  # shellcheck disable=SC2086  # word lists on purpose
  {
    rounds_qps="$(awk '{ for (i = 1; i <= NF; i++) printf "%s%.0f", (i > 1 ? " " : ""), $i }' <<<"${qps[$v]}")"
    max_hwm="$(printf '%s\n' ${hwm[$v]} | sort -g | tail -1)"
    # shellcheck disable=SC2059
    printf "$tfmt" "$v" "$rounds_qps" "$(median ${qps[$v]} | awk '{ printf "%.0f", $1 }')" \
      "$(median ${cpu[$v]})" "$(mib "$max_hwm")" "${oth[$v]# }"
  }
done
echo "# done: $(uptime | sed 's/.*load/load/')"
