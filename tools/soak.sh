#!/usr/bin/env bash
# Soak (not in CI): mixed load with random faults for N minutes against an
# nprpc server in a child process; prints calls, outcomes and server RSS
# each minute and fails unless every call issued completed exactly once.
#
#   tools/soak.sh                 # 10 minutes
#   tools/soak.sh --minutes=60 --seed=7 --threads=4 --fault_every_s=20
#
# Extra Bazel startup flags come from $BAZEL_STARTUP (e.g. --output_base=...).
set -euo pipefail
cd "$(dirname "$0")/.."
BAZEL=(bazel ${BAZEL_STARTUP:-})
"${BAZEL[@]}" build -c opt //tests/soak:soak_main
BIN="$("${BAZEL[@]}" info -c opt bazel-bin 2>/dev/null)"
echo "soak: $(git rev-parse --short HEAD) $(date -u +%FT%TZ) $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg)"
exec "$BIN/tests/soak/soak_main" "$@"
