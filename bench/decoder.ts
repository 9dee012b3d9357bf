/**
 * `deno task bench:decoder`: vx's own decoder core against the one before it and against native
 * ffmpeg, in one run (the machines drift: only side-by-side ratios are quoted).
 *
 * 1. **Cold**, every sample a fresh process, variants interleaved (A B C … A B C …), on the
 *    20-keyframe 720p clip of `bench/run.ts`:
 *    - `vx fast --task keyframes` against native `ffmpeg -discard:v nokey -an`;
 *    - `vx fast` with YOLOX-Nano against the native script (`bench/native_anchor.ts`: ffmpeg CLI
 *      and onnxruntime-node);
 *    - with `--before REF`, the same two vx runs from a worktree of that commit (the vx that
 *      decoded with `@ffmpeg/core`), so before and after are measured side by side.
 * 2. **Warm**, decode ms per keyframe: the core in this process (compiled and warmed once; each
 *    key packet read, decoded on its own and converted to 416x256 planar RGB) against native
 *    ffmpeg decoding the same key packets single-threaded (`-threads 1 -skip_frame nokey`, as
 *    (wall of all keyframes − wall of the first one) ÷ (keyframes − 1), so its start-up drops
 *    out), for 720p and 4K H.264, 1080p 10-bit HEVC, VP9 and AV1 (made once with native encoders).
 *
 * Prints the tables; with `--write`, rewrites its section of BENCHMARKS.md.
 *
 * Usage: deno task bench:decoder [--runs N] [--before REF] [--write]
 *
 * @module
 */

import { stats, writeSection } from "./measure.ts";
import { CACHE, clip720p, MODEL, requireShared, ROOT, runsFlag, SHARED } from "./inputs.ts";
import { DECODER_MANIFEST, loadDecoder } from "../wasm/decoder.ts";
import { fileSource } from "../src/input/source.ts";
import { openDemuxer, pickVideo, probeInfo } from "../src/decode/probe.ts";

const RUNS = runsFlag(5);
const WRITE = Deno.args.includes("--write");
const BEFORE = (() => {
  const at = Deno.args.indexOf("--before");
  return at >= 0 ? Deno.args[at + 1] : undefined;
})();
requireShared(MODEL);
const DENO = Deno.execPath();
const TIMEOUT_MS = 600_000;

async function run(cmd: string, args: string[], cwd = ROOT): Promise<{ ms: number; out: string }> {
  const start = performance.now();
  const r = await new Deno.Command(cmd, {
    args,
    cwd,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
    signal: AbortSignal.timeout(TIMEOUT_MS),
  }).output();
  const ms = performance.now() - start;
  if (!r.success) {
    throw new Error(
      `${cmd} ${args.join(" ")}: exit ${r.code}\n${new TextDecoder().decode(r.stderr)}`,
    );
  }
  return { ms, out: new TextDecoder().decode(r.stdout) };
}

// ---- Cold ----

/** A worktree of `ref` with its npm dependencies installed, for the "before" rows. */
async function worktree(ref: string): Promise<string> {
  const dir = `${CACHE}before-${ref}`;
  try {
    Deno.statSync(dir + "/cli.ts");
  } catch {
    await run("git", ["worktree", "add", "--detach", dir, ref]);
  }
  await run(DENO, ["install", "--frozen", "--quiet"], dir);
  return dir + "/";
}

const clip = await clip720p();
interface Cold {
  name: string;
  cmd: string;
  args: string[];
  cwd?: string;
  records: number;
}
const vxArgs = (
  root: string,
  ...extra: string[]
) => ["run", "-A", root + "cli.ts", "fast", clip, ...extra];
const keyframes = (root: string) => vxArgs(root, "--task", "keyframes");
const detect = (root: string) =>
  vxArgs(root, "--task", "detect", "--model", MODEL, "--backend", "wasm");
const cold: Cold[] = [
  { name: "vx fast --task keyframes", cmd: DENO, args: keyframes(ROOT), records: 20 },
  {
    name: "native ffmpeg -discard:v nokey -an",
    cmd: "ffmpeg",
    args: ["-v", "error", "-nostdin", "-discard:v", "nokey", "-an", "-i", clip, "-map", "0:v"]
      .concat(["-f", "null", "-"]),
    records: 0,
  },
  { name: "vx fast YOLOX", cmd: DENO, args: detect(ROOT), records: 20 },
  {
    name: "native ffmpeg CLI + onnxruntime-node",
    cmd: DENO,
    args: ["run", "-A", ROOT + "bench/native_anchor.ts", clip, MODEL],
    records: 20,
  },
];
if (BEFORE) {
  const before = await worktree(BEFORE);
  cold.push(
    {
      name: `before (${BEFORE}): vx fast --task keyframes`,
      cmd: DENO,
      args: keyframes(before),
      cwd: before,
      records: 20,
    },
    {
      name: `before (${BEFORE}): vx fast YOLOX`,
      cmd: DENO,
      args: detect(before),
      cwd: before,
      records: 20,
    },
  );
}
const coldMs = new Map(cold.map((c) => [c.name, [] as number[]]));
for (let i = 0; i < RUNS; i++) {
  for (const c of cold) {
    const r = await run(c.cmd, c.args, c.cwd);
    const lines = r.out.trim() === "" ? 0 : r.out.trim().split("\n").length;
    if (c.records && lines !== c.records) throw new Error(`${c.name}: ${lines} records`);
    coldMs.get(c.name)!.push(r.ms);
    console.error(`cold ${i + 1}/${RUNS} ${c.name}: ${r.ms.toFixed(0)} ms`);
  }
}

// ---- Warm: decode ms per keyframe ----

/** The warm inputs, made once with native encoders from the dog photo. */
async function warmInput(name: string, size: string, codec: string[]): Promise<string> {
  const path = `${CACHE}decoder/${name}`;
  try {
    Deno.statSync(path);
    return path;
  } catch { /* make it */ }
  await Deno.mkdir(`${CACHE}decoder`, { recursive: true });
  console.error(`bench: making ${path}`);
  await run("ffmpeg", [
    ...["-v", "error", "-y", "-loop", "1", "-framerate", "30", "-i", SHARED + "media/dog.jpg"],
    ...["-vf", `scale=${size},noise=alls=20:allf=t`, "-frames:v", "60", "-g", "6", ...codec, path],
  ]);
  return path;
}
const warm = [
  { name: "720p H.264", path: clip },
  {
    name: "4K H.264",
    path: await warmInput("4k_h264.mp4", "3840:2160", ["-c:v", "libx264", "-preset", "veryfast"]),
  },
  {
    name: "1080p 10-bit HEVC",
    path: await warmInput("1080p_hevc10.mp4", "1920:1080", [
      ...["-c:v", "libx265", "-preset", "veryfast", "-pix_fmt", "yuv420p10le", "-x265-params"],
      "log-level=error",
    ]),
  },
  {
    name: "1080p VP9",
    path: await warmInput("1080p_vp9.webm", "1920:1080", [
      ...["-c:v", "libvpx-vp9", "-deadline", "realtime", "-cpu-used", "8", "-b:v", "4M"],
    ]),
  },
  {
    name: "1080p AV1",
    path: await warmInput("1080p_av1.mp4", "1920:1080", ["-c:v", "libsvtav1", "-preset", "10"]),
  },
];

const core = await loadDecoder();
/** ms per keyframe in the core, and the keyframe count; one untimed pass warms V8 up first. */
function coreDecode(path: string): { ms: number; keys: number } {
  const source = fileSource(path, Deno.openSync(path));
  const pass = () => {
    const input = openDemuxer(core, source);
    try {
      const info = probeInfo(input.info());
      const v = pickVideo(info.streams);
      const d = input.decoder(v.index);
      let keys = 0;
      let ms = 0;
      for (let p = input.read(); p !== null; p = input.read()) {
        if (p.stream !== v.index || !p.key) continue;
        const bytes = input.data(p.size).slice();
        const t = performance.now();
        d.flush();
        d.send(bytes, p.pts, p.dts);
        d.send(null);
        if (!d.receive()) throw new Error(`${path}: no picture`);
        d.convert("scale=416:234:flags=bilinear,format=gbrp,pad=416:256:0:0", 416 * 256 * 3);
        ms += performance.now() - t;
        keys++;
      }
      d.close();
      return { ms: ms / keys, keys };
    } finally {
      input.close();
    }
  };
  pass();
  const timed = Array.from({ length: RUNS }, pass);
  source.close();
  return { ms: stats(timed.map((t) => t.ms)).median, keys: timed[0].keys };
}

async function nativeDecode(path: string, keys: number): Promise<number> {
  const args = (frames: number) => [
    ...["-v", "error", "-nostdin", "-threads", "1", "-skip_frame", "nokey", "-i", path],
    ...["-map", "0:v", "-frames:v", String(frames), "-vf"],
    ...["scale=416:234:flags=bilinear,format=gbrp,pad=416:256:0:0", "-f", "null", "-"],
  ];
  const per: number[] = [];
  for (let i = 0; i < RUNS; i++) {
    const all = (await run("ffmpeg", args(keys))).ms;
    const one = (await run("ffmpeg", args(1))).ms;
    per.push((all - one) / (keys - 1));
  }
  return stats(per).median;
}

const warmRows: string[] = [];
for (const w of warm) {
  const vx = coreDecode(w.path);
  const native = await nativeDecode(w.path, vx.keys);
  console.error(`warm ${w.name}: vx ${vx.ms.toFixed(1)} ms, native ${native.toFixed(1)} ms`);
  warmRows.push(
    `| ${w.name} | ${vx.keys} | ${vx.ms.toFixed(1)} | ${native.toFixed(1)} | ${
      (vx.ms / native).toFixed(2)
    } |`,
  );
}

// ---- Tables ----

const med = (name: string) => stats(coldMs.get(name)!).median;
const fmt = (xs: number[]) => {
  const s = stats(xs);
  return `${s.median.toFixed(0)} (${s.min.toFixed(0)}–${s.max.toFixed(0)})`;
};
const anchor = (name: string) =>
  name.includes("YOLOX")
    ? "native ffmpeg CLI + onnxruntime-node"
    : "native ffmpeg -discard:v nokey -an";
const coldRows = cold.map((c) => {
  const ratio = c.name.startsWith("native") ? "1" : (med(c.name) / med(anchor(c.name))).toFixed(2);
  return `| ${c.name} | ${fmt(coldMs.get(c.name)!)} | ${ratio}× |`;
});
const text = [
  `Measured ${new Date().toISOString().slice(0, 10)}, ${navigator.hardwareConcurrency} cores; ` +
  `decoder core ${DECODER_MANIFEST.name} (FFmpeg ${DECODER_MANIFEST.sources.ffmpeg.version}, ` +
  `dav1d ${DECODER_MANIFEST.sources.dav1d.version}, ${
    (DECODER_MANIFEST.wasm.bytes / 1e6).toFixed(1)
  } MB). ${RUNS} interleaved runs; wall ms, median (min–max); each vx row's ratio is to the ` +
  `native row of its kind in the same run.`,
  "",
  "| cold, 720p, 20 keyframes | wall ms | against native |",
  "| --- | --- | --- |",
  ...coldRows,
  "",
  "Warm: ms per keyframe, decoded on its own and converted to 416x256 planar RGB; native is " +
  "single-threaded ffmpeg over the same keyframes, its start-up taken out.",
  "",
  "| input | keyframes | vx core | native | ratio |",
  "| --- | --- | --- | --- | --- |",
  ...warmRows,
].join("\n");
console.log(text);
if (WRITE) await writeSection(ROOT, "decoder", text);
