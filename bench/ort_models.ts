/**
 * `deno task bench:ort`: what the embedded OCR models' `.ort` forms buy (issue 26, lever 2;
 * `src/infer/optimised.ts`). "ort" is vx as it is; "onnx" is a copy of vx whose manifest is for
 * another onnxruntime-web (`src/fixtures/vx_tree.ts`), so both models run from their `.onnx`,
 * optimised at session creation as before. Each figure comes from fresh processes, run
 * interleaved (ort, onnx, ort, …) so drift hits both; the ratio is taken per pair, then its
 * median.
 *
 * - The task alone (one thread, as a `fast` worker): the OCR task's set-up (both sessions, the
 *   wasm compile included), its first run on the demo's first keyframe (the cold first
 *   inference), and a second task in the same process (its sessions on the compiled wasm).
 * - `vx fast` on the demo's clip: time to first record, wall time, and the `--debug` summary's
 *   session creation total (over both workers).
 * - The warm engine (`createRuntime({ task: "ocr" })`): time until ready (sessions created and
 *   warmed), then the first record of its first and second calls on the demo's clip.
 * - The steady state, in this process: a session of each form of each model, run alternately
 *   (ort, onnx, …) on the same input after warm-up runs, and the largest difference between their
 *   outputs.
 *
 * Prints the tables and the load average; with `--write`, also rewrites its section of
 * BENCHMARKS.md.
 *
 * Usage: deno task bench:ort [--runs N] [--write]
 *
 * @module
 */

import { DEMO_SPEC } from "../src/fixtures/demo_clip.ts";
import { makeVideo, runFFmpeg } from "../src/fixtures/video.ts";
import { ownManifest, vxWithManifest } from "../src/fixtures/vx_tree.ts";
import { createRuntime } from "../src/infer/runtime.ts";
import { OPTIMISED_MODELS, packagedAssets } from "../src/tasks/ocr.ts";
import { measure, stats, writeSection } from "./measure.ts";
import { CACHE, ROOT, runsFlag } from "./inputs.ts";

type Figures = Record<string, number>;
const FORMS = ["ort", "onnx"] as const;

/** Child: the OCR task of the vx at `root`, timed, printed as JSON. */
async function taskChild(root: string, raw: string): Promise<void> {
  // A vx from before the rename has src/infer/engine.ts and createEngine.
  const infer = await import(`${root}src/infer/runtime.ts`)
    .catch(() => import(`${root}src/infer/engine.ts`));
  const createRuntime = infer.createRuntime ?? infer.createEngine;
  const timeLoads = infer.timeLoads;
  const { createOcrTask } = await import(`${root}src/tasks/ocr.ts`);
  const data = await Deno.readFile(raw);
  const { width, height } = DEMO_SPEC;
  const frame = { index: 0, pts: 0, srcWidth: width, srcHeight: height, width, height, data };
  const { engine, loads } = timeLoads(createRuntime({ threads: 1 }));
  const out: Figures = {};
  const time = async (name: string, f: () => Promise<unknown>) => {
    const t = performance.now();
    const r = await f();
    out[name] = performance.now() - t;
    return r;
  };
  // deno-lint-ignore no-explicit-any
  const task: any = await time("setUp", () => createOcrTask({ task: "ocr" }, engine));
  await time("firstRun", () => task.run({ ...frame }));
  await time("secondRun", () => task.run({ ...frame }));
  // deno-lint-ignore no-explicit-any
  const again: any = await time("setUp2", () => createOcrTask({ task: "ocr" }, engine));
  await time("firstRun2", () => again.run({ ...frame }));
  out.cold = out.setUp + out.firstRun;
  const ms = loads.map((l: { start: number; end: number }) => l.end - l.start);
  [out.det, out.rec, out.det2, out.rec2] = ms;
  // deno-lint-ignore no-explicit-any
  const ort = task.models.filter((m: any) => m.optimised?.ort).length;
  console.log(JSON.stringify({ ...out, ort }));
}

/** Child: the warm engine of the vx at `root` on `video`, timed, printed as JSON. */
async function engineChild(root: string, video: string): Promise<void> {
  const { createRuntime } = await import(`${root}mod.ts`);
  const t0 = performance.now();
  const engine = createRuntime({ task: "ocr", backend: "wasm" });
  await engine.ready;
  const out: Figures = { ready: performance.now() - t0 };
  for (const name of ["firstCall", "secondCall"]) {
    const t = performance.now();
    for await (const _ of engine.extract(video)) out[name] ??= performance.now() - t;
  }
  await engine.close();
  console.log(JSON.stringify(out));
}

if (Deno.args[0] === "--task-child") {
  await taskChild(Deno.args[1], Deno.args[2]);
  Deno.exit(0);
}
if (Deno.args[0] === "--engine-child") {
  await engineChild(Deno.args[1], Deno.args[2]);
  Deno.exit(0);
}

const RUNS = runsFlag(5);
const WRITE = Deno.args.includes("--write");
const deno = Deno.execPath();
const loadavg = () => Deno.readTextFileSync("/proc/loadavg").split(" ").slice(0, 3).join(" ");
const loadBefore = loadavg();

await Deno.mkdir(CACHE, { recursive: true });
const video = `${CACHE}ort_demo.mp4`;
const raw = `${CACHE}ort_demo_frame.rgb`;
await makeVideo(video, DEMO_SPEC);
await runFFmpeg({
  args: ["-i", "/in.mp4", "-frames:v", "1", "-f", "rawvideo", "-pix_fmt", "rgb24", "/o.raw"],
  inputs: { "/in.mp4": video },
  outputs: { "/o.raw": raw },
});
const onnxRoot = await vxWithManifest({ ...(await ownManifest()), onnxruntimeWeb: "0.0.0" });
const roots = { ort: ROOT, onnx: onnxRoot };
const self = new URL(import.meta.url).pathname;

/** Each form's figures per run, and the ort/onnx ratio of each pair. */
const series: Record<string, Record<string, Figures[]>> = {};
async function pair(kind: string, run: (root: string) => Promise<Figures>): Promise<void> {
  const by = (series[kind] ??= { ort: [], onnx: [] });
  for (const form of FORMS) by[form].push(await run(roots[form]));
}
const child = async (mode: string, root: string, arg: string) =>
  JSON.parse((await measure(deno, ["run", "-A", self, mode, root, arg])).lines.at(-1)!);
const trace = `${CACHE}ort-trace.json`;
async function fast(root: string): Promise<Figures> {
  const m = await measure(deno, ["run", "-A", `${root}cli.ts`, "fast", video, `--debug=${trace}`]);
  const vx = JSON.parse(await Deno.readTextFile(trace)).vx;
  return { first: m.firstMs, wall: m.wallMs, sessions: vx.stagesMs["create model session"] };
}

try {
  for (let i = 0; i < RUNS; i++) {
    console.error(`bench: round ${i + 1}/${RUNS} (load ${loadavg()})`);
    await pair("task", (root) => child("--task-child", root, raw));
    await pair("fast", fast);
    await pair("engine", (root) => child("--engine-child", root, video));
  }
} finally {
  await Deno.remove(onnxRoot, { recursive: true });
}
/** Median ms a run of each form of `path`, alternating, and their outputs' largest difference. */
async function steady(path: string, dims: number[]): Promise<string> {
  const engine = createRuntime({ threads: 1 });
  const forms = [
    await engine.load(path, { optimised: OPTIMISED_MODELS }),
    await engine.load(path),
  ];
  if (!forms[0].optimised || !("ort" in forms[0].optimised)) throw new Error("no .ort session");
  const pixels = await Deno.readFile(raw);
  const data = new Float32Array(dims.reduce((a, b) => a * b))
    .map((_, i) => pixels[i % pixels.length] / 127.5 - 1);
  const times: number[][] = [[], []];
  let diff = 0;
  for (let i = 0; i < STEADY_WARM + STEADY_RUNS; i++) {
    const outs: Float32Array[] = [];
    for (const [k, m] of forms.entries()) {
      const t = performance.now();
      const out = await m.run({ [m.inputNames[0]]: { data, dims } });
      if (i >= STEADY_WARM) times[k].push(performance.now() - t);
      outs.push(out[m.outputNames[0]].data);
    }
    outs[0].forEach((v, j) => diff = Math.max(diff, Math.abs(v - outs[1][j])));
  }
  await engine.release?.();
  const [a, b] = times.map((t) => stats(t).median);
  const name = path.slice(path.lastIndexOf("/") + 1);
  return `| ${name} [${dims.join(",")}] | ${a.toFixed(0)} | ${b.toFixed(0)} | ${
    (a / b).toFixed(2)
  } | ${diff} |`;
}
const STEADY_WARM = 4;
const STEADY_RUNS = 20;
const { det, rec } = await packagedAssets();
const steadyRows = [await steady(det, [1, 3, 384, 640]), await steady(rec, [4, 3, 48, 320])];

if (series.task.ort.some((f) => f.ort !== 2) || series.task.onnx.some((f) => f.ort !== 0)) {
  throw new Error("bench: the ort runs did not all run from .ort, or the onnx ones did");
}

const ms = (x: number) => x.toFixed(0);
function row(kind: string, key: string, label: string): string {
  const [a, b] = FORMS.map((f) => series[kind][f].map((x) => x[key]));
  const ratio = stats(a.map((x, i) => x / b[i]));
  const cell = (xs: number[]) => {
    const s = stats(xs);
    return `${ms(s.median)} (${ms(s.min)}–${ms(s.max)})`;
  };
  return `| ${label} | ${cell(a)} | ${cell(b)} | ${ratio.median.toFixed(2)} (${
    ratio.min.toFixed(2)
  }–${ratio.max.toFixed(2)}) |`;
}
const rows = [
  ["task", "det", "OCR task: det session (first, wasm compile included)"],
  ["task", "rec", "OCR task: rec session"],
  ["task", "setUp", "OCR task: set-up (both sessions)"],
  ["task", "firstRun", "OCR task: first run (demo keyframe)"],
  ["task", "cold", "OCR task: cold first inference (set-up + first run)"],
  ["task", "secondRun", "OCR task: second run"],
  ["task", "det2", "second task in the process: det session"],
  ["task", "rec2", "second task in the process: rec session"],
  ["task", "firstRun2", "second task: first run"],
  ["fast", "first", "`vx fast` demo clip: first record"],
  ["fast", "wall", "`vx fast` demo clip: wall"],
  ["fast", "sessions", "`vx fast`: session creation, both workers (trace)"],
  ["engine", "ready", "warm engine: ready (sessions made and warmed)"],
  ["engine", "firstCall", "warm engine: first call's first record"],
  ["engine", "secondCall", "warm engine: second call's first record"],
].map(([k, key, label]) => row(k, key, label));
const date = new Date().toISOString().slice(0, 10);
const text = `## The embedded OCR models optimised once (\`deno task bench:ort\`)

${date}, ${navigator.hardwareConcurrency} cores (${cpuName()}), PP-OCRv4 det + rec, onnxruntime-web ${
  (await ownManifest()).onnxruntimeWeb
} in Deno ${Deno.version.deno}; ${RUNS} rounds of fresh processes, the two forms interleaved; load
average ${loadBefore} at the start, ${loadavg()} at the end. "ort": the committed \`.ort\` files
(optimised at 'extended' by native onnxruntime, loaded with optimisation disabled); "onnx": the
\`.onnx\`, optimised at session creation. ms, median (min–max); the ratio is ort ÷ onnx per round.

| | ort | onnx | ort ÷ onnx |
| --- | --- | --- | --- |
${rows.join("\n")}

The steady state (one process, one thread, ${STEADY_RUNS} alternating runs after ${STEADY_WARM} of warm-up; ms,
median):

| model [input] | ort | onnx | ort ÷ onnx | largest output difference |
| --- | --- | --- | --- | --- |
${steadyRows.join("\n")}
`;
console.log(text);
if (WRITE) await writeSection(ROOT, "ort-models", text);

function cpuName(): string {
  const info = Deno.readTextFileSync("/proc/cpuinfo");
  return /model name\s*:\s*(.*)/.exec(info)?.[1].trim() ?? "unknown CPU";
}
