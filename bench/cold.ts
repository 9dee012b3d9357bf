/**
 * `deno task bench:cold`: where a cold process's time goes on this machine, in page faults.
 *
 * Issue 20's last target (the 20-keyframe 720p clip, `--task keyframes`, cold, at most 3× native
 * `ffmpeg -discard:v nokey`) is bound by fixed costs of a fresh process. This bench measures them
 * side by side, every sample a fresh process, the variants interleaved:
 *
 * 1. **What a page fault costs here**: a fresh process touches a fresh 32 MiB buffer, one byte a
 *    4 KiB page, four times (each buffer freed before the next); ms per buffer and µs per fault.
 * 2. **The decode worker's stages** (`bench/_cold_worker.ts`): reading and compiling vx's
 *    decoder core, instantiating it, a first decode of 3 keyframes and a second one; the minor
 *    page faults of each and its wall time; and the same stages with the 32 MB `@ffmpeg/core`
 *    vx decoded with before, to show what the core's size costs.
 * 3. **The whole run**: `vx fast --task keyframes` on the clip against native
 *    `ffmpeg -discard:v nokey`, with their wall time, and with `perf stat` (when installed) their
 *    CPU time and minor page faults; and vx again with `GLIBC_TUNABLES=glibc.malloc.hugetlb=1`
 *    (glibc then asks for transparent huge pages for its large blocks), which vx does not use:
 *    the environment has to be set before the process starts, and see BENCHMARKS.md for how
 *    often this glibc honours it.
 *
 * Prints the tables; with `--write`, also rewrites its section of BENCHMARKS.md.
 *
 * Usage: deno task bench:cold [--runs N] [--write]
 *
 * @module
 */

import { minorFaults, type Stage, stats, writeSection } from "./measure.ts";
import { clip720p, ROOT, runsFlag } from "./inputs.ts";
import { DECODER_MANIFEST } from "../wasm/decoder.ts";

const DENO = Deno.execPath();
const SELF = new URL(import.meta.url).pathname;
const PAGE = 4096;
const BUFFER = 32 << 20;

// ---- Children: each runs in a fresh process and prints one JSON line ----

if (Deno.args[0] === "--child") {
  if (Deno.args[1] === "touch") {
    const out: { ms: number; faults: number }[] = [];
    for (let i = 0; i < 4; i++) {
      const buffer = new ArrayBuffer(BUFFER);
      const bytes = new Uint8Array(buffer);
      const f = minorFaults();
      const t = performance.now();
      for (let at = 0; at < bytes.length; at += PAGE) bytes[at] = 1;
      out.push({ ms: performance.now() - t, faults: minorFaults() - f });
      buffer.transfer(0); // frees it: the next buffer is new memory again
    }
    console.log(JSON.stringify(out));
  } else {
    const worker = new Worker(new URL("./_cold_worker.ts", import.meta.url), { type: "module" });
    const stages = await new Promise((resolve, reject) => {
      worker.onmessage = (e) => resolve(e.data);
      worker.onerror = (e) => reject(new Error(e.message));
      worker.postMessage({ input: Deno.args[2], npm: Deno.args[1] === "npm" });
    });
    console.log(JSON.stringify(stages));
  }
  Deno.exit(0);
}

// ---- The bench ----

const RUNS = runsFlag(5);
const WRITE = Deno.args.includes("--write");
if (!(Number.isInteger(RUNS) && RUNS >= 1)) {
  console.error("usage: bench/cold.ts [--runs N>=1] [--write]");
  Deno.exit(2);
}
const run = (cmd: string, args: string[]) => new Deno.Command(cmd, { args }).output();
const hasPerf = await run("perf", ["--version"]).then((o) => o.success, () => false);
const hasFfmpeg = await run("ffmpeg", ["-version"]).then((o) => o.success, () => false);
if (!hasFfmpeg) {
  console.error("bench: needs Debian's ffmpeg for the native anchor");
  Deno.exit(1);
}
const clip = await clip720p();

/** One whole run's figures; `cpuMs` and `faults` need perf. */
interface Whole {
  ms: number;
  cpuMs?: number;
  faults?: number;
}

/** Runs `cmd args` (under `perf stat` when there is one); fails on a non-zero exit. */
async function whole(cmd: string, args: string[], env?: Record<string, string>): Promise<Whole> {
  const argv = hasPerf ? ["stat", "-x,", "-e", "page-faults,task-clock", "--", cmd, ...args] : args;
  const start = performance.now();
  const out = await new Deno.Command(hasPerf ? "perf" : cmd, {
    args: argv,
    env,
    stdout: "null",
    stderr: "piped",
  }).output();
  const ms = performance.now() - start;
  const err = new TextDecoder().decode(out.stderr);
  if (!out.success) throw new Error(`${cmd} ${args.join(" ")}: exit ${out.code}\n${err}`);
  if (!hasPerf) return { ms };
  const counter = (name: string) => {
    const line = err.split("\n").find((l) => l.split(",")[2]?.startsWith(name));
    return line === undefined ? undefined : Number(line.split(",")[0]);
  };
  return { ms, cpuMs: counter("task-clock"), faults: counter("page-faults") };
}

async function child(kind: string): Promise<unknown> {
  const out = await new Deno.Command(DENO, {
    args: ["run", "-A", SELF, "--child", kind, clip],
    stdout: "piped",
    stderr: "piped",
  }).output();
  const text = new TextDecoder().decode(out.stdout).trim();
  if (!out.success) throw new Error(`child ${kind}: ${new TextDecoder().decode(out.stderr)}`);
  return JSON.parse(text);
}

const vx = ["run", "-A", ROOT + "cli.ts", "fast", clip, "--task", "keyframes"];
const native = ["-nostdin", "-v", "error", "-discard:v", "nokey", "-i", clip]
  .concat(["-map", "0:v", "-f", "null", "-"]);
const HUGE = { GLIBC_TUNABLES: "glibc.malloc.hugetlb=1" };
const WHOLE: { name: string; cmd: string; args: string[]; env?: Record<string, string> }[] = [
  { name: "vx fast --task keyframes", cmd: DENO, args: vx },
  { name: "ffmpeg -discard:v nokey (native)", cmd: "ffmpeg", args: native },
  { name: "vx, GLIBC_TUNABLES=glibc.malloc.hugetlb=1", cmd: DENO, args: vx, env: HUGE },
];

const vxdecBytes = DECODER_MANIFEST.wasm.bytes;
const npmCoreBytes = Deno.statSync(
  new URL(import.meta.resolve("@ffmpeg/core/wasm")).pathname,
).size;

const touches: { ms: number; faults: number }[] = [];
const stageRuns: Stage[][] = [];
const npmRuns: Stage[][] = [];
const wholes = new Map<string, Whole[]>(WHOLE.map((w) => [w.name, []]));
for (let i = 0; i < RUNS; i++) {
  touches.push(...(await child("touch") as { ms: number; faults: number }[]));
  stageRuns.push(await child("stages") as Stage[]);
  npmRuns.push(await child("npm") as Stage[]);
  for (const w of WHOLE) wholes.get(w.name)!.push(await whole(w.cmd, w.args, w.env));
  console.error(
    `run ${i + 1}/${RUNS}: ${WHOLE.map((w) => wholes.get(w.name)!.at(-1)!.ms.toFixed(0))}`,
  );
}

// ---- Tables ----

const load = Deno.loadavg()[0].toFixed(2);
const fmt = (xs: number[], digits = 0) => {
  const s = stats(xs);
  return `${s.median.toFixed(digits)} (${s.min.toFixed(digits)}–${s.max.toFixed(digits)})`;
};
const cpus = navigator.hardwareConcurrency;
const lines: string[] = [];
lines.push(
  `Machine: ${cpus} cores; Deno ${Deno.version.deno} (V8 ${Deno.version.v8}); ` +
    `${new Date().toISOString().slice(0, 10)}; ${RUNS} runs of each, interleaved, every one a ` +
    `fresh process; median (min–max); load average ${load} at the end. Input: \`${
      clip.slice(clip.lastIndexOf("/") + 1)
    }\` (20 s 720p H.264, 20 keyframes).`,
  "",
  "| a fresh 32 MiB buffer, first touch of each 4 KiB page | value |",
  "| --- | --- |",
  `| ms a buffer | ${fmt(touches.map((t) => t.ms), 1)} |`,
  `| minor faults a buffer | ${fmt(touches.map((t) => t.faults))} |`,
  `| µs a fault | ${fmt(touches.map((t) => (t.ms * 1000) / t.faults), 1)} |`,
  "",
);
/** A table of the decode worker's stages over `runs`: faults and ms of each, median (min–max). */
const stageTable = (title: string, runs: Stage[][]) => [
  `| ${title} | minor page faults | ms |`,
  "| --- | --- | --- |",
  ...runs[0].map((stage, k) => {
    const all = runs.map((r) => r[k]);
    return `| ${stage.name} | ${fmt(all.map((s) => s.faults))} | ${fmt(all.map((s) => s.ms))} |`;
  }),
];
const mb = (n: number) => (n / 1e6).toFixed(1);
lines.push(
  `vx's decoder core (${mb(vxdecBytes)} MB of wasm):`,
  "",
  ...stageTable("the decode worker's stage, vxdec", stageRuns),
  "",
  `The same stages with the \`@ffmpeg/core\` vx decoded with before (${mb(npmCoreBytes)} MB):`,
  "",
  ...stageTable("the decode worker's stage, @ffmpeg/core", npmRuns),
);
lines.push(
  "",
  "| whole run | wall ms | CPU ms | minor page faults |",
  "| --- | --- | --- | --- |",
);
for (const w of WHOLE) {
  const rs = wholes.get(w.name)!;
  const perf = (pick: (r: Whole) => number | undefined) => {
    const xs = rs.map(pick).filter((x): x is number => x !== undefined);
    return xs.length ? fmt(xs) : "n/a";
  };
  lines.push(
    `| ${w.name} | ${fmt(rs.map((r) => r.ms))} | ${perf((r) => r.cpuMs)} | ${
      perf((r) => r.faults)
    } |`,
  );
}
const median = (name: string) => stats(wholes.get(name)!.map((r) => r.ms)).median;
lines.push(
  "",
  `vx ÷ native (wall, medians): ${
    (median(WHOLE[0].name) / median(WHOLE[1].name)).toFixed(2)
  }; with the tunable: ${(median(WHOLE[2].name) / median(WHOLE[1].name)).toFixed(2)}.` +
    (hasPerf ? " Wall times are under `perf stat`." : " No perf: CPU and faults are n/a."),
);
if (hasPerf) {
  // The tunable took effect where the run faulted far less than the fewest of plain vx's runs.
  const plain = Math.min(...wholes.get(WHOLE[0].name)!.map((r) => r.faults ?? Infinity));
  const huge = wholes.get(WHOLE[2].name)!.filter((r) => (r.faults ?? Infinity) < 0.8 * plain);
  lines.push(
    `With the tunable, ${huge.length} of ${RUNS} runs took under 80% of plain vx's fewest page ` +
      `faults (the tunable in effect); their wall: ${
        huge.length ? fmt(huge.map((r) => r.ms)) : "n/a"
      } ms.`,
  );
}
const text = lines.join("\n");
console.log(text);
if (WRITE) {
  await writeSection(
    ROOT,
    "cold",
    `## Cold start in page faults (\`deno task bench:cold\`)\n\n${text}`,
  );
}
