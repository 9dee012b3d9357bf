/**
 * `deno task bench:draw`: what `--draw` and `--report` cost.
 *
 * - Drawing one keyframe (decode its JPEG, `drawbox`/`drawtext`, encode, write) in the draw
 *   worker, from 320×180 to 4K, with 2 and with 20 labelled boxes: median of 9 after a first,
 *   warm-up draw (loading the core is timed apart).
 * - `vx fast --task detect` (YOLOX-Nano from ../shared) on the 20-keyframe 720p video that
 *   `bench/run.ts` makes, plain, with `--frames-dir`, with `--frames-dir --draw`, with
 *   `--report`, and with all three, interleaved: wall time and CPU time (all threads), median
 *   (min–max). CPU time is the steadier figure on a shared machine.
 *
 * Prints the tables and rewrites its section of BENCHMARKS.md.
 *
 * Usage: deno task bench:draw [--runs N]
 *
 * @module
 */

import { makeVideo } from "../src/fixtures/video.ts";
import { extract } from "../src/pipeline/fast.ts";
import { Drawer } from "../src/draw/drawer.ts";
import type { FrameRecord } from "../src/records.ts";
import type { Detection } from "../src/tasks/task.ts";
import { measure, stats, writeSection } from "./measure.ts";
import { CACHE, clip720p, MODEL, requireShared, ROOT, runsFlag } from "./inputs.ts";

const RUNS = runsFlag(3);
requireShared(MODEL);

const cache = CACHE;
const work = cache + "draw/";
await Deno.mkdir(work, { recursive: true });

/** Boxes spread over the picture, each with a label and score. */
function boxes(n: number, w: number, h: number): Detection[] {
  return Array.from({ length: n }, (_, i) => {
    const x = (i % 5) / 5 * w, y = Math.floor(i / 5) / 4 * h;
    return {
      label: `label${i % 7}`,
      score: 0.5 + i / 100,
      box: [x + 4, y + 30, x + w / 6, y + h / 5],
    };
  });
}

/** The 1-minute load average: the machine may be shared, and then wall times mean less. */
const load = () => Deno.readTextFileSync("/proc/loadavg").split(" ")[0];
const loadAtStart = load();

const perSize: string[] = [];
const drawer = new Drawer();
let loadMs = NaN;
for (const [w, h] of [[320, 180], [640, 360], [1280, 720], [1920, 1080], [3840, 2160]]) {
  const video = `${work}${w}x${h}.mp4`;
  await makeVideo(video, { codec: "h264", width: w, height: h, frames: 1, keyint: 1 });
  let frame: FrameRecord | undefined;
  for await (const r of extract(video, { task: "keyframes", framesDir: work })) frame = r;
  const plain = await Deno.readFile(frame!.image!);
  const row = [`${w}×${h}`, `${(plain.length / 1024).toFixed(0)} KiB`];
  for (const n of [2, 20]) {
    const ms: number[] = [];
    for (let i = 0; i <= 9; i++) {
      await Deno.writeFile(frame!.image!, plain);
      const t = performance.now();
      await drawer.draw({ ...frame!, task: "detect", results: boxes(n, w, h) });
      if (Number.isNaN(loadMs)) loadMs = performance.now() - t;
      else if (i > 0) ms.push(performance.now() - t);
    }
    const s = stats(ms);
    row.push(`${s.median.toFixed(0)} (${s.min.toFixed(0)}–${s.max.toFixed(0)})`);
  }
  perSize.push(`| ${row.join(" | ")} |`);
  console.error(perSize.at(-1));
}
drawer.close();

const video = await clip720p();
const variants: [string, string[]][] = [
  ["plain", []],
  ["`--frames-dir`", ["--frames-dir", work + "f"]],
  ["`--frames-dir --draw`", ["--frames-dir", work + "f", "--draw"]],
  ["`--report`", ["--report", work + "r.html"]],
  ["`--frames-dir --draw --report`", [
    "--frames-dir",
    work + "f",
    "--draw",
    "--report",
    work + "r.html",
  ]],
];
const wall = variants.map(() => [] as number[]);
const cpuMs = variants.map(() => [] as number[]);
for (let run = 0; run < RUNS; run++) {
  for (const [i, [name, extra]] of variants.entries()) {
    const f = await measure(Deno.execPath(), [
      "run",
      "-A",
      ROOT + "cli.ts",
      "fast",
      video,
      "--task",
      "detect",
      "--model",
      MODEL,
      "--backend",
      "wasm",
      ...extra,
    ]);
    wall[i].push(f.wallMs);
    cpuMs[i].push(f.cpuMs);
    console.error(`${name}: ${f.wallMs.toFixed(0)} ms, CPU ${f.cpuMs.toFixed(0)} ms`);
  }
}
const reportKiB = (await Deno.stat(work + "r.html")).size / 1024;
const cpu = navigator.hardwareConcurrency;
const table = `## \`--draw\` and \`--report\` (bench/draw.ts)

${new Date().toISOString().slice(0, 10)}, ${cpu} cores, load average ${loadAtStart} at the start and
${load()} at the end (above the core count, the machine was shared: compare CPU times). Drawing one keyframe in the draw worker
(decode the JPEG, \`drawbox\` + \`drawtext\` per box, encode at \`-q:v 3\`, write), ms, median
(min–max) of 9; loading the worker's core and font before the first: ${loadMs.toFixed(0)} ms.

| picture | plain JPEG | 2 boxes | 20 boxes |
| ------- | ---------- | ------- | -------- |
${perSize.join("\n")}

\`vx fast --task detect\` (YOLOX-Nano, wasm) on the 20-keyframe 720p video of bench/run.ts, wall
time and CPU time (all threads) in ms, median (min–max) of ${RUNS}, interleaved; the report is
${reportKiB.toFixed(0)} KiB.

| run | wall ms | CPU ms |
| --- | ------- | ------ |
${
  variants.map(([name], i) => {
    const fmt = (xs: number[]) => {
      const s = stats(xs);
      return `${s.median.toFixed(0)} (${s.min.toFixed(0)}–${s.max.toFixed(0)})`;
    };
    return `| ${name} | ${fmt(wall[i])} | ${fmt(cpuMs[i])} |`;
  }).join("\n")
}
`;
console.log(table);
await writeSection(ROOT, "draw", table);
