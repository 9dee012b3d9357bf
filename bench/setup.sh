#!/usr/bin/env bash
# Benchmark-only dependencies: Debian's ffmpeg CLI and onnxruntime-node, the native anchor that
# bench/run.ts compares vx with. vx itself never needs them.
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v ffmpeg >/dev/null; then
  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq ffmpeg) >/dev/null
fi
if [ ! -d .cache/native/node_modules/onnxruntime-node ]; then
  mkdir -p .cache/native
  [ -f .cache/native/package.json ] || echo '{"private":true}' > .cache/native/package.json
  # Its install script downloads from a host we cannot reach; the bundled CPU library works.
  npm install --prefix .cache/native --ignore-scripts --no-audit --no-fund onnxruntime-node@1.30.0 >/dev/null
fi
