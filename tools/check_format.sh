#!/usr/bin/env bash
# Fails when a tracked C++ or proto source is not clang-format clean.
# Usage: tools/check_format.sh [--fix]
set -euo pipefail
cd "$(dirname "$0")/.."
mapfile -t files < <(git ls-files --cached --others --exclude-standard \
  '*.h' '*.cc' '*.proto' | grep -v '^tests/codegen/golden/' | while read -r f; do [ -f "$f" ] && echo "$f"; done)
[ ${#files[@]} -eq 0 ] && exit 0
if [ "${1:-}" = "--fix" ]; then
  clang-format -i "${files[@]}"
  exit 0
fi
if ! clang-format --dry-run --Werror "${files[@]}" 2>/tmp/nprpc_format.$$; then
  head -n 40 /tmp/nprpc_format.$$
  echo "format check failed: run tools/check_format.sh --fix" >&2
  rm -f /tmp/nprpc_format.$$
  exit 1
fi
rm -f /tmp/nprpc_format.$$
echo "format check: ${#files[@]} files clean"
