#!/usr/bin/env bash
# The unit and integration tests on an ASan+UBSan build (./build-asan,
# tcmalloc off: the sanitizers bring their own allocator). Any report
# fails the test that caused it.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/install-deps.sh
san="-fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer"
cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=RelWithDebInfo -DIMENGINE_TCMALLOC=OFF \
      -DCMAKE_CXX_FLAGS="$san" -DCMAKE_EXE_LINKER_FLAGS="$san" \
      -DCMAKE_SHARED_LINKER_FLAGS="$san" >/dev/null
cmake --build build-asan -j"$(nproc)"
cd build-asan
# detect_leaks: CAF's and spdlog's singletons are reachable at exit, not
# leaked; a real leak still shows under LSan's default reachability rules.
export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1:detect_stack_use_after_return=0
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
ctest --output-on-failure -j2 --timeout 600
