/**
 * `@ffmpeg/core` (single thread) against `@ffmpeg/core-mt` for keyframe decoding, start-up paid
 * once (issue 12, item 3): each core is loaded once in its own worker (load time reported
 * apart), then decodes every file's keyframes `--repeat` times; the median of the warm decodes,
 * per keyframe, is what a resident engine pays. Workloads: 4K H.264, 1080p 10-bit HEVC, 1080p
 * all-intra H.264 (large frames) and 640x360 H.264 (small). The mt core runs with
 * `-threads auto` and with `-threads 2`.
 *
 * Usage: deno run -A bench/ffmpeg_cores.ts [--repeat 3]
 *
 * @module
 */

import { makeVideo } from "../src/fixtures/video.ts";
import type { CoreKind } from "../wasm/ffmpeg.ts";
import { stats } from "./measure.ts";

const i = Deno.args.indexOf("--repeat");
const repeat = i >= 0 ? Number(Deno.args[i + 1]) : 3;
const dir = new URL("../.cache/bench/cores/", import.meta.url).pathname;
await Deno.mkdir(dir, { recursive: true });

const clips = [
  {
    name: "4K H.264, 6 keyframes",
    file: "h264_4k.mp4",
    keyframes: 6,
    spec: { codec: "h264", width: 3840, height: 2160, frames: 12, keyint: 2 },
  },
  {
    name: "1080p 10-bit HEVC, 10 keyframes",
    file: "hevc10_1080p.mp4",
    keyframes: 10,
    spec: {
      codec: "hevc",
      width: 1920,
      height: 1080,
      frames: 20,
      keyint: 2,
      pixFmt: "yuv420p10le",
    },
  },
  {
    name: "1080p all-intra H.264, 20 keyframes",
    file: "h264_intra_1080p.mp4",
    keyframes: 20,
    spec: { codec: "h264", width: 1920, height: 1080, frames: 20, keyint: 1 },
  },
  {
    name: "640x360 H.264, 20 keyframes",
    file: "h264_360p.mp4",
    keyframes: 20,
    spec: { codec: "h264", width: 640, height: 360, frames: 100, keyint: 5 },
  },
] as const;
for (const c of clips) {
  try {
    Deno.statSync(dir + c.file);
  } catch {
    console.error(`bench: making ${c.file}`);
    await makeVideo(dir + c.file, { ...c.spec });
  }
}

function run(kind: CoreKind, threads: string) {
  return new Promise<{ loadMs: number; results: { file: string; ms: number[] }[] }>(
    (resolve, reject) => {
      const w = new Worker(new URL("./_core_worker.ts", import.meta.url), { type: "module" });
      w.onmessage = (e) => {
        resolve(e.data);
        w.terminate();
      };
      w.onerror = (e) => {
        e.preventDefault();
        reject(new Error(e.message));
        w.terminate();
      };
      w.postMessage({ kind, files: clips.map((c) => dir + c.file), repeat, threads });
    },
  );
}

const variants = [["st", "1"], ["mt", "auto"], ["mt", "2"]] as const;
const rows: string[][] = [];
const loads: string[] = [];
for (const [kind, threads] of variants) {
  const r = await run(kind, threads);
  loads.push(`${kind} (-threads ${threads}): core loaded in ${Math.round(r.loadMs)} ms`);
  r.results.forEach((res, k) => {
    const per = stats(res.ms).median / clips[k].keyframes;
    (rows[k] ??= [clips[k].name]).push(per.toFixed(1));
  });
}
console.log(`${navigator.hardwareConcurrency} cores, ${new Date().toISOString()}`);
for (const l of loads) console.log(l);
console.log(
  `| workload | ${variants.map(([k, t]) => `${k} -threads ${t} (ms/keyframe)`).join(" | ")} |`,
);
console.log(`| --- | ${variants.map(() => "---").join(" | ")} |`);
for (const r of rows) console.log(`| ${r.join(" | ")} |`);
