#!/usr/bin/env bash
# Runs clang-tidy (the checks of .clang-tidy) over the project's own .cc files
# and the project headers they include; fails on any finding. Generated code
# (bazel-out/...), the golden copies of tests/codegen/golden/ and system
# headers are not checked.
#
#   tools/clang_tidy.sh                  # every tracked .cc file
#   tools/clang_tidy.sh rpc/server.cc    # just these
#   tools/clang_tidy.sh --fix rpc/server.cc   # apply clang-tidy's fixes
#
# Writes compile_commands.json first (tools/compile_commands.sh). Runs one
# clang-tidy per core. Extra Bazel startup flags come from $BAZEL_STARTUP.
set -euo pipefail
cd "$(dirname "$0")/.."

FIX=()
files=()
for arg in "$@"; do
  case "$arg" in
    --fix) FIX=(--fix) ;;
    -*) echo "unknown flag $arg" >&2; exit 2 ;;
    *) files+=("$arg") ;;
  esac
done
if [ ${#files[@]} -eq 0 ]; then
  mapfile -t files < <(git ls-files '*.cc' | grep -v '^tests/codegen/golden/')
fi

tools/compile_commands.sh >/dev/null 2>&1 || tools/compile_commands.sh
start=$(date +%s)
out=$(mktemp)
trap 'rm -f "$out"' EXIT
status=0
# --fix edits a header once per file that includes it: run one at a time then.
jobs=$(nproc)
[ ${#FIX[@]} -gt 0 ] && jobs=1
printf '%s\n' "${files[@]}" |
  xargs -P "$jobs" -n 1 clang-tidy -p . --quiet "${FIX[@]}" >"$out" 2>&1 || status=$?
# A header's findings repeat for every file that includes it: print each once.
findings=$(grep -E '^[^ ]+:[0-9]+:[0-9]+: (warning|error):' "$out" | sort -u || true)
if [ "$status" -ne 0 ] || [ -n "$findings" ]; then
  if [ -n "$findings" ]; then echo "$findings"; else cat "$out"; fi
  echo "clang-tidy: $(printf '%s\n' "$findings" | grep -c . || true) findings in" \
    "${#files[@]} files ($(($(date +%s) - start))s); see .clang-tidy" >&2
  exit 1
fi
echo "clang-tidy: ${#files[@]} files clean ($(($(date +%s) - start))s)"
