#!/usr/bin/env bash
# Installs every Debian package netpoll-rpc needs to build, test and benchmark.
# Idempotent: runs `apt-get update` and `apt-get install` only when a package
# is missing. Installs nothing from anywhere but Debian's archive.
set -euo pipefail

PACKAGES=(
  # Build
  bazel-bootstrap bazel-platforms bazel-skylib bazel-rules-java
  g++ pkg-config clang-format git
  # CMake build and install (CMakeLists.txt, tools/external_test.sh)
  cmake ninja-build
  # clang with the thread-safety analysis (--config=clang), clang-tidy
  # (tools/clang_tidy.sh), clangd for editors (tools/compile_commands.sh)
  clang clang-tidy clangd
  # Libraries (exposed to Bazel by third_party/system_libs.bzl)
  libprotobuf-dev libprotoc-dev protobuf-compiler
  libabsl-dev libgtest-dev libgmock-dev libbenchmark-dev
  libsnappy-dev zlib1g-dev libssl-dev
  # Benchmark baseline only (bench/grpc_*): gRPC C++ and its protoc plugin
  libgrpc++-dev protobuf-compiler-grpc
  # Benchmark report charts (bench/report.sh)
  gnuplot-nox
  # Allocators compared by bench/run_memory_burst.sh (LD_PRELOAD of the
  # runtime libraries libjemalloc2 and libmimalloc2.0 these depend on)
  libjemalloc-dev libmimalloc-dev
  # HTTP/1.1 on the serving port (rpc/internal/http_protocol): the parser
  libhttp-parser-dev
  # Built-in pages, tested for real: promtool and a Prometheus server that
  # scrapes /metrics, curl, and headless Chromium that renders /status
  prometheus curl chromium
  # The JSON call rate (bench/run_json_bench.sh)
  wrk
  # gRPC over HTTP/2: nghttp2 under the protocol; real gRPC peers for the
  # interop tests (C++ from libgrpc++-dev above, Python grpcio with its
  # protoc plugin from protobuf-compiler-grpc)
  libnghttp2-dev python3-grpcio python3-protobuf
  # Discovery through a real etcd (#18), network namespaces for the
  # multi-host test
  etcd-server etcd-client iproute2
)

missing=()
for package in "${PACKAGES[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q 'install ok installed'; then
    missing+=("$package")
  fi
done

if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing ${missing[*]}"
  SUDO=""
  if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
