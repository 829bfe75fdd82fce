#!/usr/bin/env bash
# Writes compile_commands.json at the repo root, for clangd and clang-tidy
# (tools/clang_tidy.sh): one entry per C++ compile action of //... under
# --config=clang, taken from `bazel aquery`, after building the generated
# headers those compiles include (*.pb.h, *.nprpc.h) but not the objects.
#
#   tools/compile_commands.sh
#
# Entries run from the repo root: project includes resolve through
# `-iquote .`, generated ones through the bazel-out symlink Bazel keeps there.
# Extra Bazel startup flags come from $BAZEL_STARTUP (e.g. --output_base=...).
set -euo pipefail
cd "$(dirname "$0")/.."
BAZEL=(bazel ${BAZEL_STARTUP:-})

"${BAZEL[@]}" build --config=clang --output_groups=compilation_prerequisites_INTERNAL_ //...
actions=$(mktemp)
trap 'rm -f "$actions"' EXIT
"${BAZEL[@]}" aquery --config=clang --output=jsonproto 'mnemonic("CppCompile", //...)' \
  >"$actions" 2>/dev/null

python3 - "$actions" "$PWD" <<'EOF'
import json
import sys

actions_path, root = sys.argv[1], sys.argv[2]
with open(actions_path) as f:
    actions = json.load(f).get("actions", [])
entries = {}
for action in actions:
    args = action["arguments"]
    source = args[args.index("-c") + 1]
    # Colour codes only get in the way of editors and of clang-tidy's output.
    args = [a for a in args if a != "-fcolor-diagnostics"]
    entries[source] = {"directory": root, "file": source, "arguments": args}
with open("compile_commands.json", "w") as f:
    json.dump([entries[k] for k in sorted(entries)], f, indent=1)
    f.write("\n")
print("compile_commands.json: %d files" % len(entries))
EOF
