# Sourced by the bench/*_device.sh scripts: sets D (a deno binary), MODEL and OUT. On the GPU
# machine (no network) it unpacks what `bench/webgpu_pack.sh --pipeline` put in .tools and the
# libvulkan1 + libglvnd debs in .gl; with VX_LOCAL=1 it uses this machine's deno and ../shared.
OUT=${OUT:-/tmp/out}; mkdir -p "$OUT"
if [ -z "${VX_LOCAL:-}" ]; then
  for f in .gl/*.deb; do [ -e "$f" ] && dpkg -x "$f" /; done; ldconfig
  export VK_DRIVER_FILES=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json
  export LD_LIBRARY_PATH=/usr/local/nvidia/lib64:/usr/local/nvidia/lib:${LD_LIBRARY_PATH:-}
  [ -d node_modules ] || tar -xJf .tools/node_modules.tar.xz
  D=/tmp/vx-deno; [ -x "$D" ] || { xz -dc .tools/deno.xz >"$D" && chmod +x "$D"; }
  export DENO_DIR=/tmp/vx-deno-dir
  mkdir -p $DENO_DIR && tar -C $DENO_DIR -xzf .tools/npm_meta.tar.gz
  MODEL=.tools/yolox_nano.onnx
  { nproc; nvidia-smi -L 2>&1; } >"$OUT/diag.txt"
else
  D=$(command -v deno || true)
  [ -n "$D" ] || D=$(readlink -f "$(dirname "$(npx -y deno@2.9.6 eval 'console.log(Deno.execPath())' 2>/dev/null)")/deno")
  MODEL=${MODEL:-../shared/models/yolox_nano.onnx}
fi
export DENO_NO_UPDATE_CHECK=1 NO_COLOR=1
