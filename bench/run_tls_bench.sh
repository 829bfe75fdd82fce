#!/usr/bin/env bash
# nprpc echo over TLS 1.3 vs plaintext (baidu_std), one run after the other,
# through bench/run_rpc_bench.sh (built binaries: run it without --no-build
# once first). Makes a throwaway CA and server certificate with the openssl
# CLI (SAN DNS:localhost, IP:127.0.0.1). Run under `flock /tmp/bench.lock`.
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
echo "== plaintext"
bench/run_rpc_bench.sh --no-build --no-grpc --points "16:1 16:16 16:128 4096:128" --duration 3 --warmup 1 2>&1 | grep -E "^ +[0-9]|payload"
echo "== TLS (TLS 1.3, rpc_echo_server --tls_cert, rpc_bench --tls_ca)"
bench/run_rpc_bench.sh --no-build --no-grpc --points "16:1 16:16 16:128 4096:128" --duration 3 --warmup 1 \
  --nprpc-flags "--tls_cert=$C/server.pem --tls_key=$C/server.key" \
  --client-flags "--tls_ca=$C/ca.pem --tls_server_name=localhost" 2>&1 | grep -E "^ +[0-9]|payload"
