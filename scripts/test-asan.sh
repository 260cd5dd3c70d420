#!/usr/bin/env bash
# The test suite against an ASan+UBSan build (./build-asan, system allocator:
# the sanitizers bring their own allocator): the unit tests built with the
# sanitizers, then the integration tests (the Release ones of ./build,
# built by ./scripts/build.sh) driving the sanitized engine binary through
# $IMENGINE_BIN. What the engine does is what is checked; the tests'
# own clients need no sanitizer, and building them twice would double the
# cost (the whole tree sanitized had built 17 % in 15 min on this 2-core
# box; the engine and the unit tests alone take about 13).
# Any sanitizer report fails the run: a test's own (it aborts), and any
# the engine printed (found in ctest's log, printed at the end).
# With --unit, only the engine and storage unit tests.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/install-deps.sh
san="-fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer"
# -O1 -g1 (line tables only): what the reports need, at about half the
# compile time of -O2 -g; asserts stay on.
cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=RelWithDebInfo -DIMENGINE_ALLOCATOR=system \
      -DCMAKE_CXX_FLAGS_RELWITHDEBINFO="-O1 -g1" \
      -DCMAKE_CXX_FLAGS="$san" -DCMAKE_EXE_LINKER_FLAGS="$san" \
      -DCMAKE_SHARED_LINKER_FLAGS="$san" >/dev/null
units=(tests/engine_*_test.cpp tests/storage_*_test.cpp)
filter='^(engine|storage)_'
if [ "${1:-}" != "--unit" ]; then
  units+=(tests/actors_*_test.cpp tests/net_*_test.cpp tests/node_*_test.cpp)
  filter='^(engine|storage|actors|net|node)_'
fi
targets=()
for f in "${units[@]}"; do
  targets+=("$(basename "$f" .cpp)")
done
[ "${1:-}" = "--unit" ] || targets+=(imengine)
# One target per call: make given several builds them side by side, and
# two of them compiling the same library object race on its files.
for t in "${targets[@]}"; do
  cmake --build build-asan -j"$(nproc)" --target "$t"
done

# detect_leaks: CAF's and spdlog's singletons are reachable at exit, not
# leaked; a real leak still shows under LSan's default reachability rules.
asan_options=detect_leaks=1:abort_on_error=1:detect_stack_use_after_return=0
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
(cd build-asan && ASAN_OPTIONS=$asan_options ctest --output-on-failure -j2 --timeout 600 -R "$filter")
[ "${1:-}" = "--unit" ] && exit 0

./scripts/build.sh
# The engine's stderr is the tests' own: with -V ctest logs it for every
# test, so a report fails the run even if the test that started that
# engine passed (UBSan ignores log_path in this build: files would miss
# it). A failed test is run again to show its output alone.
log="$PWD/build-asan/integration.log"
status=0
cd build
export IMENGINE_BIN="$PWD/../build-asan/engine/imengine" ASAN_OPTIONS="$asan_options"
ctest -V -j2 --timeout 900 -R '^integration_' >"$log" 2>&1 || status=$?
grep -E '^[0-9]+/[0-9]+ Test|tests passed' "$log" || true
[ "$status" = 0 ] || ctest --rerun-failed --output-on-failure || true
if grep -E -q 'runtime error:|ERROR: (Address|Leak)Sanitizer' "$log"; then
  echo "== sanitizer reports from the engine:"
  grep -E -A30 'runtime error:|ERROR: (Address|Leak)Sanitizer' "$log"
  status=1
fi
exit "$status"
