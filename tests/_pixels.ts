/**
 * Pictures as pixels for tests: a JPEG or PNG decoded to packed RGB by ffmpeg.wasm, and the
 * comparisons the drawing and report tests make.
 *
 * @module
 */

import { runFFmpeg } from "../src/fixtures/video.ts";
import { tempPath } from "./_helpers.ts";

/** A decoded picture: `data` is packed RGB, row by row. */
export interface Rgb {
  width: number;
  height: number;
  data: Uint8Array;
}

/** Decodes the picture file at `path` (JPEG, PNG) to RGB. */
export async function readRgb(path: string): Promise<Rgb> {
  const out = tempPath("pixels.rgb");
  const log = await runFFmpeg({
    args: ["-hide_banner", "-loglevel", "info", "-i", "/in", "-f", "rawvideo", "-pix_fmt", "rgb24"]
      .concat(["-frames:v", "1", "-y", "/out.rgb"]),
    inputs: { "/in": path },
    outputs: { "/out.rgb": out },
  });
  const size = log.map((l) => /Stream #0:0.*Video:.*?(\d{2,5})x(\d{2,5})/.exec(l)).find(Boolean);
  if (!size) throw new Error(`${path}: no picture size in ffmpeg's log`);
  const data = await Deno.readFile(out);
  await Deno.remove(out);
  return { width: Number(size[1]), height: Number(size[2]), data };
}

/** `RRGGBB` → `[r, g, b]`. */
export function rgbOfHex(hex: string): [number, number, number] {
  return [0, 2, 4].map((i) => parseInt(hex.slice(i, i + 2), 16)) as [number, number, number];
}

/** The pixel at `(x, y)`. */
export function pixel(p: Rgb, x: number, y: number): [number, number, number] {
  const i = (y * p.width + x) * 3;
  return [p.data[i], p.data[i + 1], p.data[i + 2]];
}

/** The largest per-channel difference between two colours. */
export function distance(a: readonly number[], b: readonly number[]): number {
  return Math.max(Math.abs(a[0] - b[0]), Math.abs(a[1] - b[1]), Math.abs(a[2] - b[2]));
}
