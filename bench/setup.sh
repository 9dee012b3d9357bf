#!/usr/bin/env bash
# Benchmark-only dependencies: Debian's ffmpeg CLI and onnxruntime-node, the native anchor that
# bench/run.ts compares vx with. vx itself never needs them.
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v ffmpeg >/dev/null; then
  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq ffmpeg) >/dev/null
fi
bash models/native_ort.sh
