#!/usr/bin/env bash
# Packs what bench/webgpu_device.sh needs into .tools/ (ignored), for a machine with no network
# and at most 64 MiB carried in: Deno (gzipped: the binary alone is ~96 MB), node_modules with
# only the files the bench loads (the wasm and WebGPU builds of onnxruntime-web, the PP-OCRv4
# detection model), npm's metadata from DENO_DIR, and YOLOX-Nano from ../shared. Carry `.tools`
# (and `.gl`), not node_modules. With `--pipeline`, packs for bench/fast_device.sh instead.
set -euo pipefail
cd "$(dirname "$0")/.."
mkdir -p .tools
# gzip for bench/webgpu_device.sh; xz for --pipeline, whose node_modules is larger.
if [ "${1:-}" = "--pipeline" ]; then Z="xz -6 -T0"; X=xz; else Z="gzip -9"; X=gz; fi
rm -f .tools/deno.gz .tools/deno.xz .tools/node_modules.tar.gz .tools/node_modules.tar.xz
$Z -c "$(readlink -f "$(command -v deno)")" > ".tools/deno.$X"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cp -al node_modules "$tmp/"
ort=$(readlink -f "$tmp/node_modules/onnxruntime-web")
find "$ort/dist" -type f ! \( -name ort.node.min.mjs -o -name ort.webgpu.bundle.min.mjs \
  -o -name 'ort-wasm-simd-threaded.mjs' -o -name 'ort-wasm-simd-threaded.wasm' \
  -o -name 'ort-wasm-simd-threaded.asyncify.mjs' -o -name 'ort-wasm-simd-threaded.asyncify.wasm' \
  \) -delete
# Package folders stay (Deno checks they exist); their large files the bench never reads go.
if [ "${1:-}" = "--pipeline" ]; then
  # For bench/fast_device.sh: the single-thread ffmpeg core stays, the OCR models go.
  find "$tmp/node_modules/.deno" -type f \( -path '*core-mt*.wasm' -o -name '*.ttf' \
    -o -name '*.onnx' -o -name '*.map' -o -name status.txt \) -delete
else
  find "$tmp/node_modules/.deno" -type f \( -name '*.wasm' -path '*@ffmpeg*' -o -name '*.ttf' \
    -o -name '*rec_infer.onnx' -o -name '*cls_infer.onnx' -o -name '*.map' \) -delete
fi
tar -C "$tmp" -cf - node_modules | $Z > ".tools/node_modules.tar.$X"
# npm metadata from DENO_DIR: without it Deno asks the registry, even with node_modules there.
dir=$(deno info --json | sed -n 's/^ *"denoDir": *"\(.*\)",$/\1/p')
(cd "$dir" && find npm -name registry.json | tar -czf - -T -) > .tools/npm_meta.tar.gz
cp ../shared/models/yolox_nano.onnx .tools/ 2>/dev/null || echo "no ../shared: no YOLOX-Nano"
du -ch .tools/* | tail -1
