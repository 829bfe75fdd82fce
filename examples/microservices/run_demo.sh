#!/usr/bin/env bash
# The microservices demo: catalog, pricing and gateway on ephemeral loopback
# ports; sample quotes; a closed-loop load through the gateway with a per-hop
# summary; pricing stopped (the gateway answers with a clear error within its
# deadline) and restarted on its port (the gateway recovers by itself); then
# a clean shutdown with no process left behind.
#
#   run_demo.sh [--quick] CATALOG_BIN PRICING_BIN GATEWAY_BIN CLIENT_BIN
# tools/demo.sh builds the binaries and runs this; it is also the sh_test
# //examples/microservices:demo_test (with --quick).
set -euo pipefail

duration=3
concurrency=32
if [ "${1:-}" = "--quick" ]; then duration=1; concurrency=8; shift; fi
[ $# -eq 4 ] || { echo "usage: $0 [--quick] CATALOG PRICING GATEWAY CLIENT" >&2; exit 2; }
catalog_bin=$1 pricing_bin=$2 gateway_bin=$3 client_bin=$4

work=$(mktemp -d)
declare -A pids=()
all_pids=()  # every server process ever started, to check none is left
cleanup() {
  for name in "${!pids[@]}"; do kill -TERM "${pids[$name]}" 2>/dev/null || true; done
  for name in "${!pids[@]}"; do wait "${pids[$name]}" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT

# start NAME BINARY ARGS...: starts a server, sets ${addr[NAME]} from its
# "listening on" line.
declare -A addr=()
start() {
  local name=$1; shift
  "$@" >"$work/$name.log" 2>&1 &
  pids[$name]=$!
  all_pids+=($!)
  for _ in $(seq 1 200); do
    if grep -q 'listening on' "$work/$name.log"; then
      addr[$name]=$(grep -oE 'listening on \S+' "$work/$name.log" | tail -1 | awk '{print $3}')
      return
    fi
    if ! kill -0 "${pids[$name]}" 2>/dev/null; then break; fi
    sleep 0.05
  done
  echo "$name did not start:" >&2; cat "$work/$name.log" >&2; exit 1
}

# stop NAME: SIGTERM, wait for a clean exit.
stop() {
  local name=$1 code=0
  kill -TERM "${pids[$name]}"
  wait "${pids[$name]}" || code=$?
  unset "pids[$name]"
  [ "$code" -eq 0 ] || { echo "$name exited with $code" >&2; exit 1; }
}

echo "== starting catalog (sync handlers), pricing (callback), gateway (coroutine fan-out)"
start catalog "$catalog_bin" --listen=127.0.0.1:0
start pricing "$pricing_bin" --listen=127.0.0.1:0
start gateway "$gateway_bin" --listen=127.0.0.1:0 \
  --catalog="${addr[catalog]}" --pricing="${addr[pricing]}" --hop_timeout_ms=300
for name in catalog pricing gateway; do printf '  %-8s %s (pid %s)\n' "$name" "${addr[$name]}" "${pids[$name]}"; done
gw=${addr[gateway]}

echo "== sample quotes (gateway calls catalog and pricing concurrently)"
"$client_bin" --gateway="$gw" --mode=samples

echo "== load: $concurrency calls in flight for ${duration}s through the gateway"
"$client_bin" --gateway="$gw" --mode=load --concurrency="$concurrency" --duration="$duration"

echo "== pricing stopped: the gateway answers with a clear error within its deadline"
pricing_address=${addr[pricing]}
stop pricing
if "$client_bin" --gateway="$gw" --mode=probe --timeout_ms=1000; then
  echo "expected the quote to fail while pricing is down" >&2; exit 1
fi

echo "== pricing restarted on $pricing_address: the gateway recovers by itself"
start pricing "$pricing_bin" --listen="$pricing_address"
"$client_bin" --gateway="$gw" --mode=wait_ok --max_wait_s=10 --timeout_ms=500
"$client_bin" --gateway="$gw" --mode=samples >/dev/null

echo "== shutting down (SIGTERM: graceful, in-flight calls finish)"
for name in gateway pricing catalog; do stop "$name"; done
for pid in "${all_pids[@]}"; do
  if kill -0 "$pid" 2>/dev/null; then echo "process $pid left behind" >&2; exit 1; fi
done
echo "demo: all ${#all_pids[@]} server processes stopped cleanly"

