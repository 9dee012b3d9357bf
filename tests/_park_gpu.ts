/**
 * For tests/webgpu_test.ts, in a child process: `extract` twice on WebGPU with two inference
 * workers and the tiny detector, then a natural exit. Prints, after each run, how many GPU
 * workers are parked (none is ever terminated: src/pipeline/workers.ts says why) and the
 * backend used.
 *
 * @module
 */

import { extract, TraceRecorder } from "../mod.ts";
import { parkedWorkers, workersSettled } from "../src/pipeline/workers.ts";

const [video, model] = Deno.args;
const runs = [];
for (let i = 0; i < 2; i++) {
  const tracer = new TraceRecorder();
  let records = 0;
  const options = { task: "detect", model, backend: "webgpu", inferrers: 2, tracer } as const;
  for await (const _ of extract(video, options)) records++;
  await workersSettled();
  tracer.finish();
  runs.push({ records, parked: parkedWorkers(), backend: tracer.summary().backend });
}
console.log(JSON.stringify(runs));
