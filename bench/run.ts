/**
 * `deno task bench`: vx fast against vx fast --sequential, on a 20-keyframe 720p H.264 video
 * that the bench makes itself, with YOLOX-Nano from ../shared. Runs interleaved (A B A B …) so
 * drift hits both; prints a table and writes BENCHMARKS.md.
 *
 * Usage: deno task bench [--runs N]
 *
 * @module
 */

import { makeVideo } from "../src/fixtures/video.ts";
import { measure, type RunFigures, stats } from "./measure.ts";

const ROOT = new URL("../", import.meta.url).pathname;
const SHARED = new URL("../../shared/", import.meta.url).pathname;
const MODEL = SHARED + "models/yolox_nano.onnx";
const runsAt = Deno.args.indexOf("--runs");
const RUNS = runsAt >= 0 ? Number(Deno.args[runsAt + 1]) : 5;

try {
  Deno.statSync(MODEL);
} catch {
  console.error(`bench: ${MODEL} is absent; the benchmark needs ../shared`);
  Deno.exit(1);
}

const cache = ROOT + ".cache/bench/";
await Deno.mkdir(cache, { recursive: true });
const video = cache + "720p_20kf.mp4";
try {
  Deno.statSync(video);
} catch {
  console.error("bench: making", video);
  // 20 s of 720p at 30 fps with a keyframe every second: 20 keyframes.
  await makeVideo(video, {
    codec: "h264",
    width: 1280,
    height: 720,
    frames: 600,
    fps: 30,
    keyint: 30,
    image: SHARED + "media/dog.jpg",
  });
}

const deno = Deno.execPath();
const variants: Record<string, string[]> = {
  "vx fast": ["run", "-A", ROOT + "cli.ts", "fast", video, "--task", "detect", "--model", MODEL],
  "vx fast --sequential": [
    "run",
    "-A",
    ROOT + "cli.ts",
    "fast",
    video,
    "--task",
    "detect",
    "--model",
    MODEL,
    "--sequential",
  ],
};

const results: Record<string, RunFigures[]> = {};
for (let i = 0; i < RUNS; i++) {
  for (const [name, args] of Object.entries(variants)) {
    const r = await measure(deno, args);
    if (r.lines.length !== 20) throw new Error(`${name}: ${r.lines.length} records, want 20`);
    (results[name] ??= []).push(r);
    console.error(
      `run ${i + 1}/${RUNS} ${name}: wall ${r.wallMs.toFixed(0)} ms, first ${
        r.firstMs.toFixed(0)
      } ms`,
    );
  }
}

const fmt = (xs: number[], digits = 0) => {
  const s = stats(xs);
  return `${s.median.toFixed(digits)} (${s.min.toFixed(digits)}–${s.max.toFixed(digits)})`;
};
const rows = Object.entries(results).map(([name, rs]) =>
  `| ${name} | ${fmt(rs.map((r) => r.wallMs))} | ${fmt(rs.map((r) => r.firstMs))} | ${
    fmt(rs.map((r) => r.peakRssMb))
  } | ${fmt(rs.map((r) => r.cpuMs))} |`
);
const wall = (n: string) => stats(results[n].map((r) => r.wallMs)).median;
const ratio = wall("vx fast --sequential") / wall("vx fast");
const cpuInfo = Deno.readTextFileSync("/proc/cpuinfo");
const cpu = /model name\s*:\s*(.*)/.exec(cpuInfo)?.[1] ?? "unknown CPU";
const table = [
  `Machine: ${navigator.hardwareConcurrency} cores, ${cpu}; Deno ${Deno.version.deno}, V8 ${Deno.version.v8}.`,
  `Date: ${
    new Date().toISOString().slice(0, 10)
  }. Input: 20 s 720p H.264, 20 keyframes; YOLOX-Nano 416². ${RUNS} runs each, interleaved; median (min–max).`,
  "",
  "| variant | wall ms | first record ms | peak RSS MB | CPU ms |",
  "| --- | --- | --- | --- | --- |",
  ...rows,
  "",
  `fast is ${ratio.toFixed(2)}× faster than --sequential (wall, medians).`,
].join("\n");
console.log(table);
await Deno.writeTextFile(
  ROOT + "BENCHMARKS.md",
  `# Benchmarks\n\n\`deno task bench\`\n\n${table}\n`,
);
