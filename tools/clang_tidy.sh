#!/usr/bin/env bash
# Runs clang-tidy (the checks of .clang-tidy) over the project's own .cc files
# and the project headers they include; fails on any finding. Generated code
# (bazel-out/...), files outside //... (the golden copies of
# tests/codegen/golden/, the separate workspace examples/external/) and system
# headers are not checked.
#
#   tools/clang_tidy.sh                  # every tracked .cc file
#   tools/clang_tidy.sh rpc/server.cc    # just these
#   tools/clang_tidy.sh --fix rpc/server.cc   # apply clang-tidy's fixes
#   tools/clang_tidy.sh --changed        # what CI runs: see below
#
# A full run takes about 10 minutes on 2 idle cores (most of it in the checks'
# matchers over the protobuf/Abseil/gtest headers every file includes), so CI
# runs --changed[=REV]: the .cc files that differ from REV (default: the merge
# base with main, or HEAD~1 on main itself) and the .cc files that include a
# changed header directly.
#
# Writes compile_commands.json first (tools/compile_commands.sh). Runs one
# clang-tidy per core. Extra Bazel startup flags come from $BAZEL_STARTUP.
set -euo pipefail
cd "$(dirname "$0")/.."

FIX=()
files=()
changed=""
for arg in "$@"; do
  case "$arg" in
    --fix) FIX=(--fix) ;;
    --changed) changed=default ;;
    --changed=*) changed="${arg#--changed=}" ;;
    -*) echo "unknown flag $arg" >&2; exit 2 ;;
    *) files+=("$arg") ;;
  esac
done
tools/compile_commands.sh >/dev/null 2>&1 || tools/compile_commands.sh
# The tracked .cc files Bazel compiles under //... (those in compile_commands.json).
all_files() {
  comm -12 <(git ls-files '*.cc' | sort) \
    <(python3 -c 'import json; [print(e["file"]) for e in json.load(open("compile_commands.json"))]' |
      sort)
}
if [ -n "$changed" ]; then
  if [ "$changed" = default ]; then
    changed=$(git merge-base HEAD main 2>/dev/null || echo HEAD~1)
    [ "$(git rev-parse "$changed")" = "$(git rev-parse HEAD)" ] && changed=HEAD~1
  fi
  mapfile -t diff < <(git diff --name-only --diff-filter=d "$changed" -- '*.cc' '*.h' |
    grep -v '^tests/codegen/golden/' || true)
  headers=()
  for f in "${diff[@]}"; do
    case "$f" in
      *.cc) files+=("$f") ;;
      *.h) headers+=("$f") ;;
    esac
  done
  if [ ${#headers[@]} -gt 0 ]; then
    mapfile -t -O "${#files[@]}" files < <(all_files |
      xargs grep -lF "${headers[@]/#/-e\"}" 2>/dev/null || true)
  fi
  mapfile -t files < <(comm -12 <(printf '%s\n' "${files[@]}" | grep . | sort -u) <(all_files))
  if [ ${#files[@]} -eq 0 ]; then
    echo "clang-tidy: no .cc or .h under //... changed since $changed"
    exit 0
  fi
elif [ ${#files[@]} -eq 0 ]; then
  mapfile -t files < <(all_files)
else
  outside=$(comm -23 <(printf '%s\n' "${files[@]}" | sort -u) <(all_files))
  if [ -n "$outside" ]; then
    echo "clang-tidy: not compiled under //... (no compile command):" $outside >&2
    exit 2
  fi
fi

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
