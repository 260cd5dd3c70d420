#!/usr/bin/env bash
# The unit and integration tests on an ASan+UBSan build (./build-asan,
# tcmalloc off: the sanitizers bring their own allocator). Any report
# fails the test that caused it. With --unit, only the engine and storage
# unit tests (what CI runs: the whole suite's sanitized build is not yet
# measured against CI's time budget).
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/install-deps.sh
san="-fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer"
cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=RelWithDebInfo -DIMENGINE_TCMALLOC=OFF \
      -DCMAKE_CXX_FLAGS="$san" -DCMAKE_EXE_LINKER_FLAGS="$san" \
      -DCMAKE_SHARED_LINKER_FLAGS="$san" >/dev/null
targets=(); filter=()
if [ "${1:-}" = "--unit" ]; then
  for f in tests/engine_*_test.cpp tests/storage_*_test.cpp; do
    targets+=(--target "$(basename "$f" .cpp)")
  done
  filter=(-R '^(engine|storage)_')
fi
cmake --build build-asan -j"$(nproc)" "${targets[@]}"
cd build-asan
# detect_leaks: CAF's and spdlog's singletons are reachable at exit, not
# leaked; a real leak still shows under LSan's default reachability rules.
export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1:detect_stack_use_after_return=0
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
ctest --output-on-failure -j2 --timeout 600 "${filter[@]}"
