/**
 * For tests/webgpu_test.ts, in a child process: `fast` on the first file and `bulk` (two
 * inference workers) on all of them, on WebGPU, with each inference worker destroying its device
 * once set up (`loseGpu`, a test-only option). Prints `{ fast, bulk }`: each run's records, the
 * lines given to `onNotice`, and the trace summary.
 *
 * @module
 */

import { extract, extractBulk, type ExtractOptions } from "../mod.ts";
import { TraceRecorder } from "../src/debug/trace.ts";

async function run<T>(records: (o: ExtractOptions) => AsyncIterable<T>) {
  const tracer = new TraceRecorder();
  const notices: string[] = [];
  const out: T[] = [];
  const options: ExtractOptions = {
    backend: "webgpu",
    loseGpu: true,
    tracer,
    onNotice: (l) => notices.push(l),
  };
  for await (const r of records(options)) out.push(r);
  tracer.finish();
  return { records: out, notices, vx: tracer.summary() };
}

const [first] = Deno.args;
console.log(JSON.stringify({
  fast: await run((o) => extract(first, o)),
  bulk: await run((o) => extractBulk(Deno.args, { ...o, inferrers: 2 })),
}));
