#!/usr/bin/env bash
# Builds the libFuzzer targets (fuzz/) with clang into ./build-fuzz and runs
# each for SECONDS (default 60) from its seed corpus in fuzz/corpus/<target>.
# New inputs go to build-fuzz/corpus/<target>; a crash stops with non-zero
# and leaves its input as build-fuzz/crash-<target>-*.
# usage: scripts/fuzz.sh [SECONDS] [TARGET...]
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/install-deps.sh --fuzz
seconds="${1:-60}"; shift || true
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(frame_json frame_msgpack record jwt api)
cmake -S . -B build-fuzz -DIMENGINE_FUZZ=ON -DCMAKE_BUILD_TYPE=Debug \
      -DCMAKE_CXX_COMPILER=clang++ -DIMENGINE_ALLOCATOR=system >/dev/null
cmake --build build-fuzz -j"$(nproc)" --target "${targets[@]/#/fuzz_}"
for t in "${targets[@]}"; do
  mkdir -p "build-fuzz/corpus/$t"
  echo "fuzz_$t: ${seconds}s"
  ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 \
    "build-fuzz/fuzz/fuzz_$t" -max_total_time="$seconds" -max_len=65536 -timeout=10 \
      -print_final_stats=1 -artifact_prefix="build-fuzz/crash-$t-" \
      "build-fuzz/corpus/$t" "fuzz/corpus/$t" 2>&1 | tail -n 12
  [ "${PIPESTATUS[0]}" -eq 0 ] || { echo "fuzz_$t failed"; exit 1; }
done
