/**
 * Which input a fully convolutional detector gets for a source frame: the smallest rectangle,
 * in steps of the model's coarsest stride, that holds the frame letterboxed into the model's own
 * input. A 16:9 frame in YOLOX-Nano's 416×416 takes 416×256: 38% fewer pixels, and 0.62× the
 * inference time on wasm (BENCHMARKS.md, `bench/rect.ts`).
 *
 * @module
 */

/** The coarsest stride of YOLOX and Ultralytics heads: every input side is a multiple of it. */
export const DETECT_STRIDE = 32;

/**
 * The `[width, height]` of the input for a `srcWidth`×`srcHeight` frame letterboxed top-left
 * into `box` (the model's declared input, or `--size`): the scaled frame's size rounded up to
 * multiples of `stride`, never beyond `box`. The frame's scale is the one the letterbox into
 * `box` has, so the input is the top-left corner of that letterbox and boxes map back the same.
 *
 * @example
 * ```ts
 * import { detectInputSize } from "./detect_input.ts";
 * console.log(detectInputSize([416, 416], 1280, 720)); // [416, 256]
 * console.log(detectInputSize([416, 416], 576, 768)); // [320, 416]
 * console.log(detectInputSize([416, 416], 640, 640)); // [416, 416]
 * ```
 */
export function detectInputSize(
  box: readonly [number, number],
  srcWidth: number,
  srcHeight: number,
  stride: number = DETECT_STRIDE,
): [number, number] {
  const [bw, bh] = box;
  // As the decoder's letterbox (src/decode/geometry.ts) sizes the scaled frame.
  const r = Math.min(bw / srcWidth, bh / srcHeight);
  const w = Math.min(bw, Math.max(1, Math.round(srcWidth * r)));
  const h = Math.min(bh, Math.max(1, Math.round(srcHeight * r)));
  return [
    Math.min(bw, Math.ceil(w / stride) * stride),
    Math.min(bh, Math.ceil(h / stride) * stride),
  ];
}

/**
 * The top-left `width`×`height` of a planar frame `frameWidth` pixels wide (three planes), as
 * planes of its own; the frame itself when the sizes agree. `out` is used when given.
 *
 * @example
 * ```ts
 * import { cropPlanes } from "./detect_input.ts";
 * // Three 2×2 planes, cut to their first row.
 * const planes = new Uint8Array([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12]);
 * console.log(cropPlanes(planes, 2, 2, 2, 1)); // Uint8Array [1, 2, 5, 6, 9, 10]
 * ```
 */
export function cropPlanes(
  frame: Uint8Array<ArrayBuffer>,
  frameWidth: number,
  frameHeight: number,
  width: number,
  height: number,
  out: Uint8Array<ArrayBuffer> = new Uint8Array(width * height * 3),
): Uint8Array<ArrayBuffer> {
  if (width === frameWidth && height === frameHeight) return frame;
  const plane = frameWidth * frameHeight;
  for (let c = 0; c < 3; c++) {
    const src = c * plane;
    const dst = c * width * height;
    if (width === frameWidth) {
      // Whole rows: one copy of the plane's first `height` rows.
      out.set(frame.subarray(src, src + width * height), dst);
      continue;
    }
    for (let y = 0; y < height; y++) {
      const from = src + y * frameWidth;
      out.set(frame.subarray(from, from + width), dst + y * width);
    }
  }
  return out;
}
