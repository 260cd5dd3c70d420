#!/usr/bin/env bash
# The JS client module's tests (Node's test runner) against the real engine.
#   IMENGINE_BIN  engine binary (default build/engine/imengine)
# Exits 77 (ctest: skipped) when Node is older than 20, which has no WebSocket.
set -euo pipefail
cd "$(dirname "$0")/../.."
if ! command -v node >/dev/null; then
  echo "node not found: the JS client tests need Node >= 20"; exit 77
fi
major=$(node -p 'process.versions.node.split(".")[0]')
if [ "$major" -lt 20 ]; then
  echo "node $(node --version): the JS client tests need Node >= 20"; exit 77
fi
flags=()
if ! node -e 'process.exit(typeof WebSocket === "function" ? 0 : 1)'; then flags+=(--experimental-websocket); fi
exec node "${flags[@]}" --test tests/js/
