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
# With --brpc-dir DIR (a brpc echo server and load client, as described in
# /work/shared/peers/brpc/README.md; the project does not depend on them),
# every point of every round also runs, each with a fresh server:
#   nprpc_default  rpc_echo_server with no flags + rpc_bench (only when
#                  --nprpc-flags is not empty: otherwise the nprpc pair above
#                  is already the default server)
#   brpc           DIR/brpc_echo_server + DIR/brpc_bench_client
#   brpc_to_nprpc  DIR/brpc_bench_client -> rpc_echo_server with no flags
# For the brpc client the script itself reads the server's CPU
# (/proc/PID/stat, over the client's measured window: from its warm-up's end
# to the end of --duration) and peak RSS (VmHWM) and writes a JSON line of
# rpc_bench's form (tool "brpc_bench"). With --brpc-dir every JSON line
# gets "pair" (nprpc, nprpc_default, grpc, brpc, brpc_to_nprpc) and
# "server_flags", and the run ends with a table of the medians over the
# rounds. The brpc client has one channel: --channels does not apply to it.
#
# Usage: bench/run_rpc_bench.sh [options]
#   --points "16:1 16:16 16:128 4096:128"   payload:concurrency points
#   --duration 5            measured seconds per point and side
#   --warmup 1              warm-up seconds per point and side
#   --rounds 1              repeat every point this many times
#   --channels 1            client channel objects (both sides)
#   --connection-type single   rpc_bench --connection_type
#   --nprpc-flags "..."     rpc_echo_server flags (default none: the default server)
#   --client-flags "..."    extra rpc_bench flags, e.g. "--compress=snappy"
#   --no-grpc               nprpc only (gRPC columns empty, no verdicts)
#   --brpc-dir DIR          also the brpc pairs (see above)
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
caller_dir="$PWD"  # a relative --brpc-dir is relative to it
cd "$(dirname "$0")/.."

points="16:1 16:16 16:128 4096:128"
duration=5
warmup=1
rounds=1
channels=1
connection_type=single
# The server as a user gets it (issue #14): no flags, sync handlers placed
# by ServerOptions::handler_threads = kAdaptive. --nprpc-flags
# "--handler_threads=loop" measures handlers forced onto the loop,
# "--handler_threads=pool" the worker-pool hand-off.
nprpc_flags=""
client_flags=""
grpc=1
pin=0
json_out=""
build=1
brpc_dir=""
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
    --brpc-dir) brpc_dir="$2"; shift 2 ;;
    -h|--help) sed -n '2,54p' "$0"; exit 0 ;;
    *) echo "unknown option $1" >&2; exit 2 ;;
  esac
done

if [ -n "$brpc_dir" ]; then
  brpc_dir="$(cd "$caller_dir" && cd "$brpc_dir" && pwd)"
  for b in brpc_echo_server brpc_bench_client; do
    [ -x "$brpc_dir/$b" ] || { echo "--brpc-dir: no executable $brpc_dir/$b" >&2; exit 2; }
  done
fi

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

# wait_for_port FILE SED_SCRIPT WHAT: waits until SED_SCRIPT prints the port
# the starting server (server_pid) logged to FILE and sets server_port;
# exits with WHAT and the log's tail when it never does.
wait_for_port() {
  local file="$1" script="$2" what="$3"
  server_port=""
  for _ in $(seq 100); do
    server_port="$(sed -n "$script" "$file" || true)"
    [ -n "$server_port" ] && return 0
    kill -0 "$server_pid" 2>/dev/null || break
    sleep 0.1
  done
  echo "$what:" >&2
  tail -5 "$work/server.err" >&2
  exit 1
}

# start_server BINARY [FLAGS...]: starts it on an ephemeral port, sets
# server_pid and server_port.
start_server() {
  local bin="$1"
  shift
  : >"$work/server.out"  # exists before the background child opens it
  "${server_cpu[@]}" "$bin" --listen=127.0.0.1:0 "$@" >"$work/server.out" 2>"$work/server.err" &
  server_pid=$!
  wait_for_port "$work/server.out" 's/^listening on 127\.0\.0\.1:\([0-9][0-9]*\)$/\1/p' \
    "$bin did not print 'listening on 127.0.0.1:PORT'"
}

# start_brpc_server: starts DIR/brpc_echo_server on an ephemeral port (brpc
# logs "Server[...] is serving on port=PORT." to stderr), sets server_pid and
# server_port.
start_brpc_server() {
  : >"$work/server.out"
  : >"$work/server.err"
  "${server_cpu[@]}" "$brpc_dir/brpc_echo_server" -listen_addr=127.0.0.1:0 \
    >"$work/server.out" 2>"$work/server.err" &
  server_pid=$!
  wait_for_port "$work/server.err" 's/.*is serving on port=\([0-9][0-9]*\).*/\1/p' \
    "brpc_echo_server did not log 'is serving on port=PORT'"
}

# cpu_ticks PID: utime + stime of /proc/PID/stat, in clock ticks (fields
# counted after the command name's last ')').
cpu_ticks() { sed 's/.*) //' "/proc/$1/stat" | awk '{ print $12 + $13 }'; }
# busy_ticks: the machine's busy clock ticks (all CPUs; every state of the
# "cpu" line of /proc/stat but idle and iowait), as bench/proc_stats.cc.
busy_ticks() { awk '/^cpu / { s = 0; for (i = 2; i <= NF; i++) if (i != 5 && i != 6 && i <= 9) s += $i; print s; exit }' /proc/stat; }
now_s() { date +%s.%N; }
status_kib() { awk -v k="$2:" '$1 == k { print $2 }' "/proc/$1/status" 2>/dev/null || true; }

# run_brpc_client PAYLOAD CONCURRENCY: runs DIR/brpc_bench_client against the
# running server, reads the server's CPU over the client's measured window
# (from the end of its warm-up for --duration seconds) and its VmHWM at the
# end; one JSON line of rpc_bench's form on stdout (tool "brpc_bench").
run_brpc_client() {
  local payload="$1" c="$2" hz cpid s0 s1 m0 m1 t0 t1 result
  hz="$(getconf CLK_TCK)"
  "${client_cpu[@]}" "$brpc_dir/brpc_bench_client" -server="127.0.0.1:$server_port" \
    -conc="$c" -payload="$payload" -secs="$duration" -warmup="$warmup" \
    -connection_type="$connection_type" >"$work/brpc_client.out" 2>"$work/client.err" &
  cpid=$!
  sleep "$warmup"
  s0="$(cpu_ticks "$server_pid" 2>/dev/null || echo)"; m0="$(busy_ticks)"; t0="$(now_s)"
  sleep "$duration"
  s1="$(cpu_ticks "$server_pid" 2>/dev/null || echo)"; m1="$(busy_ticks)"; t1="$(now_s)"
  if ! wait "$cpid"; then
    echo "brpc_bench_client failed at payload=$payload C=$c:" >&2
    tail -5 "$work/client.err" >&2
    return 0
  fi
  result="$(grep -m1 '^RESULT' "$work/brpc_client.out" || true)"
  if [ -z "$result" ]; then
    echo "brpc_bench_client printed no RESULT line at payload=$payload C=$c:" >&2
    tail -5 "$work/client.err" >&2
    return 0
  fi
  awk -v line="$result" -v hz="$hz" -v s0="$s0" -v s1="$s1" -v m0="$m0" -v m1="$m1" \
    -v t0="$t0" -v t1="$t1" -v port="$server_port" -v ct="$connection_type" \
    -v warmup="$warmup" -v duration="$duration" \
    -v hwm="$(status_kib "$server_pid" VmHWM)" -v rss="$(status_kib "$server_pid" VmRSS)" \
    -v first_error="$(grep -m1 'rpc failed' "$work/client.err" | tr -d '"\134' | cut -c1-200 || true)" '
    function n(v) { return v == "" ? "null" : v }
    BEGIN {
      k = split(line, kv, " ")
      for (i = 2; i <= k; i++) { split(kv[i], p, "="); r[p[1]] = p[2] }
      w = t1 - t0
      srv = (s0 != "" && s1 != "" && w > 0) ? sprintf("%.1f", (s1 - s0) / hz / w * 100) : ""
      cli = (r["secs"] + 0 > 0) ? r["client_cpu_s"] / r["secs"] * 100 : 0
      oth = (srv != "" && w > 0) ? (m1 - m0) / hz / w * 100 - cli - srv : ""
      if (oth != "" && oth < 0) oth = 0
      printf "{\"tool\":\"brpc_bench\",\"server\":\"127.0.0.1:%s\",\"connection_type\":\"%s\",", port, ct
      printf "\"channels\":1,\"concurrency\":%d,\"payload\":%d,\"warmup_s\":%.1f,\"duration_s\":%.2f,", r["conc"], r["payload"], warmup, duration
      printf "\"window_s\":%.2f,\"requests\":%d,\"qps\":%.0f,\"p50_us\":%.1f,\"p99_us\":%.1f,", r["secs"], r["calls"], r["qps"], r["p50_us"], r["p99_us"]
      printf "\"p999_us\":%.1f,\"max_us\":%.1f,\"mean_us\":%.1f,\"errors\":%d,\"undrained\":0,", r["p999_us"], r["max_us"], r["mean_us"], r["errors"]
      printf "\"client_cpu_pct\":%.1f,\"server_cpu_pct\":%s,\"others_cpu_pct\":%s,", cli, n(srv), oth == "" ? "null" : sprintf("%.1f", oth)
      printf "\"server_peak_rss_kib\":%s,\"server_rss_kib\":%s,\"first_error\":\"%s\"}\n", n(hwm), n(rss), first_error
    }'
}

# tag LINE PAIR SERVER_FLAGS: the JSON line with "pair" and "server_flags"
# first (with --brpc-dir only); an empty line stays empty.
tag() {
  [ -n "$1" ] || return 0
  if [ -z "$brpc_dir" ]; then
    echo "$1"
    return 0
  fi
  local flags="${3//\\/\\\\}"
  echo "{\"pair\":\"$2\",\"server_flags\":\"${flags//\"/\\\"}\",${1#\{}"
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
  npd=""
  br=""
  b2n=""
  if [ -n "$brpc_dir" ]; then
    if [ -n "$nprpc_flags" ]; then
      start_server "$(binary //examples:rpc_echo_server)"
      # shellcheck disable=SC2086  # extra client flags split on purpose
      npd="$(run_client "$(binary //bench:rpc_bench)" "$payload" "$c" \
        --connection_type="$connection_type" $client_flags)"
      check_server "nprpc default"
      stop_server
    fi
    start_brpc_server
    br="$(run_brpc_client "$payload" "$c")"
    check_server brpc
    stop_server
    start_server "$(binary //examples:rpc_echo_server)"
    b2n="$(run_brpc_client "$payload" "$c")"
    check_server "nprpc default (brpc client)"
    stop_server
  fi
  tagged="$(tag "$np" nprpc "$nprpc_flags"; tag "$gr" grpc ""; tag "$npd" nprpc_default "";
    tag "$br" brpc ""; tag "$b2n" brpc_to_nprpc "")"
  [ -n "$tagged" ] && echo "$tagged" >>"$work/all.jsonl"
  if [ -n "$json_out" ] && [ -n "$tagged" ]; then
    echo "$tagged" >>"$json_out"
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
if [ -n "$brpc_dir" ]; then
  echo
  echo "# brpc vs nprpc, per round, then the median over $rounds round(s) (the ratio is the median"
  echo "# of the rounds' ratios); us/c = server CPU us per call; MiB = server peak RSS (VmHWM)"
  python3 - "$work/all.jsonl" "$nprpc_flags" <<'PY'
import json, statistics, sys
path, flags = sys.argv[1], sys.argv[2]
rows = {}  # (payload, conc) -> one {pair: row} per round
order = []
for line in open(path):
    r = json.loads(line)
    key = (r["payload"], r["concurrency"])
    if key not in rows:
        rows[key] = []
        order.append(key)
    # The nprpc pair runs first at every point; a pair seen twice also starts
    # a new round (when a round's nprpc run failed).
    if r["pair"] == "nprpc" or not rows[key] or r["pair"] in rows[key][-1]:
        rows[key].append({})
    rows[key][-1][r["pair"]] = r
    if r["pair"] == "nprpc" and not flags:  # the nprpc pair is the default server
        rows[key][-1]["nprpc_default"] = r
def qps(r): return r["qps"] if r and not r["errors"] else None
def lat(r, k): return r[k] if r and not r["errors"] else None
def us(r):
    if not r or r.get("server_cpu_pct") is None or not r["qps"]: return None
    return r["server_cpu_pct"] * 1e4 / r["qps"]
def mib(r):
    return r["server_peak_rss_kib"] / 1024 if r and r.get("server_peak_rss_kib") is not None else None
def med(vs):
    vs = [v for v in vs if v is not None]
    return statistics.median(vs) if vs else None
def f(v, spec): return "n/a" if v is None else format(v, spec)
PAIRS = ("brpc", "nprpc_default", "nprpc", "brpc_to_nprpc")
def ratio(r):
    a, b = qps(r.get("nprpc_default")), qps(r.get("brpc"))
    return a / b if a and b else None
def row(p, c, get, rt, n):
    b, d, i, x = (get(k, qps) for k in PAIRS)
    return (f"{p:7d} {c:5d} | {f(b, '8.0f')} {f(d, '9.0f')} {f(rt, '6.2f')} {f(i, '9.0f')} {f(x, '8.0f')} | "
            + " ".join(f(get(k, lambda r: lat(r, 'p50_us')), '6.0f') for k in PAIRS) + " | "
            + " ".join(f(get(k, lambda r: lat(r, 'p99_us')), '6.0f') for k in PAIRS) + " | "
            + " ".join(f(get(k, us), '5.1f') for k in PAIRS) + " | "
            + " ".join(f(get(k, mib), '5.1f') for k in PAIRS) + f" | {n}")
print(f"# def = rpc_echo_server (no flags), inl = rpc_echo_server {flags or '(no flags)'}, both with rpc_bench;")
print("# brpc = brpc_echo_server + brpc_bench_client; b2n = brpc_bench_client -> rpc_echo_server (no flags)")
print("# the four figures of p50, p99, us/c and MiB: brpc def inl b2n")
hdr = ("payload  conc | brpc_qps   def_qps def/br   inl_qps  b2n_qps | p50_us (4)                "
       "| p99_us (4)                | us/c (4)                | MiB (4)                 | ")
print(hdr + "err")
for n_round in range(max(len(v) for v in rows.values())):
    for (p, c) in order:
        if n_round < len(rows[(p, c)]):
            r = rows[(p, c)][n_round]
            err = sum(x["errors"] for x in r.values())
            print(row(p, c, lambda k, fn, r=r: fn(r.get(k)), ratio(r), err))
print("# medians")
print(hdr + "rounds")
for (p, c) in order:
    rs = rows[(p, c)]
    print(row(p, c, lambda k, fn, rs=rs: med(fn(r.get(k)) for r in rs),
              med(ratio(r) for r in rs), len(rs)))
PY
fi
echo "# done: $(uptime | sed 's/.*load/load/')"
