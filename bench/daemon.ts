/**
 * `deno task bench:daemon`: the command line made warm by a local daemon. On the 20-keyframe
 * 720p H.264 clip with YOLOX-Nano from ../shared, in one run, interleaved (A B C A B C …):
 *
 * - cold `vx fast` (a process that starts its workers, cores and sessions);
 * - `vx fast --server unix:PATH`, a client process, through a warm daemon
 *   (`vx serve --socket PATH`, started once, its engine used by `--warm` client runs first);
 * - the native anchor (`bench/native_anchor.ts`: Debian's ffmpeg CLI + onnxruntime-node).
 *
 * Wall time and time to the first record, both from the process's start, median (min–max), and
 * the client's as ratios of the native anchor's; and whether every client run's records equal
 * the cold local run's. Prints the table and rewrites its section of BENCHMARKS.md.
 *
 * Usage: deno task bench:daemon [--runs N] [--warm N]
 *
 * @module
 */

import { measure, type RunFigures, stats, writeSection } from "./measure.ts";
import { CACHE, clip720p, MODEL, requireShared, ROOT, runsFlag, SHARED } from "./inputs.ts";

const RUNS = runsFlag(5);
/** The 1-minute load average: how busy the machine's cores were besides the bench. */
const load = () => Deno.readTextFileSync("/proc/loadavg").split(" ")[0];
const loadBefore = load();
const at = Deno.args.indexOf("--warm");
const WARM = at >= 0 ? Number(Deno.args[at + 1]) : 3;
requireShared(MODEL);
const video = await clip720p();
const deno = Deno.execPath();
const socket = `${CACHE}daemon.sock`;
const detect = ["--task", "detect", "--model", MODEL, "--backend", "wasm"];

// The daemon, under the README's narrow flags: read vx, the clip's folder and the models;
// write nothing but its socket; connect nowhere else.
const spool = await Deno.makeTempDir({ prefix: "vx-bench-daemon-" });
const daemon = new Deno.Command(deno, {
  args: [
    "run",
    `--allow-read=${ROOT},${SHARED}models,${CACHE},${spool}`,
    `--allow-write=${socket},${spool}`,
    `--allow-net=unix:${socket}`,
    ROOT + "cli.ts",
    "serve",
    "--socket",
    socket,
    "--root",
    CACHE,
    "--temp-dir",
    spool,
    "--models",
    SHARED + "models",
    ...detect,
  ],
  stdout: "null",
  stderr: "piped",
}).spawn();
const said: string[] = [];
const reading = (async () => {
  for await (const c of daemon.stderr.pipeThrough(new TextDecoderStream())) said.push(c);
})();
const ready = Date.now() + 60_000;
// It listens once its model is loaded and warm.
while (!said.join("").includes("listening on unix:")) {
  if (Date.now() > ready) throw new Error(`the daemon did not get ready:\n${said.join("")}`);
  await new Promise((r) => setTimeout(r, 100));
}

const vx = (
  ...extra: string[]
) => ["run", "-A", ROOT + "cli.ts", "fast", video, ...detect, ...extra];
// The client needs nothing but its socket, the clip and the model (to send their real paths).
const client = [
  "run",
  `--allow-read=${socket},${video},${MODEL}`,
  `--allow-write=${socket}`,
  `--allow-net=unix:${socket},vx:80`,
  ROOT + "cli.ts",
  "fast",
  video,
  ...detect,
  "--server",
  `unix:${socket}`,
];
const NATIVE = "native: ffmpeg CLI + onnxruntime-node";
const COLD = "vx fast (cold)";
const CLIENT = "vx fast --server (warm daemon)";
const variants: Record<string, string[]> = {
  [COLD]: vx(),
  [CLIENT]: client,
  [NATIVE]: ["run", "-A", ROOT + "bench/native_anchor.ts", video, MODEL],
};

// A daemon that has served a few files: V8 has tiered up onnxruntime's wasm in its workers.
for (let i = 0; i < WARM; i++) await measure(deno, client);

/** The daemon's CPU time so far, in ms (its workers are threads of its process). */
const daemonCpu = () => {
  const stat = Deno.readTextFileSync(`/proc/${daemon.pid}/stat`);
  const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return (Number(f[11]) + Number(f[12])) * 10; // USER_HZ is 100 on Linux
};
const served: number[] = [];
const results: Record<string, RunFigures[]> = {};
for (let i = 0; i < RUNS; i++) {
  for (const [name, args] of Object.entries(variants)) {
    const before = daemonCpu();
    const r = await measure(deno, args);
    if (name === CLIENT) served.push(daemonCpu() - before);
    if (r.lines.length !== 20) throw new Error(`${name}: ${r.lines.length} records, want 20`);
    (results[name] ??= []).push(r);
    console.error(
      `run ${i + 1}/${RUNS} ${name}: wall ${r.wallMs.toFixed(0)} ms, first ${
        r.firstMs.toFixed(0)
      } ms`,
    );
  }
}

const loadAfter = load();
daemon.kill("SIGTERM");
const { code } = await daemon.status;
await reading;
await Deno.remove(spool, { recursive: true });
if (code !== 0) throw new Error(`the daemon exited ${code}:\n${said.join("")}`);

// Every client run's records against the first cold run's.
const want = results[COLD][0].lines.join("\n");
const mismatched = results[CLIENT].filter((r) => r.lines.join("\n") !== want).length +
  results[COLD].filter((r) => r.lines.join("\n") !== want).length;

const fmt = (xs: number[]) => {
  const s = stats(xs);
  return `${s.median.toFixed(0)} (${s.min.toFixed(0)}–${s.max.toFixed(0)})`;
};
const median = (name: string, f: (r: RunFigures) => number) => stats(results[name].map(f)).median;
const ratio = (name: string, f: (r: RunFigures) => number) =>
  (median(name, f) / median(NATIVE, f)).toFixed(2);
const first = (r: RunFigures) => r.firstMs;
const wall = (r: RunFigures) => r.wallMs;
const cpu = (r: RunFigures) => r.cpuMs;
const rows = Object.entries(results).map(([name, rs]) =>
  `| ${name} | ${fmt(rs.map(wall))} | ${ratio(name, wall)}× | ${fmt(rs.map(first))} | ${
    ratio(name, first)
  }× | ${fmt(rs.map(cpu))} |`
);
const v = Deno.version;
const text = `## daemon (\`deno task bench:daemon\`)

Machine: 2 cores, AMD EPYC; Deno ${v.deno}, V8 ${v.v8}. Date: ${
  new Date().toISOString().slice(0, 10)
}. Input: 20 s 720p H.264, 20 keyframes; YOLOX-Nano at its default input (416×256 for this 16:9 clip); vx on wasm. One run of the bench: ${RUNS} runs
of each, interleaved, after ${WARM} client runs that warmed the daemon; median (min–max); times from
the process's start; ratios of medians against the native anchor of the same run. Load average
(1 min) ${loadBefore} when the bench started and ${loadAfter} when it ended (other work shared the
cores).

| variant | wall ms | wall ÷ native | first record ms | first ÷ native | CPU ms (the process) |
| --- | --- | --- | --- | --- | --- |
${rows.join("\n")}

- Targets (issue 22): the client's first record at most 0.6× the native anchor's: **${
  ratio(CLIENT, first)
}×**; its wall time at most 1.0×: **${ratio(CLIENT, wall)}×**.
- Records: ${
  mismatched === 0
    ? `every client run's 20 records equal the cold local run's, byte for byte`
    : `${mismatched} run(s) differ from the first cold run`
}.
- The client's CPU is its own process only (Deno and the command line); the work is the
  daemon's: ${fmt(served)} ms of CPU per client run, against the native anchor's ${
  fmt(results[NATIVE].map(cpu))
} ms (wasm inference in the daemon costs more CPU per keyframe than onnxruntime-node's native
  code, so the wall ratio depends on how busy the machine's two cores are).
`;
console.log(text);
await writeSection(ROOT, "daemon", text);
