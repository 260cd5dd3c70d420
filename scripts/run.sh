#!/usr/bin/env bash
# Installs what is missing, builds, and runs one engine node with the
# embedded defaults: LMDB in ./data, ws://127.0.0.1:8080/ws. Extra
# arguments are engine flags, e.g. ./scripts/run.sh --port=9000
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/build.sh --target imengine chat_cli   # the engine serves the web client itself
exec ./build/engine/imengine "$@"
