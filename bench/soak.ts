/**
 * `deno task bench:soak`: `vx serve` under abuse, on loopback only, bounded in time and in
 * requests. Six clients mix good paths, uploads, junk and truncated files, oversize uploads,
 * malformed requests, path escapes, clients that hang up, and a path whose symlink a seventh task
 * swaps between a file inside the root and one outside it all along. Prints the requests and the
 * answers by kind, the server's RSS after warm-up and at the end, the spool files left, whether
 * the server's counters add up, and how often the file outside the root was served (a leak), and
 * rewrites its section of BENCHMARKS.md.
 *
 * Usage: deno task bench:soak [--seconds 90] [--max-requests 30000]
 *
 * @module
 */

import { makeVideo } from "../src/fixtures/video.ts";
import { writeSection } from "./measure.ts";
import { CACHE, ROOT } from "./inputs.ts";
import { startServe } from "./serve_process.ts";

const arg = (name: string, fallback: number) => {
  const i = Deno.args.indexOf(name);
  return i >= 0 ? Number(Deno.args[i + 1]) : fallback;
};
const SECONDS = arg("--seconds", 90);
const MAX_REQUESTS = arg("--max-requests", 30000);
const CLIENTS = 6;
/** The upload limit the server is given, and an upload past it. */
const MAX_UPLOAD_MB = 1;

// The root holds a good clip (2 keyframes), a truncated copy, junk, and the swapped link; the
// file outside it has 3 keyframes, so an answer with 3 is the outside file served.
// A directory of this run's own: a second soak at the same time must not delete it.
await Deno.mkdir(CACHE, { recursive: true });
const dir = (await Deno.makeTempDir({ dir: CACHE, prefix: "soak-" })) + "/";
const root = dir + "root/";
const spool = dir + "spool/";
for (const d of [root, spool, dir + "outside/"]) await Deno.mkdir(d, { recursive: true });
const small = { codec: "h264", width: 320, height: 240, fps: 10 } as const;
await makeVideo(root + "good.mp4", { ...small, frames: 20, keyint: 10 });
await makeVideo(dir + "outside/secret.mp4", { ...small, frames: 30, keyint: 10 });
const good = await Deno.readFile(root + "good.mp4");
await Deno.writeFile(root + "cut.mp4", good.subarray(0, good.length >> 1));
await Deno.writeTextFile(root + "junk.mp4", "not a video\n".repeat(500));
await Deno.copyFile(root + "good.mp4", root + "inside.mp4");
await Deno.symlink(root + "inside.mp4", root + "swap.mp4");

const load = () => Deno.readTextFileSync("/proc/loadavg").split(" ")[0];
const loadStart = load();
const server = await startServe([
  ...["--task", "keyframes", "--root", root, "--temp-dir", spool],
  ...["--max-upload-mb", String(MAX_UPLOAD_MB), "--queue", "16"],
]);
await server.line(/ready: every model is loaded and warm/);

type Kind =
  | "good"
  | "upload"
  | "junk"
  | "truncated"
  | "oversize"
  | "malformed"
  | "escape"
  | "hang-up"
  | "symlink";
const KINDS: Kind[] = [
  "good",
  "upload",
  "junk",
  "truncated",
  "oversize",
  "malformed",
  "escape",
  "hang-up",
  "symlink",
];

/** One answer: HTTP status and the NDJSON lines (or the error body). */
async function post(
  body: BodyInit,
  type: string,
  signal?: AbortSignal,
  path = "/extract",
): Promise<{ status: number; lines: Record<string, unknown>[] }> {
  const res = await fetch(server.base + path, {
    method: "POST",
    headers: { "content-type": type },
    body,
    signal,
  });
  const text = await res.text();
  const lines = text.trim() === ""
    ? []
    : text.trim().split("\n").map((l) => JSON.parse(l) as Record<string, unknown>);
  return { status: res.status, lines };
}
const byPath = (path: string, signal?: AbortSignal) =>
  post(JSON.stringify({ path }), "application/json", signal);
/** What a good answer holds, to compare: each keyframe's index, pts and size, and the status. */
const shape = (lines: Record<string, unknown>[]) =>
  JSON.stringify(
    lines.map((l) => "status" in l ? [l.status, l.keyframes] : [l.index, l.pts, l.width, l.height]),
  );

const reference = shape((await byPath("good.mp4")).lines);
const uploadReference = shape((await post(good, "application/octet-stream")).lines);

/** Per kind: requests sent, and what came back. */
const tally = new Map<Kind, Map<string, number>>();
const count = (kind: Kind, outcome: string) => {
  const m = tally.get(kind) ?? new Map<string, number>();
  m.set(outcome, (m.get(outcome) ?? 0) + 1);
  tally.set(kind, m);
};
let leaks = 0;
let sent = 0;

// A fixed seed: each run sends the same mix.
let seed = 0x5eed;
const random = () => {
  seed = (seed + 0x6d2b79f5) | 0;
  let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
  t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
  return ((t ^ (t >>> 14)) >>> 0) / 2 ** 32;
};

async function once(kind: Kind): Promise<string> {
  switch (kind) {
    case "good": {
      const r = await byPath("good.mp4");
      return r.status === 200 && shape(r.lines) === reference ? "equal" : `differs ${r.status}`;
    }
    case "upload": {
      const r = await post(good, "application/octet-stream");
      if (r.status === 503) return "503 busy";
      return r.status === 200 && shape(r.lines) === uploadReference
        ? "equal"
        : `differs ${r.status}`;
    }
    case "junk":
    case "truncated": {
      const r = await byPath(kind === "junk" ? "junk.mp4" : "cut.mp4");
      const status = r.lines.at(-1)?.status;
      return `${r.status} ${status ?? (r.lines.at(-1)?.error ? "error body" : "?")}`;
    }
    case "oversize": {
      const big = new Uint8Array(MAX_UPLOAD_MB * 2 ** 20 * 2);
      return `${(await post(big, "application/octet-stream")).status}`;
    }
    case "malformed": {
      const bodies: [BodyInit, string][] = [
        ["{not json", "application/json"],
        [JSON.stringify({ path: 7 }), "application/json"],
        ["path=good.mp4", "application/x-www-form-urlencoded"],
      ];
      const [body, type] = bodies[Math.floor(random() * bodies.length)];
      return `${(await post(body, type)).status}`;
    }
    case "escape": {
      const paths = ["../outside/secret.mp4", "/etc/passwd", "a/../../outside/secret.mp4"];
      return `${(await byPath(paths[Math.floor(random() * paths.length)])).status}`;
    }
    case "hang-up": {
      // Gone once the answer starts, or in the middle of an upload.
      const ac = new AbortController();
      const upload = random() < 0.5;
      try {
        if (upload) {
          const half = good.subarray(0, good.length >> 1);
          const body = new ReadableStream<Uint8Array>({
            start(c) {
              c.enqueue(half);
              setTimeout(() => ac.abort(), 20);
            },
          });
          await post(body, "application/octet-stream", ac.signal);
        } else {
          const res = await fetch(server.base + "/extract", {
            method: "POST",
            headers: { "content-type": "application/json" },
            body: JSON.stringify({ path: "good.mp4" }),
            signal: ac.signal,
          });
          ac.abort();
          await res.body?.cancel().catch(() => {});
        }
      } catch { /* the point */ }
      return upload ? "gone mid-upload" : "gone mid-answer";
    }
    case "symlink": {
      const r = await byPath("swap.mp4");
      const status = r.lines.at(-1);
      if (status?.keyframes === 3) {
        leaks++;
        return "LEAK: the file outside the root";
      }
      return r.status === 200 ? "served the inside file" : `${r.status}`;
    }
  }
}

// The racer: the link points inside, then outside, then inside, … as fast as it can.
let racing = true;
const racer = (async () => {
  let outside = false;
  while (racing) {
    outside = !outside;
    const tmp = root + ".swap.tmp";
    await Deno.remove(tmp).catch(() => {});
    await Deno.symlink(outside ? dir + "outside/secret.mp4" : root + "inside.mp4", tmp);
    await Deno.rename(tmp, root + "swap.mp4");
    await new Promise((r) => setTimeout(r, 1));
  }
})();

const start = performance.now();
const deadline = start + SECONDS * 1000;
let warm: { rss: number; peak: number } | undefined;
const warmAt = start + SECONDS * 1000 * 0.3;
/** The server's RSS every 10 s: whether it levels off or keeps growing. */
const samples: number[] = [];
const sampler = setInterval(() => samples.push(Math.round(server.rssMb().rss)), 10_000);
const client = async () => {
  while (performance.now() < deadline && sent < MAX_REQUESTS) {
    sent++;
    const kind = KINDS[Math.floor(random() * KINDS.length)];
    let outcome: string;
    try {
      outcome = await once(kind);
    } catch (e) {
      outcome = `client error: ${e instanceof Error ? e.name : e}`;
    }
    count(kind, outcome);
    // After warm-up: 30% of the time, or of the requests, whichever bound comes first.
    if (!warm && (performance.now() >= warmAt || sent >= MAX_REQUESTS * 0.3)) {
      warm = server.rssMb();
    }
  }
};
await Promise.all(Array.from({ length: CLIENTS }, client));
racing = false;
await racer;
clearInterval(sampler);
const wallS = (performance.now() - start) / 1000;
// Hung-up requests may still be finishing on the server: give them a moment.
await new Promise((r) => setTimeout(r, 2000));
const end = server.rssMb();
const metrics = await (await fetch(server.base + "/metrics")).text();
const served = [...metrics.matchAll(/^vx_serve_requests_total\{outcome="(\w+)"\} (\d+)$/gm)]
  .map(([, outcome, n]) => [outcome, Number(n)] as const);
const serverTotal = served.reduce((n, [, c]) => n + c, 0);
const spoolLeft = [...Deno.readDirSync(spool)].length;
const exit = await server.stop();

const goodAnswers = ["good", "upload"].reduce(
  (n, k) => n + (tally.get(k as Kind)?.get("equal") ?? 0),
  0,
);
const wrong = ["good", "upload"].reduce(
  (n, k) =>
    n + [...(tally.get(k as Kind) ?? new Map()).entries()]
      .filter(([o]) => o.startsWith("differs")).reduce((m, [, c]) => m + c, 0),
  0,
);
const growth = warm ? (end.rss - warm.rss) / warm.rss * 100 : NaN;
const cpu = /model name\s*:\s*(.*)/.exec(Deno.readTextFileSync("/proc/cpuinfo"))?.[1] ?? "?";
const rows = KINDS.map((k) => {
  const m = tally.get(k) ?? new Map();
  const total = [...m.values()].reduce((a, b) => a + b, 0);
  const answers = [...m].sort((a, b) => b[1] - a[1]).map(([o, c]) => `${o}: ${c}`).join("; ");
  return `| ${k} | ${total} | ${answers} |`;
});
// The initial reference requests reached the server too.
const clientTotal = sent + 2;
const table = [
  "## serve soak (`deno task bench:soak`)",
  "",
  `Machine: ${navigator.hardwareConcurrency} cores, ${cpu}; Deno ${Deno.version.deno}. Date: ${
    new Date().toISOString().slice(0, 10)
  }. Load average ${loadStart} at the start, ${load()} at the end. One server (\`--task ` +
  `keyframes\`, \`--max-upload-mb ${MAX_UPLOAD_MB}\`, \`--queue 16\`) on 127.0.0.1; ${CLIENTS} ` +
  `clients for ${wallS.toFixed(0)} s (bound: ${SECONDS} s, ${MAX_REQUESTS} requests), the mix ` +
  "drawn from a fixed seed; a seventh task swaps `swap.mp4` between a file in the root and one " +
  "outside it as fast as it can.",
  "",
  "| kind | requests | answers |",
  "| --- | --- | --- |",
  ...rows,
  "",
  `- Good answers (path and upload) equal to the reference: ${goodAnswers}; different: ${wrong}.`,
  `- The file outside the root served: ${leaks} times.`,
  `- Server RSS: ${warm?.rss.toFixed(0)} MiB after warm-up (30% of the run's time or requests), ${
    end.rss.toFixed(0)
  } MiB at the end (${growth.toFixed(1)}%); peak ${end.peak.toFixed(0)} MiB; every 10 s: ${
    samples.join(", ")
  } MiB.`,
  `- Spool files left: ${spoolLeft}. Requests the server counted: ${serverTotal}, sent: ` +
  `${clientTotal} (${served.map(([o, n]) => `${o} ${n}`).join(", ")}). Exit on SIGTERM: ${exit}.`,
].join("\n");
console.log(table);
await writeSection(ROOT, "soak", table);
await Deno.remove(dir, { recursive: true });
if (leaks > 0 || wrong > 0 || spoolLeft > 0 || exit !== 0) Deno.exit(1);
