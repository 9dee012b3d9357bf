#!/usr/bin/env bash
# bench/webgpu.ts on a machine with an NVIDIA GPU, no network and no Deno: run
# bench/webgpu_pack.sh first and carry .tools and .gl. Writes $OUT/webgpu.md and logs.
for f in .gl/*.deb; do dpkg -x "$f" /; done; ldconfig
export VK_DRIVER_FILES=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-/tmp/out}; mkdir -p "$OUT"
export LD_LIBRARY_PATH=/usr/local/nvidia/lib64:/usr/local/nvidia/lib:${LD_LIBRARY_PATH:-}
if [ ! -f "$VK_DRIVER_FILES" ]; then # elsewhere: the first NVIDIA ICD found, or the loader's search
  VK_DRIVER_FILES=$(find /usr/local/nvidia /usr/share/vulkan /etc/vulkan -name 'nvidia_icd*.json' 2>/dev/null | head -1)
  [ -n "$VK_DRIVER_FILES" ] || unset VK_DRIVER_FILES
fi
{ echo "icd: ${VK_DRIVER_FILES:-}"; cat "${VK_DRIVER_FILES:-/dev/null}"; nvidia-smi -L; ls /usr/lib/x86_64-linux-gnu/libvulkan*; } >"$OUT/diag.txt" 2>&1
[ -d node_modules ] || tar -xzf .tools/node_modules.tar.gz
D=/tmp/vx-deno; gzip -dc .tools/deno.gz >"$D" && chmod +x "$D"
export DENO_DIR=/tmp/vx-deno-dir DENO_NO_UPDATE_CHECK=1 NO_COLOR=1
mkdir -p $DENO_DIR && tar -C $DENO_DIR -xzf .tools/npm_meta.tar.gz
# Deno must find the GPU: say what it sees before the bench, with the loader's errors.
VK_LOADER_DEBUG=error timeout 60 "$D" eval 'const i=(await navigator.gpu?.requestAdapter({powerPreference:"high-performance"}))?.info;console.log("adapter:",i&&[i.vendor,i.device,i.description].join(" | "))' >>"$OUT/diag.txt" 2>&1
timeout 200 "$D" run -A bench/webgpu.ts --yolox .tools/yolox_nano.onnx --runs 10 --warmup 2 \
  --out "$OUT/webgpu.md" --no-append 2>"$OUT/bench.log"
rc=$?
tail -5 "$OUT/bench.log"; cat "$OUT/diag.txt" | tail -8; cat "$OUT/webgpu.md" 2>/dev/null
exit $rc
