/**
 * Exit statuses under stress (issue 11): runs vx processes with `--backend webgpu` across every
 * path that ends a run — `fast` and `bulk`, one and several inference workers, a device lost
 * mid-run, an input error, with and without `--debug`, `auto` settling on wasm after asking for
 * an adapter, and the library (`extract` / `extractBulk`, then a natural exit) — two at a time,
 * and counts each path's exit statuses against the one vx means. Any other status (139 for
 * SIGSEGV, 134 for an abort) is a failure of vx.
 *
 * Runs the Deno binary itself (not the npm wrapper, which hides signals). The model is a tiny
 * YOLOX-layout detector (`src/fixtures/tiny_yolox.ts`), so a run on llvmpipe takes seconds; the
 * clips are made with ffmpeg.wasm. Nothing to install: it runs on a GPU machine without network
 * too (`bench/fast_device.sh`).
 *
 * ```sh
 * deno run -A bench/exit_stress.ts [--rounds 20] [--parallel 2] [--out tally.json]
 * ```
 * Exits 0 when every run ended with the status vx means, 1 otherwise.
 *
 * @module
 */

import { makeVideo } from "../src/fixtures/video.ts";
import { tinyYolox } from "../src/fixtures/tiny_yolox.ts";
import { writeSection } from "./measure.ts";

const args = Deno.args;
const opt = (name: string, dflt: number) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? Number(args[i + 1]) : dflt;
};
const rounds = opt("rounds", 20);
const parallel = opt("parallel", 2);
const outIdx = args.indexOf("--out");
const outPath = outIdx >= 0 ? args[outIdx + 1] : undefined;

const root = new URL("../", import.meta.url).pathname;
const dir = Deno.makeTempDirSync({ prefix: "vx-exit-" });
const model = `${dir}/tiny.onnx`;
Deno.writeFileSync(model, tinyYolox());
const clips = `${dir}/clips`;
Deno.mkdirSync(clips);
for (const n of ["a", "b", "c"]) {
  const spec = { codec: "h264", width: 96, height: 64, frames: 4, keyint: 1 } as const;
  await makeVideo(`${clips}/${n}.mp4`, spec);
}
const bad = `${dir}/bad.mp4`;
Deno.writeTextFileSync(bad, "not a video");
const lib = `${dir}/lib.ts`;
Deno.writeTextFileSync(
  lib,
  `import { extract, extractBulk } from ${JSON.stringify(`${root}mod.ts`)};
import { FAULTS } from ${JSON.stringify(`${root}src/pipeline/faults.ts`)};
const o = { task: "detect", model: ${JSON.stringify(model)}, backend: "webgpu",
  [FAULTS]: { loseGpu: Deno.args[0] === "lose" } } as const;
let n = 0;
for await (const _ of extract(${JSON.stringify(`${clips}/a.mp4`)}, o)) n++;
for await (const _ of extractBulk([${JSON.stringify(clips)}], { ...o, inferrers: 2 })) n++;
console.log(n);
`,
);

const cli = `${root}cli.ts`;
const detect = ["--task", "detect", "--model", model, "--backend", "webgpu"];
const trace = () => `--debug=${dir}/${crypto.randomUUID()}.json`;

/** Each path: the vx arguments (after `deno run -A`) and the status vx means. */
const PATHS: { name: string; args: () => string[]; want: number }[] = [
  { name: "fast", args: () => [cli, "fast", `${clips}/a.mp4`, ...detect], want: 0 },
  {
    name: "fast --debug",
    args: () => [cli, "fast", `${clips}/a.mp4`, ...detect, trace()],
    want: 0,
  },
  {
    name: "fast, device lost",
    args: () => [cli, "fast", `${clips}/a.mp4`, ...detect, "--lose-gpu"],
    want: 0,
  },
  { name: "fast, bad input", args: () => [cli, "fast", bad, ...detect], want: 1 },
  {
    name: "fast, auto settles on wasm",
    args: () => [cli, "fast", `${clips}/a.mp4`, ...detect.slice(0, 4), "--backend", "auto"],
    want: 0,
  },
  { name: "bulk --jobs 1", args: () => [cli, "bulk", clips, ...detect, "--jobs", "1"], want: 0 },
  {
    name: "bulk --jobs 2 --debug",
    args: () => [cli, "bulk", clips, ...detect, "--jobs", "2", trace()],
    want: 0,
  },
  {
    name: "bulk --jobs 2, device lost",
    args: () => [cli, "bulk", clips, ...detect, "--jobs", "2", "--lose-gpu"],
    want: 0,
  },
  {
    name: "bulk --jobs 2, a bad file",
    args: () => [cli, "bulk", clips, bad, ...detect, "--jobs", "2", trace()],
    want: 1,
  },
  { name: "library", args: () => ["--config", `${root}deno.json`, lib], want: 0 },
  {
    name: "library, device lost",
    args: () => ["--config", `${root}deno.json`, lib, "lose"],
    want: 0,
  },
];

const runs = Array.from({ length: rounds }, () => PATHS).flat();
const tally = new Map<string, Map<number, number>>(PATHS.map((p) => [p.name, new Map()]));
const surprises: string[] = [];
let next = 0;
const started = performance.now();

async function runner() {
  while (next < runs.length) {
    const p = runs[next++];
    const out = await new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", ...p.args()],
      stdout: "null",
      stderr: "piped",
      stdin: "null",
      env: { NO_COLOR: "1" },
    }).output();
    const status = out.signal ? 128 + (signalNumber(out.signal) ?? 0) : out.code;
    const seen = tally.get(p.name)!;
    seen.set(status, (seen.get(status) ?? 0) + 1);
    if (status !== p.want) {
      const err = new TextDecoder().decode(out.stderr).trim().split("\n").slice(-3).join(" | ");
      surprises.push(`${p.name}: exit ${status} (${out.signal ?? "no signal"}), stderr: ${err}`);
      console.error(`exit_stress: ${surprises.at(-1)}`);
    }
  }
}

function signalNumber(s: Deno.Signal): number | undefined {
  return ({ SIGSEGV: 11, SIGABRT: 6, SIGKILL: 9, SIGBUS: 7, SIGTERM: 15 } as Record<
    string,
    number
  >)[
    s
  ];
}

await Promise.all(Array.from({ length: parallel }, runner));
const seconds = (performance.now() - started) / 1000;
Deno.removeSync(dir, { recursive: true });

const rows = PATHS.map((p) => {
  const seen = [...tally.get(p.name)!].sort(([a], [b]) => a - b);
  return { path: p.name, want: p.want, statuses: Object.fromEntries(seen) };
});
const total = runs.length;
const result = {
  date: new Date().toISOString().slice(0, 10),
  runs: total,
  parallel,
  seconds: Math.round(seconds),
  unexpected: surprises.length,
  rows,
  surprises,
};
for (const r of rows) {
  const got = Object.entries(r.statuses).map(([s, n]) => `${n}× exit ${s}`).join(", ");
  console.log(`${r.path.padEnd(30)} want ${r.want}: ${got}`);
}
console.log(`${total} runs in ${result.seconds} s, ${surprises.length} not the status vx means`);
if (outPath) Deno.writeTextFileSync(outPath, JSON.stringify(result, null, 2) + "\n");

const cpu = /model name\s*:\s*(.*)/.exec(Deno.readTextFileSync("/proc/cpuinfo"))?.[1] ?? "?";
const gpu = await navigator.gpu?.requestAdapter().catch(() => null);
const info = gpu?.info;
const adapterName = info
  ? [info.vendor, info.architecture, info.device, info.description]
    .filter(Boolean).join(" ")
  : "none";
await writeSection(
  root,
  "exit",
  [
    "## Exit statuses (`bench/exit_stress.ts`)",
    "",
    `Machine: ${navigator.hardwareConcurrency} cores, ${cpu}; WebGPU adapter: ${adapterName}. ` +
    `Date: ${result.date}. ${total} vx processes, ${parallel} at a time, in ${result.seconds} s; ` +
    "`--backend webgpu` with a tiny YOLOX-layout detector on 96×64 H.264 clips (3 files of 4 " +
    "keyframes, and a text file named .mp4).",
    "",
    "| path | status vx means | statuses seen |",
    "| --- | --- | --- |",
    ...rows.map((r) =>
      `| ${r.path} | ${r.want} | ${
        Object.entries(r.statuses).map(([s, n]) => `${n}× ${s}`).join(", ")
      } |`
    ),
    "",
    `${surprises.length} of ${total} runs ended with a status vx did not mean.` +
    (surprises.length ? ` ${surprises.slice(0, 5).join("; ")}` : ""),
  ].join("\n"),
);
Deno.exit(surprises.length ? 1 : 0);
