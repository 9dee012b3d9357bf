/**
 * The warm engine (issue 12): one `createEngine()` serves the file once (its workers, cores and
 * sessions start and warm up), then the same file N more times; beside it, an engine made with
 * `sequential: true` (one decoder, one inference worker, every keyframe decoded before any is
 * inferred) does the same, the two taking turns call by call so that drift hits both. Prints,
 * as JSON, each warm call's time to first record and wall time, in ms, for both, and the
 * streaming engine's counts.
 *
 * Usage: deno run -A bench/engine_warm.ts VIDEO MODEL [RUNS]
 *
 * @module
 */

import { createEngine, type Engine } from "../mod.ts";

const [video, model, runs = "5"] = Deno.args;
const options = { task: "detect", model, backend: "wasm" } as const;
const engine = createEngine(options);
const startup = performance.now();
await engine.ready;
const readyMs = performance.now() - startup;
const sequential = createEngine({ ...options, sequential: true });
await sequential.ready;
// The first call of each: the engine's cold start.
for await (const _ of engine.extract(video));
for await (const _ of sequential.extract(video));

/** One warm call: its time to first record and its wall time. */
async function call(e: Engine): Promise<{ first: number; wall: number }> {
  const t0 = performance.now();
  let at: number | undefined;
  let n = 0;
  for await (const _ of e.extract(video)) {
    at ??= performance.now() - t0;
    n++;
  }
  if (n !== 20) throw new Error(`${n} records, want 20`);
  return { first: at!, wall: performance.now() - t0 };
}

const first: number[] = [];
const wall: number[] = [];
const seq = { first: [] as number[], wall: [] as number[] };
for (let i = 0; i < Number(runs); i++) {
  const a = await call(engine);
  first.push(a.first);
  wall.push(a.wall);
  const b = await call(sequential);
  seq.first.push(b.first);
  seq.wall.push(b.wall);
}
const stats = engine.stats;
await engine.close();
await sequential.close();
console.log(JSON.stringify({ readyMs, first, wall, stats, sequential: seq }));
