#!/usr/bin/env bash
# The test suite against an ASan+UBSan build (./build-asan, tcmalloc off:
# the sanitizers bring their own allocator): the unit tests built with the
# sanitizers, then the integration tests (the Release ones of ./build,
# built by ./scripts/build.sh) driving the sanitized engine binary through
# $IMENGINE_BIN. What the engine does is what is checked; the tests'
# own clients need no sanitizer, and building them twice would double the
# cost (measured: the whole tree sanitized is far beyond CI's budget on
# 2 cores, the engine and unit tests alone about 15 min).
# Any sanitizer report fails the run: a test's own (it aborts), and any
# the engine wrote (collected from $reports and printed at the end).
# With --unit, only the engine and storage unit tests.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/install-deps.sh
san="-fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer"
# -O1 -g1 (line tables only): what the reports need, at about half the
# compile time of -O2 -g; asserts stay on.
cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=RelWithDebInfo -DIMENGINE_TCMALLOC=OFF \
      -DCMAKE_CXX_FLAGS_RELWITHDEBINFO="-O1 -g1" \
      -DCMAKE_CXX_FLAGS="$san" -DCMAKE_EXE_LINKER_FLAGS="$san" \
      -DCMAKE_SHARED_LINKER_FLAGS="$san" >/dev/null
units=(tests/engine_*_test.cpp tests/storage_*_test.cpp)
filter='^(engine|storage)_'
if [ "${1:-}" != "--unit" ]; then
  units+=(tests/actors_*_test.cpp tests/net_*_test.cpp)
  filter='^(engine|storage|actors|net)_'
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
reports="$PWD/build-asan/engine-reports"
rm -rf "$reports" && mkdir -p "$reports"
# The engine's reports go to files (its stderr is the tests' pipe); the
# test clients run unsanitized.
status=0
(cd build && IMENGINE_BIN="$PWD/../build-asan/engine/imengine" \
   ASAN_OPTIONS="$asan_options:log_path=$reports/asan" \
   UBSAN_OPTIONS="$UBSAN_OPTIONS:log_path=$reports/ubsan" \
   ctest --output-on-failure -j2 --timeout 900 -R '^integration_') || status=$?
if compgen -G "$reports/*" >/dev/null; then
  echo "== sanitizer reports from the engine:"
  for f in "$reports"/*; do echo "-- $f"; cat "$f"; done
  status=1
fi
exit "$status"
