#!/usr/bin/env bash
# The demo: installs what is missing, builds optimized, then on loopback
# (ephemeral ports):
#   1. the microservices demo (examples/microservices/run_demo.sh): catalog,
#      pricing and a coroutine gateway that calls both concurrently; sample
#      quotes, a load with per-hop latencies, a stopped service and recovery;
#   2. the RPC echo server and the interop client, which runs every case of
#      the brpc wire vectors (tests/data/baidu_std/README.md) over the three
#      connection types;
#   3. a JSON call over HTTP/1.1 to the same port with curl, and its /health
#      and /metrics pages;
#   4. the raw netpoll echo server and client.
# Every process it starts is stopped on exit.
set -euo pipefail
cd "$(dirname "$0")/.."
tools/setup.sh
bazel build --config=opt //examples/...
BIN="$(bazel info --config=opt bazel-bin)/examples"

echo "== Microservices: gateway -> (catalog || pricing)"
MS="$BIN/microservices"
examples/microservices/run_demo.sh "$MS/catalog_server" "$MS/pricing_server" \
  "$MS/gateway_server" "$MS/shop_client"

pids=()
cleanup() { for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; done; }
trap cleanup EXIT

# Starts "$@" in the background and sets $address to the address it reports.
# Not run in $(...): the pid must reach this shell's cleanup.
address=""
start_server() {
  local out; out=$(mktemp)
  "$@" >"$out" 2>&1 &
  pids+=($!)
  for _ in $(seq 1 100); do
    if grep -q 'listening on' "$out"; then
      address=$(grep -oE 'listening on \S+' "$out" | awk '{print $3}')
      return
    fi
    sleep 0.05
  done
  echo "server did not start: $*" >&2; cat "$out" >&2; exit 1
}

echo "== RPC: example.EchoService over baidu_std"
start_server "$BIN/rpc_echo_server" --listen=127.0.0.1:0
rpc=$address
echo "server on $rpc"
for type in single pooled short; do
  echo "-- connection type: $type"
  "$BIN/rpc_echo_client" --server="$rpc" --connection_type="$type"
done

echo "== The same port over HTTP/1.1: a JSON call and the built-in pages"
echo "-- curl -d '{\"message\":\"hi\"}' http://$rpc/example.EchoService/Echo"
curl -sS -d '{"message":"hi"}' "http://$rpc/example.EchoService/Echo"
echo "-- curl http://$rpc/health"
curl -sS "http://$rpc/health"
echo "-- curl http://$rpc/metrics (the Echo method's series)"
curl -sS "http://$rpc/metrics" | grep 'method="example.EchoService/Echo"' | grep -v '^#'

echo "== netpoll: raw byte echo"
start_server "$BIN/raw_echo_server" --listen=127.0.0.1:0
raw=$address
"$BIN/raw_echo_client" --server="$raw" --message="hello netpoll" --count=5
echo "demo: done"
