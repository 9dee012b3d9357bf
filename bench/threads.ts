/**
 * `deno task bench:threads`: one session with two wasm threads against one-thread workers
 * (issue 26, lever 3), side by side in one process, for the thread counts of the mode table
 * (`src/pipeline/modes.ts`).
 *
 * Three inference workers, as the scheduler makes them: A with `numThreads = 2`, B and C with
 * one thread each, each with YOLOX-Nano at detect's 16:9 input (416×256), created, run once
 * (both timed) and warmed up. Then, round after round, so that the machine's load hits every
 * set-up alike: A alone, B alone, B and C at once, A and B at once, each worker running
 * `--frames` frames back to back. Per set-up: the throughput (ms a frame: the round's time over
 * the frames of all its workers) and the latency (the median run), median (min–max) over the
 * rounds, with the load average before and after.
 *
 * Prints the table; with `--write`, also rewrites its section of BENCHMARKS.md.
 *
 * Usage: deno task bench:threads [--runs N] [--frames N] [--write]
 *
 * @module
 */

import { stats, writeSection } from "./measure.ts";
import { MODEL, requireShared, ROOT, runsFlag } from "./inputs.ts";

const RUNS = runsFlag(8);
const at = Deno.args.indexOf("--frames");
const FRAMES = at >= 0 ? Number(Deno.args[at + 1]) : 6;
const WRITE = Deno.args.includes("--write");
const [WIDTH, HEIGHT] = [416, 256];
requireShared(MODEL);

const loadAverage = () => Deno.readTextFileSync("/proc/loadavg").split(" ").slice(0, 3).join(" ");
const loadBefore = loadAverage();

interface Bench {
  threads: number;
  call(msg: unknown): Promise<Record<string, number & number[]>>;
  worker: Worker;
}
function spawn(threads: number): Bench {
  const worker = new Worker(new URL("./_threads_worker.ts", import.meta.url), { type: "module" });
  const call = (msg: unknown) =>
    new Promise<Record<string, number & number[]>>((resolve, reject) => {
      worker.onmessage = (e) => resolve(e.data);
      worker.onerror = (e) => reject(e.error ?? e.message);
      worker.postMessage(msg);
    });
  return { threads, call, worker };
}

// One at a time, as the scheduler staggers them.
const [a, b, c] = [spawn(2), spawn(1), spawn(1)];
const setUp: string[] = [];
for (const [name, w] of [["A", a], ["B", b], ["C", c]] as const) {
  const r = await w.call({
    type: "init",
    threads: w.threads,
    model: MODEL,
    width: WIDTH,
    height: HEIGHT,
  });
  setUp.push(
    `${name} (${w.threads} thread${w.threads > 1 ? "s" : ""}): session ${
      r.createMs.toFixed(0)
    } ms, first run ${r.firstRunMs.toFixed(0)} ms`,
  );
}

const SETUPS: [string, Bench[]][] = [
  ["1 worker × `numThreads = 2` (A)", [a]],
  ["1 worker × 1 thread (B)", [b]],
  ["2 workers × 1 thread (B, C)", [b, c]],
  ["1 worker × 2 threads and 1 × 1, both busy (A, B)", [a, b]],
];
const figures = SETUPS.map(() => ({ throughput: [] as number[], latency: [] as number[] }));
for (let round = 0; round < RUNS; round++) {
  for (const [i, [, workers]] of SETUPS.entries()) {
    const t0 = performance.now();
    const out = await Promise.all(workers.map((w) => w.call({ type: "run", runs: FRAMES })));
    figures[i].throughput.push((performance.now() - t0) / (FRAMES * workers.length));
    figures[i].latency.push(stats(out.flatMap((o) => o.ms)).median);
  }
  console.error(
    `bench: round ${round + 1}/${RUNS}: ${
      figures.map((f) => f.throughput.at(-1)!.toFixed(0)).join(", ")
    } ms a frame`,
  );
}
for (const w of [a, b, c]) w.worker.terminate();
const loadAfter = loadAverage();

const fmt = (xs: number[]) => {
  const s = stats(xs);
  return `${s.median.toFixed(1)} (${s.min.toFixed(1)}–${s.max.toFixed(1)})`;
};
const cpu = (await Deno.readTextFile("/proc/cpuinfo")).match(/model name\s*:\s*(.*)/)?.[1];
const text = [
  "## Threads per inference session (`deno task bench:threads`)",
  "",
  `Machine: ${navigator.hardwareConcurrency} cores, ${cpu}; Deno ${Deno.version.deno}; ${
    new Date().toISOString().slice(0, 10)
  }; load average (1, 5, 15 min) ${loadBefore} before and ${loadAfter} after. YOLOX-Nano at ` +
  `${WIDTH}×${HEIGHT} on wasm, one process; ${RUNS} rounds of the set-ups in turn, each worker ` +
  `running ${FRAMES} frames back to back; median (min–max) over the rounds.`,
  "",
  "| set-up | throughput, ms a frame | latency, ms |",
  "| --- | --- | --- |",
  ...SETUPS.map(([name], i) =>
    `| ${name} | ${fmt(figures[i].throughput)} | ${fmt(figures[i].latency)} |`
  ),
  "",
  `Set-up, one worker after the other: ${setUp.join("; ")}.`,
].join("\n");
console.log(text);
if (WRITE) await writeSection(ROOT, "threads", text);
