/**
 * `deno task bench:fast` (and the first half of `deno task bench`): on a 20-keyframe 720p H.264
 * video that the bench makes itself, with YOLOX-Nano from ../shared:
 *
 * - `vx fast`, `--jobs 1`, `--jobs 1 --threads 2` (one session with two wasm threads: the mode
 *   table's `FAST_THREADS`), `--sequential`, `--decode-first` (the same pool, not streaming: what
 *   overlap alone buys), `--debug` (tracing's cost) and the native anchor
 *   (`bench/native_anchor.ts`: Debian's ffmpeg CLI + onnxruntime-node, the same task code), run
 *   interleaved (A B C D A B C D …) so drift hits all; wall time, time to first record, peak RSS
 *   and CPU time, median (min–max);
 * - a per-stage breakdown of one traced run of each vx variant, from its `--debug` trace;
 * - whether the records of `fast` and the native anchor agree (same keyframes and pts, same
 *   labels, boxes within IoU 0.9, scores within 0.02).
 *
 * Prints the tables and rewrites its section of BENCHMARKS.md.
 *
 * Usage: deno task bench:fast [--runs N]
 *
 * @module
 */

import { measure, type RunFigures, stats, writeSection } from "./measure.ts";
import { CACHE, clip720p, MODEL, requireShared, ROOT, runsFlag } from "./inputs.ts";
import { SPAN, STAGES as TRACE_STAGES } from "../src/pipeline/tracer.ts";

const RUNS = runsFlag(5);
requireShared(MODEL);
const video = await clip720p();

const deno = Deno.execPath();
const vx = (...extra: string[]) => [
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
];
const variants: Record<string, [string, string[]]> = {
  "vx fast": [deno, vx()],
  "vx fast --jobs 1": [deno, vx("--jobs", "1")],
  "vx fast --jobs 1 --threads 2": [deno, vx("--jobs", "1", "--threads", "2")],
  "vx fast --sequential": [deno, vx("--sequential")],
  "vx fast --decode-first": [deno, vx("--decode-first")],
  "vx fast --debug": [deno, vx(`--debug=${CACHE}timed-trace.json`)],
  "native: ffmpeg CLI + onnxruntime-node": [deno, [
    "run",
    "-A",
    ROOT + "bench/native_anchor.ts",
    video,
    MODEL,
  ]],
};

const results: Record<string, RunFigures[]> = {};
for (let i = 0; i < RUNS; i++) {
  for (const [name, [cmd, args]] of Object.entries(variants)) {
    const r = await measure(cmd, args);
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
const median = (name: string, f: (r: RunFigures) => number) => stats(results[name].map(f)).median;
const rows = Object.entries(results).map(([name, rs]) =>
  `| ${name} | ${fmt(rs.map((r) => r.wallMs))} | ${fmt(rs.map((r) => r.firstMs))} | ${
    fmt(rs.map((r) => r.peakRssMb))
  } | ${fmt(rs.map((r) => r.cpuMs))} |`
);
const wall = (n: string) => median(n, (r) => r.wallMs);
const NATIVE = "native: ffmpeg CLI + onnxruntime-node";

// Stages, from one traced run of each vx variant (not among the timed runs).
type Summary = { wallMs: number; firstRecordMs: number; stagesMs: Record<string, number> };
const traced: Record<string, Summary> = {};
for (const name of ["vx fast", "vx fast --sequential"]) {
  const path = `${CACHE}trace-${name.replace(/\W+/g, "_")}.json`;
  const [cmd, args] = variants[name];
  await measure(cmd, [...args, `--debug=${path}`]);
  traced[name] = JSON.parse(await Deno.readTextFile(path)).vx;
}
// The trace's own stages (but `output`, which is the main thread's), so the table cannot drift.
const STAGES = TRACE_STAGES.filter((s) => s !== SPAN.output);
const stageRows = STAGES.map((s) =>
  `| ${s} | ${Object.values(traced).map((t) => (t.stagesMs[s] ?? 0).toFixed(0)).join(" | ")} |`
);

// Do fast and the native anchor agree?
function iou(a: number[], b: number[]): number {
  const w = Math.max(0, Math.min(a[2], b[2]) - Math.max(a[0], b[0]));
  const h = Math.max(0, Math.min(a[3], b[3]) - Math.max(a[1], b[1]));
  const area = (r: number[]) => (r[2] - r[0]) * (r[3] - r[1]);
  return (w * h) / (area(a) + area(b) - w * h);
}
type Rec = { pts: number; results: { label: string; score: number; box: number[] }[] };
const ours: Rec[] = results["vx fast"][0].lines.map((l) => JSON.parse(l));
const theirs: Rec[] = results[NATIVE][0].lines.map((l) => JSON.parse(l));
const problems: string[] = [];
let pairs = 0;
let worstIou = 1;
let worstScore = 0;
if (ours.length !== theirs.length) problems.push(`${ours.length} vs ${theirs.length} records`);
ours.forEach((a, i) => {
  const b = theirs[i];
  if (!b || Math.abs(a.pts - b.pts) > 1e-3) return problems.push(`pts ${a.pts} vs ${b?.pts}`);
  if (a.results.length !== b.results.length) {
    return problems.push(`pts ${a.pts}: ${a.results.length} vs ${b.results.length} detections`);
  }
  a.results.forEach((d, j) => {
    const e = b.results[j];
    pairs++;
    worstIou = Math.min(worstIou, iou(d.box, e.box));
    worstScore = Math.max(worstScore, Math.abs(d.score - e.score));
    if (d.label !== e.label) problems.push(`pts ${a.pts}: ${d.label} vs ${e.label}`);
  });
});
const agreement = problems.length === 0 && worstIou >= 0.9 && worstScore <= 0.02
  ? `Records of vx fast and the native anchor agree: same ${ours.length} keyframes and pts, ` +
    `${pairs} detections with the same labels, worst box IoU ${worstIou.toFixed(3)}, ` +
    `largest score difference ${worstScore.toFixed(3)}.`
  : `Records of vx fast and the native anchor DIFFER: ${
    problems.slice(0, 5).join("; ")
  } (worst IoU ${worstIou.toFixed(3)}, score Δ ${worstScore.toFixed(3)}).`;

// The warm engine: the same file through an engine that has already served it once.
const warmOut = await new Deno.Command(deno, {
  args: ["run", "-A", ROOT + "bench/engine_warm.ts", video, MODEL, String(RUNS)],
  stdout: "piped",
  stderr: "inherit",
}).output();
const warm = JSON.parse(new TextDecoder().decode(warmOut.stdout)) as {
  readyMs: number;
  first: number[];
  wall: number[];
  stats: { sessionsCreated: number; coresLoaded: number };
  sequential: { first: number[]; wall: number[] };
};

const cpuInfo = Deno.readTextFileSync("/proc/cpuinfo");
const cpu = /model name\s*:\s*(.*)/.exec(cpuInfo)?.[1] ?? "unknown CPU";
const debugCost = wall("vx fast --debug") - wall("vx fast");
const spread = stats(results["vx fast"].map((r) => r.wallMs));
const table = [
  "## fast (`deno task bench:fast`)",
  "",
  `Machine: ${navigator.hardwareConcurrency} cores, ${cpu}; Deno ${Deno.version.deno}, V8 ${Deno.version.v8}. ` +
  `Date: ${new Date().toISOString().slice(0, 10)}. Input: 20 s 720p H.264, 20 keyframes; ` +
  `YOLOX-Nano at 416×256 (detect's rectangle for 16:9); vx on wasm. ${RUNS} runs each, interleaved; median (min–max).`,
  "",
  "| variant | wall ms | first record ms | peak RSS MB | CPU ms |",
  "| --- | --- | --- | --- | --- |",
  ...rows,
  `| warm engine (\`createEngine\`, same file again) | ${fmt(warm.wall)} | ${
    fmt(warm.first)
  } | | |`,
  `| warm engine, sequential (\`createEngine({ sequential: true })\`) | ${
    fmt(warm.sequential.wall)
  } | ${fmt(warm.sequential.first)} | | |`,
  "",
  `- fast (${navigator.hardwareConcurrency} inference workers) is ${
    (wall("vx fast --jobs 1") / wall("vx fast")).toFixed(2)
  }× faster than fast with one inference worker, ${
    (wall("vx fast --jobs 1 --threads 2") / wall("vx fast")).toFixed(2)
  }× faster than one inference worker with two threads.`,
  `- The warm engine answers in ${(stats(warm.wall).median / wall(NATIVE)).toFixed(2)}× the ` +
  `native anchor's (cold) wall time, first record after ${
    stats(warm.first).median.toFixed(0)
  } ms ` +
  `(engine ready in ${warm.readyMs.toFixed(0)} ms; ${warm.stats.sessionsCreated} sessions and ` +
  `${warm.stats.coresLoaded} decoder core created for all ${RUNS + 1} calls).`,
  `- Start-up paid, streaming takes ${
    (stats(warm.wall).median / stats(warm.sequential.wall).median).toFixed(2)
  } of the sequential way's wall time (warm engines side by side, calls taking turns; ` +
  `the target is at most 1/1.5 = 0.67).`,
  `- Overlap alone: fast is ${
    (wall("vx fast --decode-first") / wall("vx fast")).toFixed(2)
  }× faster than the same pool decoding every keyframe before inferring any (--decode-first).`,
  `- fast is ${(wall("vx fast --sequential") / wall("vx fast")).toFixed(2)}× faster than ` +
  `--sequential, and takes ${(wall("vx fast") / wall(NATIVE)).toFixed(2)}× the native anchor's ` +
  `wall time (medians).`,
  `- --debug costs ${debugCost.toFixed(0)} ms of wall time against a run-to-run spread of ` +
  `${(spread.max - spread.min).toFixed(0)} ms for fast without it.`,
  `- ${agreement}`,
  "",
  "Per stage, ms summed over the run, from one traced run of each (stages overlap across " +
  "threads, so they add up to more than the wall time):",
  "",
  `| stage | ${Object.keys(traced).join(" | ")} |`,
  `| --- | ${Object.keys(traced).map(() => "---").join(" | ")} |`,
  ...stageRows,
  `| **wall** | ${Object.values(traced).map((t) => t.wallMs.toFixed(0)).join(" | ")} |`,
  `| **first record** | ${
    Object.values(traced).map((t) => t.firstRecordMs.toFixed(0)).join(" | ")
  } |`,
].join("\n");
console.log(table);
await writeSection(ROOT, "fast", table);
