/**
 * `deno task bench:select`: frames beyond the keyframes, against the tools people script today,
 * in one run, as ratios:
 *
 * - `vx fast --task keyframes --select every:2` against native `ffmpeg -vf fps=1/2` (the frames
 *   converted to RGB, as vx converts them for a task), with its own threads and with
 *   `-threads 1` (vx's decoder has one thread);
 * - `--select scenes` against native `ffmpeg -vf "select='gt(scene,0.3)'"`, and the cuts each
 *   finds, compared (within one frame);
 * - both against a Python-style loop: `ffmpeg` writing every frame as raw RGB to a pipe, and a
 *   numpy script keeping one frame every 2 s, or scoring each frame against the one before (the
 *   mean absolute difference of its grey picture, as ffmpeg's scene score does).
 *
 * On a 720p30 and a 1080p30 H.264 file of 60 s with a keyframe every 10 s, made of ten 6 s shots
 * (Big Buck Bunny from `../shared` looped, turned and tinted, and lavfi patterns), cut without a
 * keyframe at the cuts, made once by native ffmpeg under `.cache/bench/`.
 *
 * Every process is cold (vx's figures include its start: the decoder core, a worker); variants run
 * interleaved so drift hits all; wall time, median (min–max) of `--runs`.
 *
 * With `--long`, also vx's peak memory on a 12 min and a 2 h file (320x180): bounded by GOPs.
 *
 * With `--decoder-options` (alone, never written): what the decoder options that would cheapen a
 * scene pass are worth in wasm, as ffmpeg.wasm (one thread, C without assembly, as vx's core)
 * decodes the 720p file with `-skip_loop_filter all` and `-flags gray`, against its default.
 *
 * Usage: deno task bench:select [--runs N] [--long] [--write] | --decoder-options
 *
 * @module
 */

import { measure, type RunFigures, stats, writeSection } from "./measure.ts";
import { CACHE, once, requireShared, ROOT, runsFlag, SHARED } from "./inputs.ts";
import { runFFmpeg } from "../src/fixtures/video.ts";

const RUNS = runsFlag(3);
const DENO = Deno.execPath();
const BBB = SHARED + "media/bbb_1080p60_2s_h264.mp4";

/** Ten 6 s shots at `w`x`h`, 30 fps, a keyframe every 10 s; made once. */
async function shotsFile(w: number, h: number): Promise<string> {
  const path = `${CACHE}select_${h}p_60s.mp4`;
  const size = `${w}x${h}`;
  const looks = [
    "null",
    "hflip",
    "hue=h=120",
    "negate",
    "vflip,hue=s=0",
  ];
  const patterns = ["testsrc2", "smptehdbars", "mandelbrot", "rgbtestsrc", "testsrc"];
  // Each shot is its own input, cut to 6 s: BBB looped, or a lavfi pattern.
  const inputs: string[] = [];
  const parts: string[] = [];
  for (let i = 0; i < 10; i++) {
    if (i % 2 === 0) inputs.push("-stream_loop", "-1", "-t", "6", "-i", BBB);
    else inputs.push("-f", "lavfi", "-t", "6", "-i", `${patterns[(i - 1) / 2]}=s=${size}:r=30`);
    const look = i % 2 === 0 ? `,${looks[i / 2]}` : "";
    parts.push(`[${i}:v]fps=30,scale=${size}${look},format=yuv420p,setsar=1[s${i}]`);
  }
  const concat = `${Array.from({ length: 10 }, (_, i) => `[s${i}]`).join("")}concat=n=10[v]`;
  return await madeOnce(
    path,
    [...inputs, "-filter_complex", `${parts.join(";")};${concat}`, "-map", "[v]", "-c:v", "libx264"]
      .concat(["-preset", "veryfast", "-crf", "23", "-g", "300", "-keyint_min", "300"])
      .concat(["-sc_threshold", "0", "-bf", "2"]),
  );
}

/** `path`, encoded by native ffmpeg from `args` (its inputs and options) unless it is there. */
function madeOnce(path: string, args: string[]): Promise<string> {
  return once(path, path, async () => {
    await timed("ffmpeg", ["-hide_banner", "-loglevel", "error", "-y", ...args, path]);
  });
}

/** A cold `vx fast --task keyframes --select <select>` on `path`. */
function vxFast(path: string, select: string): Promise<RunFigures> {
  return measure(DENO, [
    "run",
    "-A",
    ROOT + "cli.ts",
    "fast",
    path,
    "--task",
    "keyframes",
    "--select",
    select,
  ]);
}

/** The numpy loop: every frame from a pipe; `every` keeps one each 2 s, `scenes` scores them. */
const PYTHON = `
import sys, numpy as np
w, h, mode = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
fps, size, n, prev, prev_mafd, kept = 30.0, w * h * 3, 0, None, 0.0, []
weights = np.array([0.299, 0.587, 0.114], dtype=np.float32)
while True:
    buf = sys.stdin.buffer.read(size)
    if len(buf) < size:
        break
    t = n / fps
    if mode == "every":
        if n % 60 == 0:
            kept.append(t)
    else:
        grey = np.frombuffer(buf, np.uint8).reshape(h, w, 3).astype(np.float32) @ weights
        if prev is None:
            kept.append(t)
        else:
            mafd = float(np.abs(grey - prev).mean())
            if min(mafd, abs(mafd - prev_mafd)) / 100 > 0.3:
                kept.append(t)
            prev_mafd = mafd
        prev = grey
    n += 1
print(" ".join(f"{t:.3f}" for t in kept))
`;

/** Seconds of each frame `ffmpeg … -vf <filter>,showinfo` passed, from its log. */
function shownTimes(stderr: string): number[] {
  return [...stderr.matchAll(/pts_time:\s*([\d.]+)/g)].map((m) => Number(m[1]));
}

interface Variant {
  name: string;
  run: () => Promise<{ ms: number; times: number[] }>;
}

async function timed(
  cmd: string,
  args: string[],
): Promise<{ ms: number; out: string; err: string }> {
  const start = performance.now();
  const out = await new Deno.Command(cmd, { args, stdout: "piped", stderr: "piped" }).output();
  const ms = performance.now() - start;
  const dec = new TextDecoder();
  if (!out.success) throw new Error(`${cmd} ${args.join(" ")}: ${dec.decode(out.stderr)}`);
  return { ms, out: dec.decode(out.stdout), err: dec.decode(out.stderr) };
}

/** The variant that times vx's cold start: vx on the file's first 0.1 s (three frames). */
const COLD = "vx on its first 0.1 s (cold start)";

function variants(
  path: string,
  head: string,
  w: number,
  h: number,
  kind: "every" | "scenes",
): Variant[] {
  const vf = kind === "every" ? "fps=1/2" : "select='gt(scene,0.3)'";
  const vxOn = (file: string) => async () => {
    const f = await vxFast(file, kind === "every" ? "every:2" : "scenes");
    return { ms: f.wallMs, times: f.lines.map((l) => JSON.parse(l).pts) };
  };
  const native = (threads: string[]) => async () => {
    const r = await timed("ffmpeg", [
      "-hide_banner",
      ...threads,
      "-i",
      path,
      "-vf",
      `${vf},showinfo`,
      "-pix_fmt",
      "rgb24",
      "-f",
      "null",
      "-",
    ]);
    return { ms: r.ms, times: shownTimes(r.err) };
  };
  const python = async () => {
    const r = await timed("bash", [
      "-c",
      `ffmpeg -hide_banner -loglevel error -i '${path}' -f rawvideo -pix_fmt rgb24 - | ` +
      `/usr/bin/python3 -c '${PYTHON}' ${w} ${h} ${kind}`,
    ]);
    return { ms: r.ms, times: r.out.trim().split(" ").map(Number) };
  };
  return [
    { name: "vx", run: vxOn(path) },
    { name: COLD, run: vxOn(head) },
    { name: "native ffmpeg", run: native([]) },
    { name: "native ffmpeg -threads 1", run: native(["-threads", "1"]) },
    { name: "ffmpeg → numpy loop", run: python },
  ];
}

/** How many of `a`'s times have one of `b`'s within `tol` seconds. */
function matched(a: number[], b: number[], tol: number): number {
  return a.filter((t) => b.some((u) => Math.abs(u - t) <= tol + 1e-9)).length;
}

requireShared(BBB);
if (Deno.args.includes("--decoder-options")) {
  const path = await shotsFile(1280, 720);
  for (let i = 0; i < RUNS; i++) {
    for (const opt of [[], ["-skip_loop_filter", "all"], ["-flags", "gray"]]) {
      const start = performance.now();
      await runFFmpeg({
        args: ["-hide_banner", "-loglevel", "error", "-threads", "1", ...opt, "-i", "/in"]
          .concat(["-f", "null", "-"]),
        inputs: { "/in": path },
        outputs: {},
      });
      console.log(
        `ffmpeg.wasm ${opt.join(" ") || "default"}: ${(performance.now() - start).toFixed(0)} ms`,
      );
    }
  }
  Deno.exit(0);
}
const lines: string[] = [];
const say = (l: string) => {
  console.log(l);
  lines.push(l);
};
say(
  `Measured ${new Date().toISOString().slice(0, 10)}, --runs ${RUNS}; wall time, median (min–max).`,
);
say("");
for (const [w, h] of [[1280, 720], [1920, 1080]]) {
  const path = await shotsFile(w, h);
  const head = await madeOnce(path.replace(/\.mp4$/, ".first0.1s.mp4"), [
    "-i",
    path,
    "-t",
    "0.1",
    "-c",
    "copy",
  ]);
  for (const kind of ["every", "scenes"] as const) {
    const vs = variants(path, head, w, h, kind);
    const ms = new Map<string, number[]>(vs.map((v) => [v.name, []]));
    const times = new Map<string, number[]>();
    for (let i = 0; i < RUNS; i++) {
      for (const v of vs) {
        const r = await v.run();
        ms.get(v.name)!.push(r.ms);
        times.set(v.name, r.times);
      }
    }
    const base = stats(ms.get("native ffmpeg")!).median;
    say(
      `### ${h}p, ${kind === "every" ? "every:2" : "scenes"} (60 s, 30 fps, keyframe every 10 s)`,
    );
    say("");
    say("| variant | wall ms | ÷ native ffmpeg | frames | agree with native (±1 frame) |");
    say("| --- | --- | --- | --- | --- |");
    const ref = times.get("native ffmpeg")!;
    // Native's select passes the first frame only when it is a cut; vx and the loop always keep it.
    const refAll = kind === "scenes" ? [0, ...ref.filter((t) => t > 0)] : ref;
    for (const v of vs) {
      const s = stats(ms.get(v.name)!);
      const t = times.get(v.name)!;
      const agree = v.name === COLD
        ? "n/a"
        : `${matched(refAll, t, 1 / 30)}/${refAll.length} of native's, ` +
          `${matched(t, refAll, 1 / 30)}/${t.length} of its own`;
      say(
        `| ${v.name} | ${s.median.toFixed(0)} (${s.min.toFixed(0)}–${s.max.toFixed(0)}) | ` +
          `${(s.median / base).toFixed(2)} | ${t.length} | ${agree} |`,
      );
    }
    say("");
    // The target: at most 2× native ffmpeg plus a cold start.
    const warm = stats(ms.get("vx")!).median - stats(ms.get(COLD)!).median;
    const ratio = warm / base;
    say(
      `vx less its cold start ÷ native ffmpeg: ${ratio.toFixed(2)} (target ≤ 2.00: ` +
        `${ratio <= 2 ? "met" : "not met"}).`,
    );
    say("");
  }
}
// With --long: memory stays bounded by GOPs, not by the file's length. A 320x180 file of 12 min
// and one of 2 h (10 fps, a keyframe every 10 s), each made once; vx's peak RSS on each.
if (Deno.args.includes("--long")) {
  say("### Memory against length (`--long`): 320x180, 10 fps, a keyframe every 10 s");
  say("");
  say("| file | --select | records | wall ms | peak RSS MB |");
  say("| --- | --- | --- | --- | --- |");
  for (const minutes of [12, 120]) {
    const path = await madeOnce(`${CACHE}select_long_${minutes}min.mp4`, [
      "-f",
      "lavfi",
      "-i",
      `testsrc2=s=320x180:r=10:d=${minutes * 60}`,
      "-c:v",
      "libx264",
      ...["-preset", "ultrafast", "-g", "100", "-keyint_min", "100", "-bf", "2"],
    ]);
    for (const select of ["every:10", "at:5,3600"]) {
      const f = await vxFast(path, select);
      say(
        `| ${minutes} min | ${select} | ${f.lines.length} | ${f.wallMs.toFixed(0)} | ` +
          `${f.peakRssMb.toFixed(0)} |`,
      );
    }
  }
  say("");
}
if (Deno.args.includes("--write")) {
  await writeSection(
    ROOT,
    "select",
    `## Frames beyond the keyframes (bench:select)\n\n${lines.join("\n")}`,
  );
}
