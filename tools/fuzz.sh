#!/usr/bin/env bash
# Builds the fuzz targets of tests/fuzz/ as real libFuzzer fuzzers (clang,
# -fsanitize=fuzzer,address,undefined) outside Bazel, and runs each.
#
#   tools/fuzz.sh                          # every target, 10,000,000 runs each
#   tools/fuzz.sh --runs=100000 frame_decoder_fuzz
#   tools/fuzz.sh --time=600 server_dispatch_fuzz   # seconds
#   tools/fuzz.sh --runs=10000000 --time=660         # whichever comes first
#   tools/fuzz.sh --build-only
#
# Bazel only generates the *.pb.h/*.pb.cc files and lists each target's
# sources (bazel query); clang++ compiles them with the repo root and
# bazel-bin on the include path and links Debian's protobuf, Abseil, snappy
# and zlib through pkg-config, and http_parser (no pkg-config module). Extra
# Bazel startup flags come from $BAZEL_STARTUP (e.g. --output_base=...).
#
# Each target runs single-process (no -jobs), with the seed corpus
# tests/fuzz/corpus/<target>/ read-only and new inputs written to
# $OUT/corpus/<target>/. Crashes land in $OUT/artifacts/; minimize one with
#   $OUT/bin/<target> -minimize_crash=1 -runs=100000 <crash file>
# and add it to tests/fuzz/corpus/<target>/. The log of each run (with
# libFuzzer's cov:/ft: lines and final stats) is $OUT/<target>.log.
set -euo pipefail
cd "$(dirname "$0")/.."

RUNS=10000000
TIME=""
BUILD_ONLY=0
TARGETS=()
for arg in "$@"; do
  case "$arg" in
    --runs=*) RUNS="${arg#--runs=}" ;;
    --time=*) TIME="${arg#--time=}" ;;
    --build-only) BUILD_ONLY=1 ;;
    -*) echo "unknown flag $arg" >&2; exit 2 ;;
    *) TARGETS+=("$arg") ;;
  esac
done
if [ ${#TARGETS[@]} -eq 0 ]; then
  TARGETS=(frame_decoder_fuzz link_buffer_fuzz server_dispatch_fuzz http_request_decoder_fuzz
           tls_record_fuzz)
fi
OUT="${OUT:-/tmp/nprpc-fuzz}"
BAZEL=(bazel ${BAZEL_STARTUP:-})

# clang and its runtime libraries (libFuzzer, sanitizers), from Debian.
missing=()
for package in clang libclang-rt-14-dev pkg-config; do
  if ! dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q 'install ok installed'; then
    missing+=("$package")
  fi
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "fuzz: installing ${missing[*]}"
  SUDO=""
  if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

mkdir -p "$OUT/obj" "$OUT/bin" "$OUT/artifacts" "$OUT/corpus"
"${BAZEL[@]}" build //proto:rpc_meta_proto //proto:echo_proto
BIN="$("${BAZEL[@]}" info bazel-bin 2>/dev/null)"

ABSL_MODULES=$(pkg-config --list-all | awk '/^absl_/ {print $1}' | sort)
CFLAGS=(-std=c++20 -O1 -g -fno-omit-frame-pointer
  -fsanitize=fuzzer-no-link,address,undefined -fno-sanitize=vptr
  -fno-sanitize-recover=undefined -I. -I"$BIN"
  $(pkg-config --cflags protobuf $ABSL_MODULES))
LIBS=($(pkg-config --libs protobuf $ABSL_MODULES snappy zlib libssl libcrypto libnghttp2) -lhttp_parser -lpthread)

# Compiles one source to an object, again only when the source or one of the
# project headers it includes (from clang's -MMD list) is newer than the
# object: a stale object compiled against an older header breaks the layout
# of shared types (a changed ServerOptions once read as a stack overflow).
compile() {
  local src="$1" obj="$OUT/obj/${1//\//_}.o"
  local stale=0
  if [ ! -f "$obj" ] || [ ! -f "$obj.d" ]; then
    stale=1
  else
    for dep in $(sed -e 's/^[^:]*://' -e 's/\\$//' "$obj.d"); do
      if [ "$dep" -nt "$obj" ]; then stale=1; break; fi
    done
  fi
  if [ "$stale" -eq 1 ]; then
    clang++ "${CFLAGS[@]}" -MMD -MF "$obj.d" -c "$src" -o "$obj"
  fi
  echo "$obj"
}

build() {
  local target="$1"
  # The target's own sources and those of the project libraries it depends
  # on; the replay main is replaced by libFuzzer's.
  local sources
  sources=$("${BAZEL[@]}" query --output=label \
    "kind('source file', deps(//tests/fuzz:$target)) - //tests/fuzz:replay_main.cc" 2>/dev/null |
    grep -E '^//(netpoll|rpc|examples|tests)[/:]' | grep -E '\.cc$' |
    sed -e 's|^//||' -e 's|:|/|')
  local generated
  generated=$("${BAZEL[@]}" query --output=label \
    "kind('generated file', deps(//tests/fuzz:$target))" 2>/dev/null |
    { grep -E '\.pb\.cc$' || true; } | sed -e 's|^//||' -e 's|:|/|' -e "s|^|$BIN/|")
  local objs=()
  for src in $sources $generated; do objs+=("$(compile "$src")"); done
  clang++ -fsanitize=fuzzer,address,undefined -fno-sanitize=vptr "${objs[@]}" "${LIBS[@]}" \
    -o "$OUT/bin/$target"
  echo "fuzz: built $OUT/bin/$target from ${#objs[@]} objects"
}

for target in "${TARGETS[@]}"; do build "$target"; done
[ "$BUILD_ONLY" -eq 1 ] && exit 0

# Longest generated input: a few KiB holds several frames, which reaches every
# branch; 256 bytes hold about a hundred LinkBuffer ops (sizes up to 64 KiB
# come from two bytes), as much coverage as 2,048 at twice the speed. Longer
# inputs only run slower.
max_len() {
  case "$1" in
    server_dispatch_fuzz) echo 4096 ;;
    link_buffer_fuzz) echo 256 ;;
    *) echo 2048 ;;
  esac
}

# The dispatch target's server frees a connection's memory on its own threads
# after the input returns, so libFuzzer's per-input leak check (a full
# LeakSanitizer scan whenever mallocs and frees of an input differ) ran on
# almost every input and took half the time. Leaks there are covered by the
# ASan test runs (tests/fuzz replays, the fault matrix) and LeakSanitizer at
# the fuzzer's exit.
extra_flags() { case "$1" in server_dispatch_fuzz) echo -detect_leaks=0 ;; esac; }

for target in "${TARGETS[@]}"; do
  mkdir -p "$OUT/corpus/$target"
  # Both limits apply: whichever is reached first ends the run.
  limit=(-runs="$RUNS")
  [ -n "$TIME" ] && limit+=(-max_total_time="$TIME")
  echo "=== $target: ${limit[*]} ($(date -u +%FT%TZ))"
  set +e
  ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
    "$OUT/bin/$target" "${limit[@]}" -max_len="$(max_len "$target")" $(extra_flags "$target") \
    -timeout=30 -rss_limit_mb=2048 \
    -print_final_stats=1 -artifact_prefix="$OUT/artifacts/$target-" \
    "$OUT/corpus/$target" "tests/fuzz/corpus/$target" >"$OUT/$target.log" 2>&1
  rc=$?
  set -e
  { grep -E '^#[0-9]+[[:space:]]+(INITED|DONE)' "$OUT/$target.log" || true; } | tail -2
  grep -E '^stat::' "$OUT/$target.log" || true
  if [ $rc -ne 0 ]; then
    echo "fuzz: $target FAILED (exit $rc); see $OUT/$target.log and $OUT/artifacts/"
    { grep -E 'ERROR|invariant violated|SUMMARY' "$OUT/$target.log" || true; } | head -5
  fi
done
