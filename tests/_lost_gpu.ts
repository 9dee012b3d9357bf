/**
 * For tests/webgpu_test.ts, in a child process: `fast` on the first file, or `bulk` (two
 * inference workers) on all of them (the first argument says which), on WebGPU, with each
 * inference worker destroying its device once set up (`loseGpu`, a test-only option). Prints the
 * run's records, the lines given to `onNotice`, and the trace summary. One run a process: a
 * worker whose device was lost is parked and reused on wasm by the next run of the process
 * (src/pipeline/workers.ts), which would then not lose a device of its own.
 *
 * @module
 */

import { extract, extractBulk, type ExtractOptions } from "../mod.ts";
import { TraceRecorder } from "../src/debug/trace.ts";
import { SPAN } from "../src/pipeline/tracer.ts";
import { FAULTS } from "../src/pipeline/faults.ts";

async function run<T>(records: (o: ExtractOptions) => AsyncIterable<T>) {
  const tracer = new TraceRecorder();
  const notices: string[] = [];
  const out: T[] = [];
  const options: ExtractOptions = {
    backend: "webgpu",
    [FAULTS]: { loseGpu: true },
    tracer,
    onNotice: (l) => notices.push(l),
  };
  for await (const r of records(options)) out.push(r);
  tracer.finish();
  // The workers that ran a keyframe (a worker still setting up when the others had done every
  // keyframe runs none, and has no device of its own to lose during the run).
  const { traceEvents } = tracer.toJSON();
  const inferred = new Set(traceEvents.filter((e) => e.name === SPAN.infer).map((e) => e.tid));
  return { records: out, notices, vx: tracer.summary(), workersThatInferred: inferred.size };
}

const [mode, ...files] = Deno.args;
console.log(JSON.stringify(
  mode === "fast"
    // One inference worker: the fallback is traced once, whichever worker a keyframe reaches.
    ? await run((o) => extract(files[0], { ...o, inferrers: 1 }))
    : await run((o) => extractBulk(files, { ...o, inferrers: 2 })),
));
