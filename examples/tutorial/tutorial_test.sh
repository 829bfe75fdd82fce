#!/bin/bash
# Runs the tutorial: the server on an ephemeral port, then the client.
set -u
server="$1"
client="$2"
out="${TEST_TMPDIR:-/tmp}/greeter_server.out"
"${server}" 127.0.0.1:0 >"${out}" 2>&1 &
pid=$!
trap 'kill ${pid} 2>/dev/null; wait ${pid} 2>/dev/null' EXIT
address=""
for _ in $(seq 1 100); do
  address="$(sed -n 's/^listening on //p' "${out}")"
  [ -n "${address}" ] && break
  sleep 0.05
done
if [ -z "${address}" ]; then
  echo "FAIL: the server did not start"; cat "${out}"; exit 1
fi
result="$("${client}" "${address}" tutorial)" || { echo "FAIL: client failed"; exit 1; }
echo "${result}"
expected="Hello, tutorial!
Hello, tutorial! Hello, tutorial!
Hello, tutorial!
Bonjour, tutorial!
Hola, tutorial!"
if [ "${result}" != "${expected}" ]; then
  echo "FAIL: expected:"; echo "${expected}"; exit 1
fi
echo PASS
