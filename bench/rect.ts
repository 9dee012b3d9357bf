/**
 * `deno task bench:rect`: what the rectangular input of `detect` buys (issue 26, lever 1), with
 * YOLOX-Nano from ../shared.
 *
 * - On the 20-keyframe 720p clip of `bench/run.ts` (16:9: each keyframe runs at 416×256),
 *   `vx fast` against `vx fast --size 416x416` (the square letterbox), with the default pool
 *   and with `--jobs 1 --threads 1`, interleaved (rect, square, rect, square, …) so drift hits
 *   both. Each run writes a `--debug` trace; from it, the inference per keyframe (the summary's
 *   `inference` total ÷ keyframes: the issue's measure, cold first runs included) and the median
 *   keyframe's inference span (the steady state). Ratios are taken per pair of runs, then the
 *   median of those.
 * - The same pairs through a warm engine: one `vx serve --debug` (started once, warmed by a round
 *   that is left out), and `vx fast --server` clients interleaved with the pools above. The
 *   inference per keyframe comes from the server's trace (its `inference` spans, a request's
 *   keyframes in order, the requests one at a time), the wall time from the client.
 * - The model alone, in this process: one session at each shape, run alternately (rect, square,
 *   …) on the same letterboxed keyframe after three warm-up runs each, so both see the same load.
 * - Agreement with the square on that clip and on holdout clips of other shapes (Big Buck Bunny
 *   at 1080p and 320×180, a 4:3 and a portrait clip of dog.jpg): every box of score > 0.5 in
 *   either run has a box of the same label in the other with IoU ≥ 0.85.
 * - Where the native anchor is set up (`bench/run.ts` installs onnxruntime-node under
 *   `.cache/native`, and `ffmpeg` is on PATH), vx against it at the same shape (IoU ≥ 0.7).
 *
 * Prints the tables; with `--write`, also rewrites its section of BENCHMARKS.md.
 *
 * Usage: deno task bench:rect [--runs N] [--write]
 *
 * @module
 */

import { makeVideo } from "../src/fixtures/video.ts";
import { createRuntime } from "../src/infer/runtime.ts";
import { yoloxAnchorCount } from "../src/tasks/detect_decode.ts";
import { measure, stats, writeSection } from "./measure.ts";
import { startServe } from "./serve_process.ts";
import { CACHE, clip720p, MODEL, requireShared, ROOT, runsFlag, SHARED } from "./inputs.ts";

const RUNS = runsFlag(3);
const WRITE = Deno.args.includes("--write");
requireShared(MODEL);
const video = await clip720p();
const deno = Deno.execPath();

const SQUARE = ["--size", "416x416"];
const POOLS: Record<string, string[]> = {
  "vx fast": [],
  "vx fast --jobs 1 --threads 1": ["--jobs", "1", "--threads", "1"],
  // Decoding done before inference starts: the inference spans do not share the cores with it.
  "vx fast --sequential": ["--sequential"],
};
const ALTERNATIONS = 20;

type Det = { label: string; score: number; box: number[] };
type Rec = { index: number; results: Det[] };
interface Traced {
  perKeyframe: number;
  steady: number;
  wallMs: number;
  inputs: Record<string, number>;
  records: Rec[];
}

/** One `vx fast` run of detect on `input` with `extra` flags, and what its trace says. */
async function run(input: string, extra: string[]): Promise<Traced> {
  const trace = `${CACHE}rect-trace.json`;
  const args = ["run", "-A", ROOT + "cli.ts", "fast", input, "--task", "detect", "--model", MODEL];
  const r = await measure(deno, [...args, "--backend", "wasm", `--debug=${trace}`, ...extra]);
  const t = JSON.parse(await Deno.readTextFile(trace));
  const spans: number[] = t.traceEvents
    .filter((e: { name: string }) => e.name === "inference")
    .map((e: { dur: number }) => e.dur / 1000);
  const keyframes = t.vx.files.reduce((n: number, f: { keyframes: number }) => n + f.keyframes, 0);
  return {
    perKeyframe: t.vx.stagesMs.inference / keyframes,
    steady: stats(spans).median,
    wallMs: r.wallMs,
    inputs: t.vx.inputs,
    records: r.lines.map((l) => JSON.parse(l)),
  };
}

function iou(a: number[], b: number[]): number {
  const w = Math.max(0, Math.min(a[2], b[2]) - Math.max(a[0], b[0]));
  const h = Math.max(0, Math.min(a[3], b[3]) - Math.max(a[1], b[1]));
  const area = (r: number[]) => (r[2] - r[0]) * (r[3] - r[1]);
  return (w * h) / (area(a) + area(b) - w * h);
}

/**
 * Every box of score > 0.5 in `a` or `b` against the best box of its label in the other:
 * the worst such IoU, how many boxes, and the ones under `min`.
 */
function agree(a: Rec[], b: Rec[], min: number) {
  let worst = 1;
  let boxes = 0;
  const misses: string[] = [];
  if (a.length !== b.length) misses.push(`${a.length} vs ${b.length} records`);
  const side = (x: Rec[], y: Rec[]) =>
    x.forEach((r, i) => {
      for (const d of r.results.filter((d) => d.score > 0.5)) {
        const best = Math.max(
          0,
          ...(y[i]?.results ?? []).filter((e) => e.label === d.label).map((e) => iou(d.box, e.box)),
        );
        boxes++;
        worst = Math.min(worst, best);
        if (best < min) {
          misses.push(`keyframe ${r.index}: ${d.label} ${d.score} IoU ${best.toFixed(2)}`);
        }
      }
    });
  side(a, b);
  side(b, a);
  return { worst, boxes, misses };
}

// The warm engine: one server for the whole run, its trace read once it has stopped.
const WARM = "vx fast --server (warm engine)";
const serverTrace = `${CACHE}rect-serve-trace.json`;
const server = await startServe([
  ...["--root", "/", "--models", SHARED + "models", "--backend", "wasm", "--max-engines", "3"],
  `--debug=${serverTrace}`,
]);
/** Each request's shape, client wall time and keyframes, in order; warm-ups are not counted. */
const warmRequests: {
  shape: "rect" | "square";
  warmUp: boolean;
  wallMs: number;
  keyframes: number;
}[] = [];
const viaServer = async (shape: "rect" | "square", warmUp = false) => {
  const args = ["run", "-A", ROOT + "cli.ts", "fast", video, "--server", server.base];
  const flags = ["--task", "detect", "--model", MODEL, ...(shape === "square" ? SQUARE : [])];
  const r = await measure(deno, [...args, ...flags]);
  warmRequests.push({ shape, warmUp, wallMs: r.wallMs, keyframes: r.lines.length });
};
// Each shape is an engine of its own, made on its first request.
await viaServer("rect", true);
await viaServer("square", true);

// Timing, interleaved.
const runs: Record<string, { rect: Traced; square: Traced }[]> = {};
for (let i = 0; i < RUNS; i++) {
  for (const [pool, flags] of Object.entries(POOLS)) {
    const rect = await run(video, flags);
    const square = await run(video, [...flags, ...SQUARE]);
    (runs[pool] ??= []).push({ rect, square });
    console.error(
      `bench: ${pool} #${i + 1}: ${rect.perKeyframe.toFixed(1)} vs ${
        square.perKeyframe.toFixed(1)
      } ms a keyframe`,
    );
  }
  await viaServer("rect");
  await viaServer("square");
}
await server.stop();
runs[WARM] = warmPairs(JSON.parse(await Deno.readTextFile(serverTrace)));

/**
 * The warm engine's pairs: the server's `inference` spans in order, split by request (each
 * request's keyframes), the warm-up requests left out.
 */
function warmPairs(
  trace: { traceEvents: { name: string; ph: string; ts: number; dur: number }[] },
) {
  const spans = trace.traceEvents
    .filter((e) => e.name === "inference" && e.ph === "X")
    .sort((a, b) => a.ts - b.ts)
    .map((e) => e.dur / 1000);
  const total = warmRequests.reduce((n, r) => n + r.keyframes, 0);
  if (spans.length !== total) {
    throw new Error(`the server traced ${spans.length} inference spans for ${total} keyframes`);
  }
  const traced: Traced[] = [];
  let at = 0;
  for (const r of warmRequests) {
    const mine = spans.slice(at, at += r.keyframes);
    if (r.warmUp) continue;
    traced.push({
      perKeyframe: mine.reduce((a, b) => a + b, 0) / mine.length,
      steady: stats(mine).median,
      wallMs: r.wallMs,
      inputs: {},
      records: [],
    });
  }
  const pairs: { rect: Traced; square: Traced }[] = [];
  for (let i = 0; i + 1 < traced.length; i += 2) {
    pairs.push({ rect: traced[i], square: traced[i + 1] });
  }
  return pairs;
}

const fmt = (xs: number[], digits = 0) => {
  const s = stats(xs);
  return `${s.median.toFixed(digits)} (${s.min.toFixed(digits)}–${s.max.toFixed(digits)})`;
};
const timingRows: string[] = [];
for (const [pool, pairs] of Object.entries(runs)) {
  const row = (what: string, f: (t: Traced) => number, digits = 0) =>
    timingRows.push(
      `| ${pool} | ${what} | ${fmt(pairs.map((p) => f(p.rect)), digits)} | ${
        fmt(pairs.map((p) => f(p.square)), digits)
      } | ${fmt(pairs.map((p) => f(p.rect) / f(p.square)), 2)} |`,
    );
  row(
    pool === WARM
      ? "inference ms a keyframe (the server's spans ÷ keyframes)"
      : "inference ms a keyframe (`--debug` total ÷ keyframes)",
    (t) => t.perKeyframe,
    1,
  );
  row("median keyframe's inference, ms", (t) => t.steady, 1);
  row("wall, ms", (t) => t.wallMs);
}

// Agreement on the clip and the holdouts, one run of each shape.
const CLIPS: Record<string, () => Promise<string>> = {
  "720p, 16:9 (the timed clip)": () => Promise.resolve(video),
  "Big Buck Bunny 1080p, 16:9": () => Promise.resolve(SHARED + "media/bbb_1080p60_2s_h264.mp4"),
  "Big Buck Bunny 320×180 VP9, 16:9": () =>
    Promise.resolve(SHARED + "media/bbb_320x180_10s_vp9.webm"),
  "dog.jpg 640×480, 4:3": () => dogClip(640, 480),
  "dog.jpg 360×640, portrait": () => dogClip(360, 640),
};
async function dogClip(width: number, height: number): Promise<string> {
  const path = `${CACHE}rect_dog_${width}x${height}.mp4`;
  try {
    Deno.statSync(path);
  } catch {
    await makeVideo(path, {
      codec: "h264",
      width,
      height,
      frames: 4,
      keyint: 2,
      image: SHARED + "media/dog.jpg",
    });
  }
  return path;
}
const nativeReady = (() => {
  try {
    Deno.statSync(ROOT + ".cache/native/node_modules/onnxruntime-node");
    return new Deno.Command("ffmpeg", { args: ["-version"], stdout: "null" }).outputSync().success;
  } catch {
    return false;
  }
})();
const agreeRows: string[] = [];
for (const [name, make] of Object.entries(CLIPS)) {
  const input = await make();
  const rect = await run(input, []);
  const square = await run(input, SQUARE);
  const a = agree(rect.records, square.records, 0.85);
  let native = "not set up";
  if (nativeReady) {
    const out = await measure(deno, ["run", "-A", ROOT + "bench/native_anchor.ts", input, MODEL]);
    const n = agree(rect.records, out.lines.map((l) => JSON.parse(l)), 0.7);
    native = n.misses.length === 0
      ? `agrees (worst IoU ${n.worst.toFixed(3)})`
      : `**${n.misses.join("; ")}**`;
  }
  agreeRows.push(
    `| ${name} | ${Object.keys(rect.inputs).join(", ")} | ${rect.records.length} | ${a.boxes} | ${
      a.misses.length === 0
        ? `agree (worst IoU ${a.worst.toFixed(3)})`
        : `**${a.misses.join("; ")}**`
    } | ${native} |`,
  );
}

// The model alone, alternating shapes run by run in this process. Last: once onnxruntime has run
// in this thread, workers started after (makeVideo's) fail to start.
const engine = createRuntime({ threads: 1, backend: "wasm" });
const rectModel = await engine.load(MODEL, {
  reshape: { images: [1, 3, 256, 416], output: [1, yoloxAnchorCount(416, 256), 85] },
});
const squareModel = await engine.load(MODEL);
const alone: Record<"rect" | "square", number[]> = { rect: [], square: [] };
const frame = new Float32Array(3 * 416 * 416).fill(114);
for (let i = -3; i < ALTERNATIONS; i++) {
  for (
    const [name, model, h] of [["rect", rectModel, 256], ["square", squareModel, 416]] as const
  ) {
    const data = frame.subarray(0, 3 * 416 * h);
    const t0 = performance.now();
    await model.run({ images: { data, dims: [1, 3, h, 416] } });
    if (i >= 0) alone[name].push(performance.now() - t0);
  }
}
await engine.release?.();
const aloneRatio = alone.rect.map((r, i) => r / alone.square[i]);

const cpu = (await Deno.readTextFile("/proc/cpuinfo")).match(/model name\s*:\s*(.*)/)?.[1];
const text = [
  "## Rectangular detector inputs (`deno task bench:rect`)",
  "",
  `Machine: ${navigator.hardwareConcurrency} cores, ${cpu}; Deno ${Deno.version.deno}; ` +
  `${
    new Date().toISOString().slice(0, 10)
  }; ${RUNS} runs of each, interleaved; median (min–max). ` +
  "YOLOX-Nano on wasm, the 20-keyframe 720p clip (16:9). `rect` is the default (each keyframe at " +
  "416×256), `square` is `--size 416x416`; the ratio is rect ÷ square per pair of runs.",
  "",
  "| pool | figure | rect | square | ratio |",
  "| --- | --- | --- | --- | --- |",
  ...timingRows,
  "",
  `The model alone (one wasm thread, this process, the shapes alternating run by run, ${ALTERNATIONS} ` +
  `runs each after 3 warm-up runs): rect ${fmt(alone.rect, 1)} ms, square ${
    fmt(alone.square, 1)
  } ms, ratio ${fmt(aloneRatio, 2)}.`,
  "",
  "Agreement with the square: every box of score > 0.5 in either run has one of the same label in " +
  "the other with IoU ≥ 0.85; against the native anchor (ffmpeg CLI + onnxruntime-node at the " +
  "same shape) IoU ≥ 0.7.",
  "",
  "| clip | rect inputs | keyframes | boxes > 0.5 | vs square | vs native |",
  "| --- | --- | --- | --- | --- | --- |",
  ...agreeRows,
].join("\n");
console.log(text);
if (WRITE) await writeSection(ROOT, "rect", text);
