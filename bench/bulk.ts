/**
 * `deno task bench:bulk`: vx bulk against a shell loop of vx fast over the same files (50 files
 * of 5 keyframes, 640x360 H.264, YOLOX-Nano from ../shared), pool sizes side by side, and peak
 * RSS for 10 against 100 files. Prints a table and rewrites its section of BENCHMARKS.md.
 *
 * Usage: deno task bench:bulk [--quick]   (--quick: skip the shell loop and the 100-file run)
 *
 * @module
 */

import { measure, type RunFigures, writeSection } from "./measure.ts";
import { bulkSet, MODEL, requireShared, ROOT } from "./inputs.ts";

const quick = Deno.args.includes("--quick");
requireShared(MODEL);
// Identical content, distinct files: the work per file is what matters here.
const set = await bulkSet(100);
const dir = set.dir;
const files = set.names.map((n) => dir + n);

const deno = Deno.execPath();
const cli = ROOT + "cli.ts";
const task = ["--task", "detect", "--model", MODEL, "--backend", "wasm"];
const cores = navigator.hardwareConcurrency;
const rows: string[] = [];
const row = (name: string, n: number, r: RunFigures, ownFigures = true) => {
  const s = r.wallMs / 1000;
  // /proc of a shell loop counts the shell, not the processes it runs: no CPU or RSS for it.
  const cpu = ownFigures ? `${(100 * r.cpuMs / r.wallMs / cores).toFixed(0)}%` : "n/a";
  const rss = ownFigures ? r.peakRssMb.toFixed(0) : "n/a (per process as vx fast)";
  rows.push(
    `| ${name} | ${n} | ${s.toFixed(1)} | ${(n / s).toFixed(2)} | ${
      (5 * n / s).toFixed(1)
    } | ${cpu} | ${rss} |`,
  );
  console.error(rows.at(-1));
};

const bulk = (n: number, extra: string[] = []) =>
  measure(deno, [
    "run",
    "-A",
    cli,
    "bulk",
    ...files.slice(0, n),
    ...task,
    "--out",
    "/dev/null",
    ...extra,
  ]);

const fifty = 50;
for (const jobs of ["1", "2"]) {
  row(`vx bulk --jobs ${jobs}`, fifty, await bulk(fifty, ["--jobs", jobs]));
}
const def = await bulk(fifty);
row("vx bulk (default pool)", fifty, def);
row("vx bulk (default pool), 10 files", 10, await bulk(10));
if (!quick) {
  row("vx bulk (default pool), 100 files", 100, await bulk(100));
  const loop = files.slice(0, fifty).map((f) =>
    `${deno} run -A ${cli} fast ${f} ${task.join(" ")} >/dev/null || exit 1`
  ).join("\n");
  const shell = await measure("bash", ["-c", loop]);
  row("shell loop of vx fast", fifty, shell, false);
  rows.push(
    "",
    `bulk (default pool) is ${
      (shell.wallMs / def.wallMs).toFixed(1)
    }× the shell loop of fast on ${fifty} files.`,
  );
}

const cpuInfo = Deno.readTextFileSync("/proc/cpuinfo");
const cpu = /model name\s*:\s*(.*)/.exec(cpuInfo)?.[1] ?? "unknown CPU";
const table = [
  `## bulk (\`deno task bench:bulk\`)`,
  "",
  `Machine: ${cores} cores, ${cpu}; Deno ${Deno.version.deno}. Date: ${
    new Date().toISOString().slice(0, 10)
  }.`,
  "Files: 640x360 H.264, 5 keyframes each; YOLOX-Nano at its default input (416×256 for these " +
  "16:9 files). One run each.",
  "",
  "| run | files | wall s | files/s | keyframes/s | CPU (of all cores) | peak RSS MB |",
  "| --- | --- | --- | --- | --- | --- | --- |",
  ...rows,
].join("\n");
console.log(table);
await writeSection(ROOT, "bulk", table);
