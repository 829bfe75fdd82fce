#!/usr/bin/env bash
# TLS 1.3 vs plaintext on the echo, nprpc (baidu_std: rpc_echo_server,
# rpc_bench) and gRPC C++ (grpc_echo_server, grpc_bench) in one run: each
# point starts a fresh server. Needs the --config=opt binaries (build them
# with bench/run_rpc_bench.sh once). Makes a throwaway CA and server certificate with the openssl
# CLI (SAN DNS:localhost, IP:127.0.0.1). Run under `flock /tmp/bench.lock`.
# POINTS="16:1 4096:128" picks the echo points; NO_SHORT=1 skips the
# short-connection (handshakes per second) part.
set -euo pipefail
cd "$(dirname "$0")/.."
C="$(mktemp -d)"
trap 'rm -rf "$C"' EXIT
openssl req -x509 -newkey rsa:2048 -nodes -keyout "$C/ca.key" -out "$C/ca.pem" -days 1 \
  -subj "/CN=nprpc-bench-ca" 2>/dev/null
openssl req -newkey rsa:2048 -nodes -keyout "$C/server.key" -out "$C/server.csr" \
  -subj "/CN=localhost" 2>/dev/null
printf "subjectAltName=DNS:localhost,IP:127.0.0.1\n" >"$C/ext.cnf"
openssl x509 -req -in "$C/server.csr" -CA "$C/ca.pem" -CAkey "$C/ca.key" -CAcreateserial \
  -out "$C/server.pem" -days 1 -extfile "$C/ext.cnf" 2>/dev/null
B="$(bazel info --config=opt bazel-bin 2>/dev/null)"
# One line per (side, mode, payload, concurrency): the client's JSON report.
# $5: connection type (single, or short: a connection per call); $6: more
# client flags.
run() { # side mode payload conc [type [flags]]
  side=$1; mode=$2; p=$3; c=$4; ctype=${5:-single}; extra=${6:-}; log="$C/server.log"
  sflags=""; cflags=""
  [ $mode != plain ] && sflags="--tls_cert=$C/server.pem --tls_key=$C/server.key" && cflags="--tls_ca=$C/ca.pem --tls_server_name=localhost"
  if [ $side = nprpc ]; then
    $B/examples/rpc_echo_server --listen=127.0.0.1:0 $sflags > $log 2>&1 & pid=$!
    client=$B/bench/rpc_bench
  else
    $B/bench/grpc_echo_server --listen=127.0.0.1:0 $sflags > $log 2>&1 & pid=$!
    client=$B/bench/grpc_bench
  fi
  for i in $(seq 1 100); do grep -q "listening on" $log && break; sleep 0.05; done
  addr=$(sed -n 's/.*listening on //p' $log | head -1)
  [ $side = grpc ] && addr=$(echo $addr | sed 's/^127.0.0.1/localhost/')
  out=$($client --server=$addr --payload=$p --concurrency=$c --duration=3 --warmup=1 --server_pid=$pid --json --connection_type=$ctype $cflags $extra 2>/dev/null | tail -1 || true)
  kill $pid; wait $pid 2>/dev/null || true
  [ -n "$out" ] || out='{"failed":true}'
  echo "$side $mode $p $c $out"
}
# The tables, from the lines run() printed: `summary.py echo|short FILE`.
cat >"$C/summary.py" <<'PY'
import json, sys

def load(path):  # (side, mode, payload, concurrency) -> the client's report
    rows = {}
    for line in open(path):
        side, mode, p, c, js = line.split(" ", 4)
        try:
            rows[(side, mode, int(p), int(c))] = json.loads(js)
        except ValueError:
            pass
    return rows

def per_call(r, who="server"):  # server (or client) CPU microseconds per call
    return r[who + "_cpu_pct"] / 100 * r["window_s"] / max(r["requests"], 1) * 1e6

kind, rows = sys.argv[1], load(sys.argv[2])
if kind == "echo":
    print("| payload, C | nprpc QPS plain / TLS (ratio) | gRPC QPS plain / TLS (ratio) | nprpc/gRPC plain -> TLS "
          "| p50 us nprpc plain / TLS, gRPC plain / TLS | server us/call nprpc plain / TLS, gRPC plain / TLS "
          "| client us/call nprpc plain / TLS, gRPC plain / TLS |")
    print("|---|---|---|---|---|---|---|")
    for (p, c) in sorted({(k[2], k[3]) for k in rows}):
        a, b, x, y = (rows.get((side, mode, p, c)) for side in ("nprpc", "grpc") for mode in ("plain", "tls"))
        if not all(r and "qps" in r for r in (a, b, x, y)):
            print(f"| {p} B, {c} | failed | | | | | |")
            continue
        print(f"| {p} B, {c} | {a['qps']:,} / {b['qps']:,} ({b['qps']/a['qps']:.2f}) "
              f"| {x['qps']:,} / {y['qps']:,} ({y['qps']/x['qps']:.2f}) "
              f"| {a['qps']/x['qps']:.2f}x -> {b['qps']/y['qps']:.2f}x "
              f"| {a['p50_us']} / {b['p50_us']}, {x['p50_us']} / {y['p50_us']} "
              f"| {per_call(a):.1f} / {per_call(b):.1f}, {per_call(x):.1f} / {per_call(y):.1f} "
              f"| {per_call(a, 'client'):.1f} / {per_call(b, 'client'):.1f}, "
              f"{per_call(x, 'client'):.1f} / {per_call(y, 'client'):.1f} |")
else:
    print("| short connections, 16 B, C=16 | connections/s | p50 us | server us/call |")
    print("|---|---|---|---|")
    for (side, mode, _, _), r in rows.items():
        if "qps" not in r:
            print(f"| {side} {mode} | failed | | |")
            continue
        print(f"| {side} {mode} | {r['qps']:,} | {r['p50_us']} | {per_call(r):.1f} |")
PY
POINTS=${POINTS:-"16:1 16:16 16:128 4096:1 4096:16 4096:128"}
out="$C/results"
for pt in $POINTS; do
  p=${pt%%:*}; c=${pt##*:}
  for side in nprpc grpc; do for mode in plain tls; do run $side $mode $p $c | tee -a "$out"; done; done
done
# The summary: per point and side, TLS/plain QPS and what each costs.
python3 "$C/summary.py" echo "$out"
# Short connections (a connection and, over TLS, a handshake per call), 16 B,
# C=16: nprpc plaintext, TLS resuming sessions (its client's default), TLS
# with full handshakes; gRPC C++ plaintext and TLS (a channel per call: full
# handshakes, gRPC keeps no session cache across channels).
if [ -z "${NO_SHORT:-}" ]; then
  short="$C/short"
  run nprpc plain 16 16 short | tee -a "$short"
  run nprpc tls 16 16 short | tee -a "$short"
  run nprpc tls-full 16 16 short --tls_resume=false | tee -a "$short"
  run grpc plain 16 16 short | tee -a "$short"
  run grpc tls-full 16 16 short | tee -a "$short"
  python3 "$C/summary.py" short "$short"
fi
