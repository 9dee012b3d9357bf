#!/usr/bin/env bash
# Dev-only: native onnxruntime (onnxruntime-node) under .cache/native, at the version of the
# onnxruntime-web that deno.json pins. It makes the .ort files in models/ (models/optimise.ts) and
# is the native anchor of bench/run.ts; vx itself never needs it.
set -euo pipefail
cd "$(dirname "$0")/.."
version=$(sed -n 's/.*"npm:onnxruntime-web@\([^"]*\)".*/\1/p' deno.json)
installed=$(sed -n 's/^  "version": "\(.*\)",$/\1/p' .cache/native/node_modules/onnxruntime-node/package.json 2>/dev/null || true)
if [ "$installed" != "$version" ]; then
  mkdir -p .cache/native
  [ -f .cache/native/package.json ] || echo '{"private":true}' > .cache/native/package.json
  # Its install script downloads from a host we cannot reach; the bundled CPU library works.
  npm install --prefix .cache/native --ignore-scripts --no-audit --no-fund \
    "onnxruntime-node@$version" >/dev/null
fi
