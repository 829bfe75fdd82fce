#!/usr/bin/env bash
# Tests bench/report_gen.py on the canned run in bench/report_testdata/:
#   1. the page from testdata/template.md (every section, every chart link)
#      equals testdata/golden.md;
#   2. the real bench/report_template.md renders (no unknown section);
#   3. without round files, the verdicts use the sweep's single points;
#      without brpc rows (no --brpc-dir), the brpc section is a note;
#   4. when gnuplot is installed, every chart renders to a PNG (skipped, with
#      a message, when it is not).
# Offline; runs no benchmark. Under Bazel: bazel test //bench:report_test.
#
# After an intended change of the generator:
#   bench/report_test.sh --update     # rewrites bench/report_testdata/golden.md
set -euo pipefail

if [ -n "${TEST_SRCDIR:-}" ]; then
  root="$TEST_SRCDIR/${TEST_WORKSPACE:-netpoll_rpc}"
else
  root="$(cd "$(dirname "$0")/.." && pwd)"
fi
data="$root/bench/report_testdata"
tmp="${TEST_TMPDIR:-$(mktemp -d)}"
[ -z "${TEST_TMPDIR:-}" ] && trap 'rm -rf "$tmp"' EXIT

gen() { python3 "$root/bench/report_gen.py" --run-dir "$data" "$@"; }
fail() { echo "FAIL: $*" >&2; exit 1; }

# 1. Golden page. The page sits in docs/ and its charts in docs/img/, as in
# the repository, so the links read img/bench_*.png.
mkdir -p "$tmp/docs"
gen --template "$data/template.md" --out "$tmp/docs/golden.md" --img-dir "$tmp/docs/img" \
  --gnuplot off
if [ "${1:-}" = --update ]; then
  cp "$tmp/docs/golden.md" "$root/bench/report_testdata/golden.md"
  echo "updated bench/report_testdata/golden.md"
  exit 0
fi
diff -u "$data/golden.md" "$tmp/docs/golden.md" ||
  fail "the generated page differs from bench/report_testdata/golden.md (if intended: bench/report_test.sh --update)"
[ ! -e "$tmp/docs/img" ] || fail "--gnuplot off rendered charts"

# 2. The real template: every {{section}} it names exists.
gen --template "$root/bench/report_template.md" --out "$tmp/docs/real.md" \
  --img-dir "$tmp/docs/img" --gnuplot off
grep -q '{{' "$tmp/docs/real.md" && fail "an unfilled {{section}} in the real template's page"
for heading in '## Targets' '## Transport echo' '## nprpc vs gRPC C++' '### Connection types' \
  '### Compression' 'Generated'; do
  grep -q "$heading" "$tmp/docs/real.md" || fail "the real page has no '$heading'"
done

# 3. Without round files the verdicts come from the sweep's single points.
mkdir -p "$tmp/sweep_only"
for f in "$data"/*; do
  case "$(basename "$f")" in round*) ;; *) cp "$f" "$tmp/sweep_only/" ;; esac
done
python3 "$root/bench/report_gen.py" --run-dir "$tmp/sweep_only" --template "$data/template.md" \
  --out "$tmp/docs/sweep_only.md" --img-dir "$tmp/docs/img" --gnuplot off
grep -q 'No rounds in this run' "$tmp/docs/sweep_only.md" || fail "sweep-only page names rounds"
grep -q 'median of' "$tmp/docs/sweep_only.md" && fail "sweep-only page has a median of rounds"
grep -q 'median of 3 rounds' "$tmp/docs/golden.md" || fail "the golden page has no median of rounds"

# 3b. The optional brpc baseline: rendered from the pair-tagged rows, and a
# run without brpc rows (no --brpc-dir) says so instead of a table.
grep -q 'brpc client → default QPS' "$tmp/docs/golden.md" || fail "the golden page has no brpc table"
mkdir -p "$tmp/no_brpc"
for f in "$data"/*; do
  case "$(basename "$f")" in
    *rpc.jsonl) grep -v -e '"pair": "brpc' -e '"pair": "nprpc_default"' "$f" >"$tmp/no_brpc/$(basename "$f")" ;;
    *) cp "$f" "$tmp/no_brpc/" ;;
  esac
done
python3 "$root/bench/report_gen.py" --run-dir "$tmp/no_brpc" --template "$data/template.md" \
  --out "$tmp/docs/no_brpc.md" --img-dir "$tmp/docs/img" --gnuplot off
grep -q 'No brpc baseline in this run' "$tmp/docs/no_brpc.md" || fail "no-brpc page lacks the note"
grep -q 'brpc client → default QPS' "$tmp/docs/no_brpc.md" && fail "no-brpc page has a brpc table"

# 4. Charts.
if ! command -v gnuplot >/dev/null; then
  echo "gnuplot not installed: chart rendering skipped (the markdown was checked)"
  echo PASS
  exit 0
fi
gen --template "$data/template.md" --out "$tmp/docs/charts.md" --img-dir "$tmp/docs/img"
for chart in echo_qps echo_latency rpc_qps rpc_latency rpc_ratio; do
  png="$tmp/docs/img/bench_$chart.png"
  [ -s "$png" ] || fail "no chart $png"
  [ "$(head -c 8 "$png" | od -An -tx1 | tr -d ' \n')" = 89504e470d0a1a0a ] ||
    fail "$png is not a PNG"
  [ "$(stat -c %s "$png")" -gt 5000 ] || fail "$png is suspiciously small"
done
echo PASS
