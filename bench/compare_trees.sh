#!/usr/bin/env bash
# A/B: the nprpc echo benchmark of two checkouts (e.g. a commit before a
# change and after it), in interleaved rounds on one machine, so slow phases
# of a noisy machine hit both sides. Prints the median QPS, p50, p99 and
# server CPU per call of each side and the ratios new/base.
#
# Usage: bench/compare_trees.sh BASE_DIR NEW_DIR [options]
#   --rounds 3              interleaved rounds (base, new, base, new, ...)
#   --points "16:1 16:16 16:128 4096:128"
#   --duration 4 --warmup 1 seconds per point
#   --nprpc-flags "..."     rpc_echo_server flags for both sides
#                           (default "": the default server)
#   --client-flags "..."    extra rpc_bench flags for both sides
#   --brpc-dir DIR          also brpc's client against each side's default
#                           server (run_rpc_bench.sh --brpc-dir; the brpc
#                           pair it runs too is the same on both sides and
#                           is left out of the table)
#
# Both trees must have their --config=opt binaries built
# (bazel build --config=opt //bench:rpc_bench //examples:rpc_echo_server
# in each); each tree uses its own bench/run_rpc_bench.sh and binaries.
set -euo pipefail
[ $# -ge 2 ] || { sed -n '2,22p' "$0"; exit 2; }
base="$(cd "$1" && pwd)"
new="$(cd "$2" && pwd)"
shift 2
rounds=3
points="16:1 16:16 16:128 4096:128"
duration=4
warmup=1
nprpc_flags=""
client_flags=""
brpc_args=()
while [ $# -gt 0 ]; do
  case "$1" in
    --rounds) rounds="$2"; shift 2 ;;
    --points) points="$2"; shift 2 ;;
    --duration) duration="$2"; shift 2 ;;
    --warmup) warmup="$2"; shift 2 ;;
    --nprpc-flags) nprpc_flags="$2"; shift 2 ;;
    --client-flags) client_flags="$2"; shift 2 ;;
    --brpc-dir) brpc_args=(--brpc-dir "$(cd "$2" && pwd)"); shift 2 ;;
    *) echo "unknown option $1" >&2; exit 2 ;;
  esac
done

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
for round in $(seq "$rounds"); do
  for side in base new; do
    dir="$base"
    [ "$side" = new ] && dir="$new"
    echo "# round $round: $side ($dir)" >&2
    (cd "$dir" && bench/run_rpc_bench.sh --no-build --no-grpc --points "$points" \
      --duration "$duration" --warmup "$warmup" --nprpc-flags "$nprpc_flags" \
      --client-flags "$client_flags" "${brpc_args[@]}" --json "$work/$side.json" >/dev/null)
  done
done

python3 - "$work/base.json" "$work/new.json" <<'PY'
import json, statistics, sys
def load(path):
    rows = {}
    for line in open(path):
        r = json.loads(line)
        pair = r.get("pair", "nprpc")
        if pair == "brpc":
            continue  # brpc's own pair does not depend on the tree
        us_per_call = r["server_cpu_pct"] * 1e4 / r["qps"] if r["qps"] else float("nan")
        rows.setdefault((pair, r["payload"], r["concurrency"]), []).append(
            (r["qps"], r["p50_us"], r["p99_us"], us_per_call, r["errors"], r["others_cpu_pct"]))
    return rows
base, new = load(sys.argv[1]), load(sys.argv[2])
med = lambda rows, i: statistics.median(r[i] for r in rows)
print("pair            payload  conc |  base_qps   new_qps  ratio | base_p50 new_p50 ratio | base_p99 new_p99 "
      "ratio | base_us/c new_us/c ratio | err | rounds | oth% (median)")
for key in sorted(base):
    b, n = base[key], new.get(key, [])
    if not n:
        continue
    q = (med(b, 0), med(n, 0)); p = (med(b, 1), med(n, 1)); t = (med(b, 2), med(n, 2))
    c = (med(b, 3), med(n, 3))
    errors = sum(r[4] for r in b + n)
    other = statistics.median(r[5] for r in b + n)
    print(f"{key[0]:15s} {key[1]:7d} {key[2]:5d} | {q[0]:9.0f} {q[1]:9.0f} {q[1]/q[0]:6.2f} | "
          f"{p[0]:8.1f} {p[1]:7.1f} {p[1]/p[0]:5.2f} | {t[0]:8.1f} {t[1]:7.1f} {t[1]/t[0]:5.2f} | "
          f"{c[0]:9.1f} {c[1]:8.1f} {c[1]/c[0]:5.2f} | {errors:3d} | {len(b)}/{len(n)} | {other:.0f}")
PY
