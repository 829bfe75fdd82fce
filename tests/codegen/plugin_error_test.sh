#!/bin/bash
# protoc with protoc-gen-nprpc on a .proto it refuses (cc_generic_services)
# must fail with a message naming the file and the option, writing nothing.
set -u
protoc="$1"
plugin="$2"
proto="$3"
out="${TEST_TMPDIR:-/tmp}/plugin_error_out"
mkdir -p "${out}"
stderr="$("${protoc}" --plugin=protoc-gen-nprpc="${plugin}" -I. --nprpc_out="${out}" \
  "${proto}" 2>&1 >/dev/null)"
rc=$?
echo "protoc exited with ${rc}: ${stderr}"
if [ "${rc}" -eq 0 ]; then
  echo "FAIL: protoc succeeded on a refused .proto"
  exit 1
fi
expected="tests/codegen/generic_services.proto: option cc_generic_services = true makes protoc generate a class per service"
case "${stderr}" in
  *"${expected}"*) echo "PASS" ;;
  *) echo "FAIL: expected the message to contain: ${expected}"; exit 1 ;;
esac
if ls "${out}"/tests/codegen/generic_services.nprpc.* >/dev/null 2>&1; then
  echo "FAIL: files were written for a refused .proto"
  exit 1
fi
