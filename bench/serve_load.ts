/**
 * `deno task bench:serve`: a load generator for `vx serve`, on loopback only. One server (YOLOX-Nano
 * from ../shared, wasm) answers the bulk bench's files (640x360 H.264, 5 keyframes each, made as
 * `bench/bulk.ts` makes them) to 1, 4 and 16 concurrent clients; each round is bounded in
 * requests and in time. Reports keyframes/s, p50/p95/p99 of time to first record and of request
 * time, the server's peak RSS and errors, beside `vx bulk` on the same files, and rewrites its
 * section of BENCHMARKS.md.
 *
 * Usage: deno task bench:serve [--quick]   (--quick: fewer requests, no bulk reference run)
 *
 * @module
 */

import { measure, writeSection } from "./measure.ts";
import { bulkSet, MODEL, requireShared, ROOT } from "./inputs.ts";
import { startServe } from "./serve_process.ts";

const quick = Deno.args.includes("--quick");
/** Requests per round, and the most seconds a round may take before it stops sending. */
const REQUESTS = quick ? 16 : 48;
const ROUND_S = 180;
const CLIENTS = [1, 4, 16];
/** Keyframes in each file of the set. */
const KEYFRAMES = 5;

requireShared(MODEL);
// The bulk bench's set (bench/bulk.ts): one seed, copied, so the work per file is the same.
const { dir, names } = await bulkSet(50);

/** The 1-minute load average: on a shared machine, the figures mean little without it. */
const load = () => Deno.readTextFileSync("/proc/loadavg").split(" ")[0];
const loadStart = load();
const task = ["--task", "detect", "--model", MODEL, "--backend", "wasm"];
const server = await startServe([
  "--root",
  dir,
  "--queue",
  "64",
  ...task,
]);
const peakRssMb = () => server.rssMb().peak;

const pct = (xs: number[], p: number) => {
  if (xs.length === 0) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.ceil((p / 100) * s.length) - 1)];
};

interface Round {
  clients: number;
  requests: number;
  keyframes: number;
  wallMs: number;
  first: number[];
  total: number[];
  errors: number;
  rssMb: number;
}

async function round(base: string, clients: number): Promise<Round> {
  let next = 0;
  let keyframes = 0;
  let errors = 0;
  const first: number[] = [];
  const total: number[] = [];
  const start = performance.now();
  const deadline = start + ROUND_S * 1000;
  const client = async () => {
    for (;;) {
      const i = next++;
      if (i >= REQUESTS || performance.now() > deadline) return;
      const t0 = performance.now();
      try {
        const res = await fetch(`${base}/extract`, {
          method: "POST",
          headers: { "content-type": "application/json" },
          body: JSON.stringify({ path: names[i % names.length] }),
        });
        let got = NaN;
        let buf = "";
        let ok = res.status === 200;
        for await (const chunk of res.body!.pipeThrough(new TextDecoderStream())) {
          if (Number.isNaN(got)) got = performance.now() - t0;
          buf += chunk;
        }
        const recs = buf.trim().split("\n").map((l) => JSON.parse(l));
        const status = recs.at(-1);
        ok &&= status?.status === "ok" && status.keyframes === KEYFRAMES;
        if (!ok) errors++;
        keyframes += recs.length - 1;
        first.push(got);
        total.push(performance.now() - t0);
      } catch {
        errors++;
      }
    }
  };
  await Promise.all(Array.from({ length: clients }, client));
  return {
    clients,
    requests: total.length,
    keyframes,
    wallMs: performance.now() - start,
    first,
    total,
    errors,
    rssMb: peakRssMb(),
  };
}

const rows: string[] = [];
let bulkRate = NaN;
try {
  await server.line(/ready: every model is loaded and warm/);
  const base = server.base;
  // One request first, so the figures are of a warm server, as in production.
  await round(base, 1).then(() => {});
  for (const c of CLIENTS) {
    const r = await round(base, c);
    const f = (xs: number[], p: number) => pct(xs, p).toFixed(0);
    rows.push(
      `| ${c} | ${r.requests} | ${(r.keyframes / (r.wallMs / 1000)).toFixed(1)} | ` +
        `${f(r.first, 50)} / ${f(r.first, 95)} / ${f(r.first, 99)} | ` +
        `${f(r.total, 50)} / ${f(r.total, 95)} / ${f(r.total, 99)} | ${r.rssMb.toFixed(0)} | ` +
        `${r.errors} |`,
    );
    console.error(rows.at(-1));
  }
} finally {
  const code = await server.stop();
  if (code !== 0) console.error(`bench: the server exited ${code}`);
}
if (!quick) {
  const bulk = await measure(Deno.execPath(), [
    "run",
    "-A",
    ROOT + "cli.ts",
    "bulk",
    ...names.slice(0, REQUESTS).map((n) => dir + n),
    ...task,
    "--out",
    "/dev/null",
  ]);
  // Its wall time includes start-up (~1 s), which a warm server does not pay per request.
  bulkRate = (REQUESTS * KEYFRAMES) / (bulk.wallMs / 1000);
}

const cpuInfo = Deno.readTextFileSync("/proc/cpuinfo");
const cpu = /model name\s*:\s*(.*)/.exec(cpuInfo)?.[1] ?? "unknown CPU";
const table = [
  "## serve (`deno task bench:serve`)",
  "",
  `Machine: ${navigator.hardwareConcurrency} cores, ${cpu}; Deno ${Deno.version.deno}. Date: ${
    new Date().toISOString().slice(0, 10)
  }. Load average ${loadStart} at the start, ${load()} at the end. One server (default pool, ` +
  "`--concurrency 2`), requests by path over loopback.",
  `Files: the bulk set (640x360 H.264, ${KEYFRAMES} keyframes each); YOLOX-Nano at its default input (416×256 for these 16:9 files), wasm. ` +
  `${REQUESTS} requests a round after one warm-up request; peak RSS is the server's so far.`,
  "",
  "| clients | requests | keyframes/s | first record ms p50 / p95 / p99 | request ms p50 / p95 / p99 | peak RSS MB | errors |",
  "| --- | --- | --- | --- | --- | --- | --- |",
  ...rows,
  "",
  Number.isNaN(bulkRate)
    ? "(--quick: no bulk reference run.)"
    : `\`vx bulk\` on the same ${REQUESTS} files: ${
      bulkRate.toFixed(1)
    } keyframes/s (start-up included).`,
].join("\n");
console.log(table);
await writeSection(ROOT, "serve", table);
