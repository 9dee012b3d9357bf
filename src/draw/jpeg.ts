/**
 * Drawing on a keyframe's JPEG with an ffmpeg core: decode, run the plan's filter graph, encode.
 * The picture stays in the JPEG's own YUV 4:2:0 from decoder to encoder (`drawbox` and
 * `drawtext` draw in it), so nothing is converted and re-encoding is the only change outside the
 * marks.
 *
 * @module
 */

import { type FFmpegCore, MJPEG_ARGS } from "../../wasm/ffmpeg.ts";
import type { DrawPlan } from "./plan.ts";

/** The font tags are drawn in: DejaVu Sans Bold, from npm, as the fixtures use. */
export const FONT_URL = new URL(import.meta.resolve("dejavu-fonts-ttf/ttf/DejaVuSans-Bold.ttf"));

/** A JPEG that could not be drawn on; the message is ffmpeg's reason. */
export class DrawError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "DrawError";
  }
}

/**
 * Draws `plan` on `jpeg` with `core` (which must hold the font at `/font.ttf`; see
 * {@linkcode FONT_URL}) and returns the new JPEG. Encoded as the decode worker encodes keyframes
 * (`-q:v 3`, standard Huffman tables), so a drawn picture is as sharp as an undrawn one. Throws
 * {@linkcode DrawError} with ffmpeg's last error when the JPEG cannot be decoded.
 */
export function drawOnJpeg(core: FFmpegCore, jpeg: Uint8Array, plan: DrawPlan): Uint8Array {
  const FS = core.FS;
  const log: string[] = [];
  core.setLogger((l) => log.push(l.message));
  const texts = plan.texts.map((_, i) => `/t${i}.txt`);
  try {
    FS.writeFile("/in.jpg", jpeg);
    plan.texts.forEach((t, i) => FS.writeFile(texts[i], t));
    const rc = core.exec(
      "-hide_banner",
      "-nostats",
      "-loglevel",
      "error",
      "-i",
      "/in.jpg",
      "-vf",
      plan.filter,
      "-frames:v",
      "1",
      ...MJPEG_ARGS,
      "-f",
      "image2",
      "-y",
      "/out.jpg",
    );
    if (rc !== 0) {
      throw new DrawError(log.filter((l) => l.trim()).at(-1) ?? `ffmpeg exited with code ${rc}`);
    }
    return FS.readFile("/out.jpg");
  } finally {
    core.reset();
    for (const p of ["/in.jpg", "/out.jpg", ...texts]) {
      try {
        FS.unlink(p);
      } catch { /* not written */ }
    }
  }
}
