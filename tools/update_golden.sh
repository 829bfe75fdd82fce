#!/bin/bash
# Regenerates tests/codegen/golden/ from the current protoc-gen-nprpc: builds
# the corpus' generated files with Bazel and copies them over the golden
# copies. Review the diff (git diff tests/codegen/golden) before committing.
#
#   tools/update_golden.sh            # uses Bazel's default output base
#   BAZEL="bazel --output_base=DIR" tools/update_golden.sh
set -euo pipefail
cd "$(dirname "$0")/.."
BAZEL="${BAZEL:-bazel}"
# The file list lives in one place: GOLDEN_FILES in tests/codegen/BUILD.bazel.
files=$(sed -n '/^GOLDEN_FILES = \[/,/^\]/p' tests/codegen/BUILD.bazel | grep -o '"[^"]*"' | tr -d '"')
${BAZEL} build //tests/codegen:corpus_nprpc_genproto
bin="$(${BAZEL} info bazel-bin)"
for f in ${files}; do
  mkdir -p "tests/codegen/golden/$(dirname "${f}")"
  install -m 0644 "${bin}/tests/codegen/${f}" "tests/codegen/golden/${f}"
done
echo "updated $(echo "${files}" | wc -w) golden files under tests/codegen/golden/"
