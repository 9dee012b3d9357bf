/**
 * Child process for the memory test: runs `extract` on a file and prints the process's peak
 * resident set (VmHWM covers the workers, which are threads of this process) and the in-flight
 * gate's high-water marks.
 *
 * Usage: deno run -A tests/_peak_rss.ts <file> <model>
 */

import { extract } from "../mod.ts";
import type { GateLevels } from "../src/pipeline/gate.ts";

const [file, model] = Deno.args;
let peak: GateLevels | undefined;
let records = 0;
for await (
  const _ of extract(file, {
    task: "detect",
    model,
    threads: 2,
    tracer: {
      span() {},
      meta() {},
      inferred() {},
      counter(_name, levels) {
        peak = levels;
      },
    },
  })
) records++;
const status = await Deno.readTextFile("/proc/self/status");
const hwm = Number(/VmHWM:\s+(\d+) kB/.exec(status)?.[1]) * 1024;
console.log(JSON.stringify({ records, peakRss: hwm, gate: peak }));
