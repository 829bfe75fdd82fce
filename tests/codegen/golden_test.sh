#!/bin/bash
# Compares generated files (arguments, runfiles paths under tests/codegen/)
# with their golden copies under tests/codegen/golden/. Refresh the golden
# files with tools/update_golden.sh after an intended change.
set -u
status=0
for generated in "$@"; do
  relative="${generated#tests/codegen/}"
  golden="tests/codegen/golden/${relative}"
  if ! diff -u "${golden}" "${generated}"; then
    echo "MISMATCH: ${relative} differs from its golden file (run tools/update_golden.sh)"
    status=1
  fi
done
[ "${status}" -eq 0 ] && echo "$# generated files match their golden files"
exit "${status}"
