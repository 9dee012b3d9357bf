/**
 * Shared test helpers: where `../shared` is, fixtures made once per run, and collecting records.
 *
 * @module
 */

import { makeVideo, type VideoSpec } from "../src/fixtures/video.ts";
import type { DecodeCommand, DecodeEvent } from "../src/decode/decode_messages.ts";
import type { InflightGate } from "../src/pipeline/gate.ts";
import { type CrashEvent, spawnDecoder, type WorkerHandle } from "../src/pipeline/workers.ts";

/** `../shared` beside the project, when present. */
export const SHARED = new URL("../../shared/", import.meta.url).pathname;

/** Whether `../shared/<rel>` exists. */
export function hasShared(rel: string): boolean {
  try {
    Deno.statSync(SHARED + rel);
    return true;
  } catch {
    return false;
  }
}

/** Logs, once per name, that a test was skipped because `../shared` is absent. */
export function sharedOrSkip(rel: string): boolean {
  const ok = hasShared(rel);
  if (!ok) console.warn(`skipped: ../shared/${rel} is absent (tests that need ../shared skip)`);
  return ok;
}

const dir = Deno.makeTempDirSync({ prefix: "vx-test-" });
globalThis.addEventListener("unload", () => Deno.removeSync(dir, { recursive: true }));
const made = new Map<string, Promise<string>>();

/** A small fixture's size and GOP: 24 frames at 8 fps, a keyframe every 8. */
export const SMALL = { width: 96, height: 64, frames: 24, keyint: 8, fps: 8 } as const;

/**
 * H.264 with open GOPs and B-frames. With keyint 8 or 16 skipping non-key frames happens to come
 * out right; at 25 it comes out reversed (as in native ffmpeg 5.1).
 */
export const OPEN_GOP: VideoSpec = {
  codec: "h264",
  ...SMALL,
  fps: 25,
  keyint: 25,
  frames: 50,
  bframes: 3,
  openGop: true,
};

/**
 * Noise makes every frame about as large as a keyframe: 3 keyframes in 300 frames, so reading only
 * the keyframes reads about 1% of the file.
 */
export const NOISY: VideoSpec = {
  codec: "h264",
  width: 320,
  height: 240,
  frames: 300,
  keyint: 100,
  noise: true,
};

/** A fixture video made by ffmpeg.wasm once per test process; returns its path. */
export function fixture(name: string, spec: VideoSpec): Promise<string> {
  let p = made.get(name);
  if (!p) {
    p = makeVideo(`${dir}/${name}`, spec).then(() => `${dir}/${name}`);
    made.set(name, p);
  }
  return p;
}

/** A text line whose keyframes alternate upright (even) and upside down (odd): 4 keyframes. */
export function turningText(): Promise<string> {
  return fixture("turning_text.mp4", {
    codec: "h264",
    width: 384,
    height: 96,
    frames: 40,
    keyint: 10,
    turnEvery: 10,
    text: "Hello keyframes 2026",
    fontSize: 40,
  });
}

/** A fresh temporary path inside the test directory. */
export function tempPath(name: string): string {
  return `${dir}/${crypto.randomUUID().slice(0, 8)}-${name}`;
}

/** Collects an async iterable. */
export async function collect<T>(it: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const x of it) out.push(x);
  return out;
}

/**
 * `work`, or a rejection with `why()` once `ms` have passed without it settling: a run that hangs
 * fails the test, saying what it left, instead of holding the suite (and CI) for ever.
 */
export async function within<T>(work: Promise<T>, ms: number, why: () => string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(why())), ms);
  });
  try {
    return await Promise.race([work, late]);
  } finally {
    clearTimeout(timer);
  }
}

/** Options for tests that spawn workers: they outlive a test's op sanitizer. */
export const WORKERS = { sanitizeOps: false, sanitizeResources: false } as const;

/** Runs Deno with `args` in a child process; its output as text. */
export async function runDeno(
  args: string[],
  opts: { env?: Record<string, string>; cwd?: string; stdin?: Uint8Array } = {},
): Promise<{ code: number; stdout: string; stderr: string }> {
  const child = new Deno.Command(Deno.execPath(), {
    args,
    env: opts.env,
    cwd: opts.cwd,
    stdout: "piped",
    stderr: "piped",
    stdin: opts.stdin ? "piped" : "null",
  }).spawn();
  if (opts.stdin) {
    // Written whole, then closed: the child reads a pipe that ends.
    const writer = child.stdin.getWriter();
    await writer.write(opts.stdin);
    await writer.close();
  }
  const out = await child.output();
  const dec = new TextDecoder();
  return { code: out.code, stdout: dec.decode(out.stdout), stderr: dec.decode(out.stderr) };
}

/** Runs the CLI in a child process. */
export function runCli(
  args: string[],
  opts: { env?: Record<string, string>; stdin?: Uint8Array } = {},
): Promise<{ code: number; stdout: string; stderr: string }> {
  return runDeno(["run", "-A", new URL("../cli.ts", import.meta.url).pathname, ...args], opts);
}

/** A decode worker whose events go to `on`, through `gate`; resolves once its core is loaded. */
export async function decodeWorker(
  gate: InflightGate,
  on: (e: DecodeEvent | CrashEvent) => void,
): Promise<WorkerHandle<DecodeCommand, DecodeEvent>> {
  const ready = Promise.withResolvers<void>();
  const handle = spawnDecoder((e) => {
    if (e.type === "ready") ready.resolve();
    else if (e.type === "crash") ready.reject(new Error(e.message));
    on(e);
  });
  handle.post({
    type: "init",
    gate: { buffer: gate.buffer, maxFrames: gate.maxFrames, maxBytes: gate.maxBytes },
  });
  await ready.promise;
  return handle;
}

/** Intersection over union of two `[x1, y1, x2, y2]` boxes. */
export function iou(a: number[], b: number[]): number {
  const w = Math.max(0, Math.min(a[2], b[2]) - Math.max(a[0], b[0]));
  const h = Math.max(0, Math.min(a[3], b[3]) - Math.max(a[1], b[1]));
  const area = (r: number[]) => (r[2] - r[0]) * (r[3] - r[1]);
  return (w * h) / (area(a) + area(b) - w * h);
}
