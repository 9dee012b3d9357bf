#!/usr/bin/env bash
# `vx fast` on wasm and on WebGPU on a machine with an NVIDIA GPU and no network, through the
# whole pipeline (decode worker, GPU-resident pre-processing, inference). Carry .tools (from
# `bench/webgpu_pack.sh --pipeline`, recompressed with xz), .gl (libvulkan1 + libglvnd debs) and
# a clip in .devclip/.
for f in .gl/*.deb; do dpkg -x "$f" /; done; ldconfig
export VK_DRIVER_FILES=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json
export LD_LIBRARY_PATH=/usr/local/nvidia/lib64:/usr/local/nvidia/lib:${LD_LIBRARY_PATH:-}
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-/tmp/out}; mkdir -p "$OUT"
# bench/webgpu_pack.sh --pipeline, then `xz` instead of gzip to fit the 64 MiB carry.
[ -d node_modules ] || tar -xJf .tools/node_modules.tar.xz
D=/tmp/vx-deno; xz -dc .tools/deno.xz >"$D" && chmod +x "$D"
export DENO_DIR=/tmp/vx-deno-dir DENO_NO_UPDATE_CHECK=1 NO_COLOR=1
mkdir -p $DENO_DIR && tar -C $DENO_DIR -xzf .tools/npm_meta.tar.gz
clip=$(ls .devclip/*.mp4 | head -1)
for i in 1 2 3; do
  for b in wasm webgpu; do
    timeout 120 "$D" run -A cli.ts fast "$clip" --task detect --model .tools/yolox_nano.onnx \
      --backend $b --threads 4 --debug="$OUT/trace-$b-$i.json" >"$OUT/records-$b.jsonl" 2>>"$OUT/log.txt"
    echo "$b run $i: exit status $?" | tee -a "$OUT/summary.txt"
    "$D" eval "const v=JSON.parse(Deno.readTextFileSync('$OUT/trace-$b-$i.json')).vx;console.log('$b run $i: wall',Math.round(v.wallMs),'first',Math.round(v.firstRecordMs),'infer',Math.round(v.stagesMs.inference),'session',Math.round(v.stagesMs['create model session']),'backend',v.backend,'adapter',v.adapter)" | tee -a "$OUT/summary.txt"
  done
done
# Control for the exit crash: the library API terminates its workers (the CLI leaves a worker
# holding a WebGPU device to the process exit; src/pipeline/workers.ts says why), then exits.
for i in 1 2 3; do
  timeout 120 "$D" eval "import { extract } from './mod.ts';
    let n = 0;
    for await (const _ of extract('$clip', { task: 'detect', model: '.tools/yolox_nano.onnx',
      backend: 'webgpu' })) n++;
    console.log('library records', n); Deno.exit(0);" >>"$OUT/log.txt" 2>&1
  echo "library (workers terminated) run $i: exit status $?" | tee -a "$OUT/summary.txt"
done
tail -3 "$OUT/log.txt"
