/**
 * `deno task bench:webgpu`: per-frame inference on wasm against WebGPU, for YOLOX-Nano (416²,
 * from ../shared) and PP-OCRv4 detection (320² and 960×544, the OCR task's input for 16:9
 * video). Each backend creates its session, runs once (the first run compiles WebGPU's
 * shaders), warms up, then runs N times; the table gives the median (min–max) and how far the
 * WebGPU outputs lie from wasm's. A last table measures pre-processing a YOLOX frame on the GPU
 * (a compute shader feeding a GPU-resident tensor) against the CPU path the pipeline takes.
 * Prints markdown and appends it to BENCHMARKS.md, naming the machine and the adapter.
 *
 * Usage: deno task bench:webgpu [--runs N] [--warmup N] [--threads N] [--yolox PATH]
 *                               [--large | --skip-large] [--out FILE] [--no-append]
 *
 * The 960×544 row is left out on a software adapter (llvmpipe takes minutes there) unless
 * `--large` is given.
 *
 * @module
 */

import { adapterName, chooseBackend, isSoftwareAdapter } from "../src/infer/backend.ts";
import { createRuntime, type Model } from "../src/infer/runtime.ts";
import { loadWebGpuOrt } from "../src/infer/ort_webgpu.ts";
import { gpuPlanes, planesToFloat } from "../src/infer/gpu_planes.ts";
import { packagedAssets } from "../src/tasks/ocr.ts";
import { formatMarkdown, stats } from "./measure.ts";

const ROOT = new URL("../", import.meta.url).pathname;
const arg = (name: string) => {
  const at = Deno.args.indexOf(name);
  return at >= 0 ? Deno.args[at + 1] : undefined;
};
const RUNS = Number(arg("--runs") ?? 5);
const WARMUP = Number(arg("--warmup") ?? 1);
const THREADS = Number(arg("--threads") ?? Math.min(4, navigator.hardwareConcurrency));
const YOLOX = arg("--yolox") ?? new URL("../../shared/models/yolox_nano.onnx", import.meta.url)
  .pathname;

interface Case {
  name: string;
  path: string;
  dims: [number, number, number, number];
}

const decision = await chooseBackend("webgpu").catch(() => undefined);
const adapter = decision?.adapter;
const software = adapter !== undefined && isSoftwareAdapter(adapter);
const device = adapter ? `${adapterName(adapter)}${software ? " (software)" : ""}` : "none";

const det = (await packagedAssets()).det;
const cases: Case[] = [];
if (exists(YOLOX)) cases.push({ name: "YOLOX-Nano", path: YOLOX, dims: [1, 3, 416, 416] });
else console.error(`bench: ${YOLOX} is absent; no YOLOX-Nano rows (--yolox PATH)`);
cases.push({ name: "PP-OCRv4 det", path: det, dims: [1, 3, 320, 320] });
// A software adapter takes minutes at this size; --large runs it anyway.
if (Deno.args.includes("--large") || (!software && !Deno.args.includes("--skip-large"))) {
  cases.push({ name: "PP-OCRv4 det", path: det, dims: [1, 3, 544, 960] });
}

function exists(path: string): boolean {
  try {
    Deno.statSync(path);
    return true;
  } catch {
    return false;
  }
}

/** A fixed pseudo-random input in [0, 1), the same for both backends. */
function input(dims: readonly number[], scale = 1): Float32Array {
  const data = new Float32Array(dims.reduce((a, b) => a * b, 1));
  let s = 12345;
  for (let i = 0; i < data.length; i++) {
    s = (s * 1103515245 + 12345) >>> 0;
    data[i] = (s / 2 ** 32) * scale;
  }
  return data;
}

interface Row {
  model: string;
  backend: string;
  sessionMs: number;
  firstMs: number;
  runs: number[];
  maxDiff?: number;
}

async function timed<T>(f: () => Promise<T>): Promise<[T, number]> {
  const t = performance.now();
  const v = await f();
  return [v, performance.now() - t];
}

async function bench(c: Case, backend: "wasm" | "webgpu", reference?: Float32Array) {
  const engine = createRuntime({ threads: THREADS, backend });
  const [model, sessionMs] = await timed(() => engine.load(c.path));
  if (engine.backend !== backend) throw new Error(`${backend}: ${engine.fallbackReason}`);
  const feeds = { [model.inputNames[0]]: { data: input(c.dims), dims: c.dims } };
  const run = (m: Model) => m.run(feeds);
  const [first, firstMs] = await timed(() => run(model));
  for (let i = 0; i < WARMUP; i++) await run(model);
  const runs: number[] = [];
  for (let i = 0; i < RUNS; i++) runs.push((await timed(() => run(model)))[1]);
  const out = first[model.outputNames[0]].data;
  let maxDiff: number | undefined;
  if (reference) {
    maxDiff = 0;
    for (let i = 0; i < out.length; i++) {
      maxDiff = Math.max(maxDiff, Math.abs(out[i] - reference[i]));
    }
  }
  const row: Row = {
    model: `${c.name} ${c.dims[3]}×${c.dims[2]}`,
    backend: backend === "wasm" ? `wasm (${engine.threads} threads)` : "WebGPU",
    sessionMs,
    firstMs,
    runs,
    maxDiff,
  };
  console.error(`bench: ${row.model} on ${row.backend}: ${stats(runs).median.toFixed(1)} ms`);
  return { row, out };
}

/**
 * YOLOX-Nano from one 416² gbrp frame (what the decoder hands the detect task) to its output:
 * the pipeline's CPU path (planes to float32, uploaded by onnxruntime-web) against a compute
 * shader that does the same on the GPU and hands onnxruntime-web a GPU-resident tensor.
 */
async function preprocessOnGpu(path: string) {
  const ort = await loadWebGpuOrt();
  const bytes = await Deno.readFile(path);
  const session = await ort.InferenceSession.create(bytes, {
    executionProviders: ["webgpu"],
    logSeverityLevel: 3,
  });
  const device = (await ort.env.webgpu.device) as unknown as GPUDevice;
  const side = 416;
  const plane = side * side;
  const dims = [1, 3, side, side];
  const frame = new Uint8Array(input([3 * plane], 256).map(Math.floor));
  const floats = new Float32Array(3 * plane);
  const name = session.inputNames[0];

  // The pipeline's own converters (src/infer/gpu_planes.ts), as detect uses them for YOLOX:
  // gbrp planes G, B, R to float planes B, G, R, raw 0–255.
  const layout = { order: [1, 0, 2], scale: 1 } as const;
  const cpu = async () => {
    planesToFloat(frame, layout, floats);
    return await session.run({ [name]: new ort.Tensor("float32", floats, dims) });
  };

  const planes = gpuPlanes(device, plane, layout);
  const tensor = ort.Tensor.fromGpuBuffer(planes.output as never, { dataType: "float32", dims });
  const gpu = async () => {
    planes.convert(frame);
    return await session.run({ [name]: tensor });
  };

  const a = (await cpu())[session.outputNames[0]].data as Float32Array;
  const b = (await gpu())[session.outputNames[0]].data as Float32Array;
  let maxDiff = 0;
  for (let i = 0; i < a.length; i++) maxDiff = Math.max(maxDiff, Math.abs(a[i] - b[i]));
  for (let i = 0; i < WARMUP; i++) await cpu(), await gpu();
  const t: Record<"cpu" | "gpu" | "fill", number[]> = { cpu: [], gpu: [], fill: [] };
  for (let i = 0; i < RUNS; i++) {
    t.cpu.push((await timed(cpu))[1]);
    t.gpu.push((await timed(gpu))[1]);
    const f = performance.now();
    floats.set(frame.subarray(plane, 2 * plane), 0);
    floats.set(frame.subarray(0, plane), plane);
    floats.set(frame.subarray(2 * plane), 2 * plane);
    t.fill.push(performance.now() - f);
  }
  return { ...t, maxDiff };
}

const fmt = (xs: number[]) => {
  const s = stats(xs);
  const d = s.median < 10 ? 2 : s.median < 100 ? 1 : 0;
  return `${s.median.toFixed(d)} (${s.min.toFixed(d)}–${s.max.toFixed(d)})`;
};

function cpuName(): string {
  try {
    const info = Deno.readTextFileSync("/proc/cpuinfo");
    return /model name\s*:\s*(.*)/.exec(info)?.[1].trim() ?? "unknown CPU";
  } catch {
    return "unknown CPU";
  }
}

const rows: Row[] = [];
for (const c of cases) {
  const wasm = await bench(c, "wasm");
  rows.push(wasm.row);
  if (adapter) rows.push((await bench(c, "webgpu", wasm.out)).row);
}
const pre = adapter && exists(YOLOX) ? await preprocessOnGpu(YOLOX) : undefined;

const lines = [
  `### ${new Date().toISOString().slice(0, 10)}: WebGPU adapter ${device}`,
  "",
  `Machine: ${navigator.hardwareConcurrency} cores, ${cpuName()}; Deno ${Deno.version.deno}, ` +
  `onnxruntime-web 1.30.0. ${RUNS} runs after ${WARMUP} warm-up; ms, median (min–max). ` +
  `"first run" includes compiling WebGPU's shaders; "max |Δ|" is the largest difference of ` +
  `WebGPU's first output from wasm's.`,
  "",
  "| model, input | backend | create session | first run | per frame | max \\|Δ\\| |",
  "| --- | --- | --- | --- | --- | --- |",
  ...rows.map((r) =>
    `| ${r.model} | ${r.backend} | ${r.sessionMs.toFixed(0)} | ${r.firstMs.toFixed(0)} | ` +
    `${fmt(r.runs)} | ${r.maxDiff === undefined ? "" : r.maxDiff.toExponential(1)} |`
  ),
];
if (!adapter) lines.push("", "No WebGPU adapter: wasm only.");
if (pre) {
  lines.push(
    "",
    "YOLOX-Nano on WebGPU from one 416² gbrp frame to its output (pre-processing + inference):",
    "",
    "| pre-processing | per frame | of which CPU pre-processing |",
    "| --- | --- | --- |",
    `| CPU (the pipeline's path): float32 planes, uploaded by onnxruntime-web | ${fmt(pre.cpu)} | ${
      fmt(pre.fill)
    } |`,
    `| compute shader, GPU-resident input tensor (max \\|Δ\\| ${pre.maxDiff.toExponential(1)}) | ${
      fmt(pre.gpu)
    } | 0 |`,
  );
}
const table = lines.join("\n");
console.log(table);
const out = arg("--out");
if (out) await Deno.writeTextFile(out, table + "\n");
if (!Deno.args.includes("--no-append")) {
  const path = ROOT + "BENCHMARKS.md";
  let text = exists(path) ? await Deno.readTextFile(path) : "# Benchmarks\n";
  const heading = "## wasm vs WebGPU (`deno task bench:webgpu`)";
  if (!text.includes(heading)) text = `${text.trimEnd()}\n\n${heading}\n`;
  await Deno.writeTextFile(path, `${text.trimEnd()}\n\n${table}\n`);
  await formatMarkdown(path);
}
// Sessions and the GPU device keep the event loop alive.
Deno.exit(0);
