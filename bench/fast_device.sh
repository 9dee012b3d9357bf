#!/usr/bin/env bash
# The whole pipeline on wasm and on WebGPU on a machine with an NVIDIA GPU and no network: `vx
# fast` (3 runs of each backend, each run's exit status: a WebGPU run on the H200 used to die
# with SIGSEGV at exit, see src/pipeline/workers.ts), the library API as a control for that exit
# (it terminates its workers, then exits), and `vx bulk` over copies of the clip with the default
# wasm pool and with WebGPU at 1, 2 and 4 inference workers, then `bench/exit_stress.ts` (exit
# statuses across every path, 10 rounds). Figures come from each run's
# --debug summary; everything lands in $OUT (summary.txt, log.txt, traces).
#
# Before: `bench/webgpu_pack.sh --pipeline` (fills .tools: Deno, a trimmed node_modules, npm
# metadata, YOLOX-Nano), .gl with the libvulkan1 + libglvnd debs, a clip in .devclip/; carry
# [".tools", ".gl", ".devclip"]. VX_LOCAL=1 runs it here instead (this machine's deno and
# Vulkan; llvmpipe is slow, so FILES and RUNS can be made small).
set -uo pipefail
cd "$(dirname "$0")/.."
RUNS=${RUNS:-3}; FILES=${FILES:-24}
. bench/device_env.sh
clip=${CLIP:-$(ls .devclip/*.mp4 | head -1)}
say() { echo "$*" | tee -a "$OUT/summary.txt"; }
# One line from a trace's summary.
sum() {
  "$D" eval "const v=JSON.parse(Deno.readTextFileSync('$1')).vx;
    console.log('wall', Math.round(v.wallMs), 'first', Math.round(v.firstRecordMs ?? -1),
      'inference', Math.round(v.stagesMs.inference), 'session',
      Math.round(v.stagesMs['create model session']), 'backend', v.backend, 'adapter', v.adapter,
      'inference workers', v.threads.inferenceWorkers, 'peak RSS MB',
      Math.round((v.processPeakRssBytes ?? v.peakRssBytes ?? 0) / 1e6))"
}

for i in $(seq "$RUNS"); do
  for b in wasm webgpu; do
    timeout 120 "$D" run -A cli.ts fast "$clip" --task detect --model "$MODEL" --backend $b \
      --threads 4 --debug="$OUT/trace-$b-$i.json" >"$OUT/records-$b.jsonl" 2>>"$OUT/log.txt"
    rc=$?
    say "fast $b run $i: exit $rc; $(sum "$OUT/trace-$b-$i.json")"
  done
done
cmp -s "$OUT/records-wasm.jsonl" "$OUT/records-webgpu.jsonl" && say "fast: records identical" ||
  say "fast: records differ (see records-*.jsonl)"

for i in $(seq "$RUNS"); do
  timeout 120 "$D" eval "import { extract } from './mod.ts';
    let n = 0;
    for await (const _ of extract('$clip', { task: 'detect', model: '$MODEL',
      backend: 'webgpu' })) n++;
    console.log('library records', n); Deno.exit(0);" >>"$OUT/log.txt" 2>&1
  say "library (workers terminated, then Deno.exit) run $i: exit $?"
done

dir=/tmp/vx-bulk; rm -rf $dir; mkdir -p $dir
for n in $(seq -w 1 "$FILES"); do cp "$clip" "$dir/c$n.mp4"; done
bulk() { # name, then vx bulk's options
  local name=$1; shift
  timeout 240 "$D" run -A cli.ts bulk $dir --task detect --model "$MODEL" "$@" \
    --debug="$OUT/trace-bulk-$name.json" >"$OUT/bulk-$name.jsonl" 2>>"$OUT/log.txt"
  local rc=$?
  say "bulk $name: exit $rc; $(grep '^vx bulk:' "$OUT/log.txt" | tail -1); $(sum "$OUT/trace-bulk-$name.json")"
}
bulk wasm-default --backend wasm
for j in 1 2 4; do bulk webgpu-jobs$j --backend webgpu --jobs $j; done
# Exit statuses across every path (issue 11), the same tally as on llvmpipe.
"$D" run -A bench/exit_stress.ts --rounds "${STRESS_ROUNDS:-10}" --parallel 4 \
  --out "$OUT/exit_tally.json" 2>>"$OUT/log.txt" | tee -a "$OUT/summary.txt"
tail -3 "$OUT/log.txt"
