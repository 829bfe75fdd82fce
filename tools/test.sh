#!/usr/bin/env bash
# The whole test suite: installs what is missing, checks formatting, then runs
# every Bazel test. Extra arguments go to `bazel test` (e.g. --config=asan).
set -euo pipefail
cd "$(dirname "$0")/.."
tools/setup.sh
tools/check_format.sh
bazel test //... "$@"
