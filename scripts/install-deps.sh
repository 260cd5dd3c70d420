#!/usr/bin/env bash
# Installs the Debian packages imengine builds and tests with. Idempotent:
# does nothing when everything is present already.
set -euo pipefail
# libcaf-openssl0.17 (TLS cluster links) comes with libcaf-dev; named so
# that a missing one is installed. openssl: the CLI the TLS tests make
# their certificates with.
pkgs=(build-essential cmake pkg-config ccache
      libboost-dev libcaf-dev libcaf-openssl0.17 liblmdb-dev libmsgpack-cxx-dev doctest-dev
      nlohmann-json3-dev libspdlog-dev libssl-dev openssl libgoogle-perftools-dev
      libjemalloc-dev)   # the default allocator (tcmalloc: -DIMENGINE_ALLOCATOR=tcmalloc)
# Node runs the JS client's tests (they need Node >= 20; older ones skip).
command -v node >/dev/null || pkgs+=(nodejs)
# --browser: Chromium too, for the browser end-to-end test (tests/e2e).
[ "${1:-}" = "--browser" ] && pkgs+=(chromium)
# --fuzz: clang with its libFuzzer and sanitizer runtimes (scripts/fuzz.sh).
[ "${1:-}" = "--fuzz" ] && pkgs+=(clang)
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  sudo=""; [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y --no-install-recommends "${missing[@]}"
fi
