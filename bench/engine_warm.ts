/**
 * The warm engine (issue 12): one `createEngine()` serves the file once (its workers, cores and
 * sessions start and warm up), then the same file N more times; prints, as JSON, each warm
 * call's time to first record and wall time, in ms, and the engine's counts.
 *
 * Usage: deno run -A bench/engine_warm.ts VIDEO MODEL [RUNS]
 *
 * @module
 */

import { createEngine } from "../mod.ts";

const [video, model, runs = "5"] = Deno.args;
const engine = createEngine({ task: "detect", model, backend: "wasm" });
const startup = performance.now();
await engine.ready;
const readyMs = performance.now() - startup;
for await (const _ of engine.extract(video)); // the first call: the engine's cold start
const first: number[] = [];
const wall: number[] = [];
for (let i = 0; i < Number(runs); i++) {
  const t0 = performance.now();
  let at: number | undefined;
  let n = 0;
  for await (const _ of engine.extract(video)) {
    at ??= performance.now() - t0;
    n++;
  }
  if (n !== 20) throw new Error(`${n} records, want 20`);
  first.push(at!);
  wall.push(performance.now() - t0);
}
const stats = engine.stats;
await engine.close();
console.log(JSON.stringify({ readyMs, first, wall, stats }));
