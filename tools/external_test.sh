#!/usr/bin/env bash
# Builds examples/external, a user project with its own .proto files, a server
# and a client, the two ways a user would, and runs one call with each build:
#   cmake: netpoll-rpc's CMake build installed into a temporary prefix, the
#          example's CMakeLists.txt on find_package(nprpc) and nprpc_generate()
#          (and nprpc::nprpc_static), plus pkg_config_check.cc compiled with
#          nothing but `pkg-config nprpc`;
#   bazel: examples/external as a workspace of its own (local_repository on
#          this checkout, nprpc_cc_library from @netpoll_rpc), with its own
#          output base under /tmp so the main workspace's server is untouched.
#
#   tools/external_test.sh [cmake|bazel]   (default: both)
set -euo pipefail
cd "$(dirname "$0")/.."
root="$(pwd)"
which="${1:-all}"
work="$(mktemp -d /tmp/nprpc-external.XXXXXX)"
output_base=/tmp/nprpc-external-bazel
server_pid=""
cleanup() {
  [ -n "${server_pid}" ] && kill "${server_pid}" 2>/dev/null
  rm -rf "${work}"
}
trap cleanup EXIT
start=$(date +%s)
step() { echo "=== external: $* ($(($(date +%s) - start))s)"; }

# one_call <server> <client> <name>: the server on 127.0.0.1 port 0, one call
# from the client, then both must have exited 0.
one_call() {
  local server="$1" client="$2" name="$3" out="${work}/server.out" address=""
  "${server}" 127.0.0.1:0 >"${out}" 2>&1 &
  server_pid=$!
  for _ in $(seq 1 200); do
    address="$(sed -n 's/^listening on //p' "${out}")"
    [ -n "${address}" ] && break
    sleep 0.05
  done
  [ -n "${address}" ] || { echo "FAIL: ${server} did not start"; cat "${out}"; exit 1; }
  reply="$("${client}" "${address}" "${name}")" || { echo "FAIL: ${client} failed"; exit 1; }
  [ "${reply}" = "Hello, ${name}!" ] || { echo "FAIL: unexpected reply '${reply}'"; exit 1; }
  for _ in $(seq 1 200); do
    kill -0 "${server_pid}" 2>/dev/null || break
    sleep 0.05
  done
  kill -0 "${server_pid}" 2>/dev/null && { echo "FAIL: ${server} did not exit"; exit 1; }
  local rc=0
  wait "${server_pid}" || rc=$?
  server_pid=""
  [ "${rc}" -eq 0 ] || { echo "FAIL: ${server} exited ${rc}"; cat "${out}"; exit 1; }
  echo "${reply}"
}

tools/setup.sh

if [ "${which}" != bazel ]; then
  prefix="${work}/prefix"
  step "cmake: configure and build netpoll-rpc"
  cmake -S . -B "${work}/nprpc" -G Ninja >/dev/null
  cmake --build "${work}/nprpc" -j2
  step "cmake: install into ${prefix}"
  cmake --install "${work}/nprpc" --prefix "${prefix}" >/dev/null
  step "cmake: the example on find_package(nprpc)"
  cmake -S examples/external -B "${work}/example" -G Ninja \
    -DCMAKE_PREFIX_PATH="${prefix}" >/dev/null
  cmake --build "${work}/example" -j2
  one_call "${work}/example/greet_server" "${work}/example/greet_client" cmake
  "${work}/example/version_static"
  ! ldd "${work}/example/version_static" | grep -q libnprpc || { echo "FAIL: not static"; exit 1; }
  step "cmake: pkg_config_check.cc through pkg-config"
  export PKG_CONFIG_PATH="${prefix}/lib/pkgconfig"
  # shellcheck disable=SC2046  # pkg-config's flags are meant to split
  c++ -std=c++20 examples/external/pkg_config_check.cc -o "${work}/pkg_config_check" \
    $(pkg-config --cflags --libs nprpc)
  LD_LIBRARY_PATH="${prefix}/lib" "${work}/pkg_config_check"
fi

if [ "${which}" != cmake ]; then
  step "bazel: examples/external as its own workspace"
  cd "${root}/examples/external"
  bazel --output_base="${output_base}" build --symlink_prefix=/ //...
  bin="$(bazel --output_base="${output_base}" info bazel-bin 2>/dev/null)"
  one_call "${bin}/greet/server" "${bin}/greet/client" bazel
  bazel --output_base="${output_base}" shutdown
  cd "${root}"
fi

step "PASS"
