#!/usr/bin/env bash
# Issue 12's scaling check on the 16-core GPU machine (no network): `bench/scale.ts` — `vx fast`
# with its default pool against `--jobs 1` on 20 and 100 keyframes, and `vx bulk` keyframes/s at
# 1, 2, 4, 8 and 16 inference workers, on wasm. Results in $OUT/scale.txt.
#
# Before: `bench/webgpu_pack.sh --pipeline` (fills .tools); carry [".tools"]. About 4 minutes
# there. VX_LOCAL=1 runs it here (RUNS and FILES can be made small).
set -uo pipefail
cd "$(dirname "$0")/.."
. bench/device_env.sh
"$D" run -A bench/scale.ts --model "$MODEL" --runs "${RUNS:-3}" --files "${FILES:-48}" \
  --out "$OUT" 2>>"$OUT/log.txt"
tail -3 "$OUT/log.txt" 2>/dev/null
