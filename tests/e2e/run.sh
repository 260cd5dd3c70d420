#!/usr/bin/env bash
# Browser end-to-end test of examples/web against the real engine.
#   IMENGINE_BIN  engine binary (default build/engine/imengine)
#   CHROMIUM      browser binary (default /usr/bin/chromium: apt-get install chromium)
#   WEB_URL       serve the page from there instead of the engine / a local static server
set -euo pipefail
cd "$(dirname "$0")"
if [ ! -d node_modules/playwright-core ]; then
  if [ -f package-lock.json ]; then npm ci --no-audit --no-fund; else npm install --no-audit --no-fund; fi
fi
# Node 20 has WebSocket only behind a flag (the test seeds data with imclient.js).
flags=()
if ! node -e 'process.exit(typeof WebSocket === "function" ? 0 : 1)'; then flags+=(--experimental-websocket); fi
exec node "${flags[@]}" --test --test-reporter=spec chat.e2e.mjs
