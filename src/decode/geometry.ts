/**
 * Frame geometry: how big the decoder's output is for a task's {@linkcode FrameSpec}, and the
 * ffmpeg filter that produces it, so that scaling, letterboxing and pixel-format conversion
 * happen inside ffmpeg rather than in per-pixel JavaScript.
 *
 * @module
 */

import type { FrameSpec } from "../tasks/task.ts";

/** The size of the frames the decoder emits for a source of `srcWidth`×`srcHeight`. */
export interface OutputGeometry {
  width: number;
  height: number;
  /** ffmpeg filter chain from a decoded frame to the spec's pixels. */
  filter: string;
  /** Bytes per frame. */
  frameBytes: number;
}

/** Computes the output frame size and filter chain for a spec and a source size. */
export function outputGeometry(
  spec: FrameSpec,
  srcWidth: number,
  srcHeight: number,
): OutputGeometry {
  const fit = spec.fit;
  let width: number, height: number, filter: string;
  // Bilinear matches the cv2.resize default that YOLOX and PaddleOCR were trained with.
  if (fit.kind === "letterbox") {
    const r = Math.min(fit.width / srcWidth, fit.height / srcHeight);
    const w = Math.min(fit.width, Math.max(1, Math.round(srcWidth * r)));
    const h = Math.min(fit.height, Math.max(1, Math.round(srcHeight * r)));
    const pad = fit.pad.toString(16).padStart(2, "0");
    width = fit.width;
    height = fit.height;
    filter = `scale=${w}:${h}:flags=bilinear,format=${spec.pixFmt},` +
      `pad=${width}:${height}:0:0:color=0x${pad}${pad}${pad}`;
  } else if (fit.kind === "crop") {
    // Cover the target, then ffmpeg's crop takes the centre (its default x/y, rounded down);
    // converted first, so a subsampled format cannot move the crop to an even column.
    const r = Math.max(fit.width / srcWidth, fit.height / srcHeight);
    const w = Math.max(fit.width, Math.round(srcWidth * r));
    const h = Math.max(fit.height, Math.round(srcHeight * r));
    width = fit.width;
    height = fit.height;
    filter = `scale=${w}:${h}:flags=bilinear,format=${spec.pixFmt},crop=${width}:${height}`;
  } else if (fit.kind === "stretch") {
    width = fit.width;
    height = fit.height;
    // Nearest: swscale then reads two source lines for a 2×2 frame, where bilinear filters all
    // of a 720p picture (~3 ms a keyframe on the core's tiered-up code, more before).
    const flags = fit.nearest ? "neighbor" : "bilinear";
    filter = `scale=${width}:${height}:flags=${flags},format=${spec.pixFmt}`;
  } else {
    const r = Math.min(1, fit.maxSide / Math.max(srcWidth, srcHeight));
    width = Math.max(1, Math.round(srcWidth * r));
    height = Math.max(1, Math.round(srcHeight * r));
    filter = `scale=${width}:${height}:flags=bilinear,format=${spec.pixFmt}`;
  }
  return { width, height, filter, frameBytes: width * height * 3 };
}
