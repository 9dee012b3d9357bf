/**
 * `deno task bench:url`: the large MP4 of `bench:keyframes` over HTTP, by range reads from a server
 * on 127.0.0.1 (in this process), against the same file from disk and against native ffmpeg
 * reading the same URL (`-discard:v nokey`, `-skip_frame nokey`), in one run, interleaved. Reports
 * wall time and the bytes the server sent for each (as sent: a client that hangs up early is not
 * charged the rest), and rewrites its section of BENCHMARKS.md
 * with `--write`.
 *
 * Usage: deno task bench:url [--runs 3] [--file PATH] [--write]
 *   --file  default .cache/bench/1080p_40kf_4.5gib.mp4 (made by `deno task bench:keyframes -- --gib 4.5`)
 *
 * @module
 */

import { stats, writeSection } from "./measure.ts";
import { CACHE, ROOT } from "./inputs.ts";
import { serveFile } from "./range_server.ts";

const arg = (name: string) => {
  const i = Deno.args.indexOf(name);
  return i >= 0 ? Deno.args[i + 1] : undefined;
};
const RUNS = Number(arg("--runs") ?? 3);
const FILE = arg("--file") ?? `${CACHE}1080p_40kf_4.5gib.mp4`;
const WRITE = Deno.args.includes("--write");
const size = await Deno.stat(FILE).then((s) => s.size, () => 0);
if (size === 0) {
  console.error(`bench: ${FILE} is missing: run deno task bench:keyframes -- --gib 4.5 first`);
  Deno.exit(2);
}

// The server: ranges answered from the file, each request and byte counted.
const server = serveFile(FILE);
const { url } = server;

async function wall(cmd: string, args: string[]): Promise<number> {
  const start = performance.now();
  const out = await new Deno.Command(cmd, { args, stdin: "null", stdout: "null", stderr: "piped" })
    .output();
  const ms = performance.now() - start;
  if (!out.success) {
    throw new Error(
      `${cmd}: exit ${out.code}: ${new TextDecoder().decode(out.stderr).slice(-300)}`,
    );
  }
  return ms;
}

const vx = (input: string): [string, string[]] => [
  Deno.execPath(),
  ["run", "-A", `${ROOT}cli.ts`, "fast", input, "--task", "keyframes"],
];
const nullOut = ["-map", "0:v", "-f", "null", "-"];
const variants: [string, string, string[], boolean][] = [
  ["vx fast --task keyframes, disk", ...vx(FILE), false],
  ["vx fast --task keyframes, URL", ...vx(url), true],
  [
    "ffmpeg -threads 1 -discard:v nokey -an, URL",
    "ffmpeg",
    [
      "-v",
      "error",
      "-nostdin",
      "-threads",
      "1",
      "-discard:v",
      "nokey",
      "-an",
      "-i",
      url,
      ...nullOut,
    ],
    true,
  ],
  [
    "ffmpeg -skip_frame nokey, URL",
    "ffmpeg",
    ["-v", "error", "-nostdin", "-skip_frame", "nokey", "-i", url, ...nullOut],
    true,
  ],
];
const load = () => Deno.readTextFileSync("/proc/loadavg").split(" ")[0];
const loadStart = load();
const results = new Map<string, { ms: number[]; bytes: number[]; requests: number[] }>();
try {
  for (let run = 1; run <= RUNS; run++) {
    for (const [name, cmd, args, overHttp] of variants) {
      server.served.requests = server.served.bytes = 0;
      const ms = await wall(cmd, args);
      const r = results.get(name) ?? { ms: [], bytes: [], requests: [] };
      r.ms.push(ms);
      if (overHttp) {
        r.bytes.push(server.served.bytes);
        r.requests.push(server.served.requests);
      }
      results.set(name, r);
      console.error(`run ${run}/${RUNS} ${name}: ${ms.toFixed(0)} ms, ${server.served.bytes} B`);
    }
  }
} finally {
  await server.close();
}

const med = (xs: number[]) => (xs.length ? stats(xs).median : NaN);
const cpu = /model name\s*:\s*(.*)/.exec(Deno.readTextFileSync("/proc/cpuinfo"))?.[1] ?? "?";
const disk = med(results.get(variants[0][0])!.ms);
const overUrl = results.get(variants[1][0])!;
const rows = variants.map(([name]) => {
  const r = results.get(name)!;
  const bytes = r.bytes.length ? med(r.bytes) : NaN;
  return `| ${name} | ${med(r.ms).toFixed(0)} (${Math.min(...r.ms).toFixed(0)}–${
    Math.max(...r.ms).toFixed(0)
  }) | ${(med(r.ms) / disk).toFixed(2)} | ${
    Number.isNaN(bytes)
      ? "—"
      : `${(bytes / 2 ** 20).toFixed(1)} MiB (${(bytes / size * 100).toFixed(2)}%), ${
        med(r.requests)
      } requests`
  } |`;
});
const table = [
  "## URL inputs (`deno task bench:url`)",
  "",
  `Machine: ${navigator.hardwareConcurrency} cores, ${cpu}; Deno ${Deno.version.deno}; native ffmpeg ` +
  `${
    (await new Deno.Command("ffmpeg", { args: ["-version"] }).output().then((o) =>
      /version (\S+)/.exec(new TextDecoder().decode(o.stdout))?.[1]
    )) ?? "?"
  }. Date: ${new Date().toISOString().slice(0, 10)}. Load average ${loadStart} at the ` +
  `start, ${load()} at the end. The ${(size / 2 ** 30).toFixed(1)} GiB 1080p MP4 of ` +
  "`bench:keyframes` (40 keyframes), served by range from this process on 127.0.0.1; " +
  `${RUNS} runs each, interleaved; ms median (min–max).`,
  "",
  "| variant | ms | ÷ vx from disk | bytes sent by the server |",
  "| --- | --- | --- | --- |",
  ...rows,
  "",
  `vx over HTTP: ${(med(overUrl.ms) / disk).toFixed(2)}× its time from disk, ${
    (med(overUrl.bytes) / size * 100).toFixed(2)
  }% of the file fetched.`,
].join("\n");
console.log(table);
if (WRITE) await writeSection(ROOT, "url", table);
