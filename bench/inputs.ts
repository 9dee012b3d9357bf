/**
 * What the benches share: where things are, the model they need from `../shared`, the `--runs`
 * flag, and the inputs they make once under `.cache/bench/` (never committed).
 *
 * @module
 */

import { makeVideo } from "../src/fixtures/video.ts";

/** The project's root, with a trailing slash. */
export const ROOT = new URL("../", import.meta.url).pathname;
/** `../shared` beside the project, with a trailing slash. */
export const SHARED = new URL("../../shared/", import.meta.url).pathname;
/** YOLOX-Nano, from `../shared`. */
export const MODEL = SHARED + "models/yolox_nano.onnx";
/** Where benches keep the inputs they make. */
export const CACHE = ROOT + ".cache/bench/";

/** Exits with one line when `path` (something in `../shared`) is absent. */
export function requireShared(path: string): void {
  try {
    Deno.statSync(path);
  } catch {
    console.error(`bench: ${path} is absent; the benchmark needs ../shared`);
    Deno.exit(1);
  }
}

/** The value of `--runs N`, or `fallback`. */
export function runsFlag(fallback: number): number {
  const at = Deno.args.indexOf("--runs");
  return at >= 0 ? Number(Deno.args[at + 1]) : fallback;
}

/** Makes `path` with `make` unless it is there already; returns `path`. */
export async function once(
  path: string,
  what: string,
  make: () => Promise<void>,
): Promise<string> {
  await Deno.mkdir(path.slice(0, path.lastIndexOf("/")), { recursive: true });
  try {
    Deno.statSync(path);
  } catch {
    console.error("bench: making", what);
    await make();
  }
  return path;
}

/** The 20 s 720p30 H.264 clip with a keyframe every second (20 keyframes) of the dog photo. */
export function clip720p(): Promise<string> {
  const path = CACHE + "720p_20kf.mp4";
  return once(path, path, () =>
    makeVideo(path, {
      codec: "h264",
      width: 1280,
      height: 720,
      frames: 600,
      fps: 30,
      keyint: 30,
      image: SHARED + "media/dog.jpg",
    }));
}

/**
 * The bulk set: `count` copies of one 640x360 clip with 5 keyframes, distinct files of identical
 * content, so the work per file is the same. Returns the directory (with a trailing slash) and
 * the files' names.
 */
export async function bulkSet(count: number): Promise<{ dir: string; names: string[] }> {
  const dir = CACHE + "bulk/";
  const seed = await once(dir + "seed.mp4", "the bulk set", () =>
    makeVideo(dir + "seed.mp4", {
      codec: "h264",
      width: 640,
      height: 360,
      frames: 50,
      fps: 10,
      keyint: 10,
      image: SHARED + "media/dog.jpg",
    }));
  const names = Array.from({ length: count }, (_, i) => `f${String(i).padStart(3, "0")}.mp4`);
  for (const n of names) {
    try {
      Deno.statSync(dir + n);
    } catch {
      Deno.copyFileSync(seed, dir + n);
    }
  }
  return { dir, names };
}
