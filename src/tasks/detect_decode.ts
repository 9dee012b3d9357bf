/**
 * Detector post-processing: turns the raw output tensor of a YOLOX or Ultralytics (YOLOv8,
 * YOLO11) model into scored boxes, suppresses duplicates and maps boxes back to the source
 * frame. Pure functions over typed arrays, so tests can feed crafted tensors.
 *
 * @module
 */

import { TaskError } from "./task.ts";

/** A scored box before labelling; `box` is `[x1, y1, x2, y2]` in model-input pixels. */
export type Candidate = {
  cls: number;
  score: number;
  box: [number, number, number, number];
};

/** The output layouts {@linkcode detectLayout} tells apart. */
export type DetectLayout = "yolox" | "ultralytics";

/** YOLOX heads, finest first; the export puts stride 8's anchors first. */
const YOLOX_STRIDES = [8, 16, 32] as const;

/**
 * Number of anchors a YOLOX model with a `inputW`×`inputH` input predicts: the cells of its
 * stride 8, 16 and 32 grids.
 *
 * @example
 * ```ts
 * import { yoloxAnchorCount } from "./detect_decode.ts";
 * console.log(yoloxAnchorCount(416, 416)); // 3549
 * ```
 */
export function yoloxAnchorCount(inputW: number, inputH: number): number {
  let n = 0;
  for (const s of YOLOX_STRIDES) n += gridSize(inputW, s) * gridSize(inputH, s);
  return n;
}

// Each stride-2 stage of the backbone rounds odd sizes up, so a grid has ceil(size/stride) cells.
function gridSize(size: number, stride: number): number {
  return Math.ceil(size / stride);
}

/**
 * Tells the output layout of a detector from its output shape: `[1, A, B]` with `B < A` is
 * YOLOX (`[1, anchors, 5 + classes]`), otherwise Ultralytics (`[1, 4 + classes, anchors]`).
 *
 * Throws a {@linkcode TaskError} when the shape is not rank 3 with batch 1, or too small to hold
 * a box and one class.
 *
 * @example
 * ```ts
 * import { detectLayout } from "./detect_decode.ts";
 * console.log(detectLayout([1, 3549, 85])); // "yolox"
 * console.log(detectLayout([1, 84, 8400])); // "ultralytics"
 * ```
 */
export function detectLayout(dims: readonly number[]): DetectLayout {
  if (dims.length !== 3 || dims[0] !== 1) {
    throw new TaskError(
      `detector output [${
        dims.join(",")
      }] is not a supported layout: need [1, anchors, 5+classes]` +
        ` (YOLOX) or [1, 4+classes, anchors] (YOLOv8/YOLO11)`,
    );
  }
  const [, a, b] = dims;
  const layout: DetectLayout = b < a ? "yolox" : "ultralytics";
  const classes = layout === "yolox" ? b - 5 : a - 4;
  if (classes < 1) {
    throw new TaskError(
      `detector output [${dims.join(",")}] has no room for class scores (${layout} layout)`,
    );
  }
  return layout;
}

/**
 * Decodes a YOLOX output `[1, N, 5 + C]` that is still grid-encoded: per anchor
 * `[cx, cy, w, h, obj, cls0..clsC-1]` with `xy = (xy + grid) * stride`, `wh = exp(wh) * stride`.
 * Keeps anchors whose `obj × max cls` reaches `scoreThreshold`.
 *
 * Throws a {@linkcode TaskError} when `N` is not the anchor count of a `inputW`×`inputH` model
 * (an export with a different input size, or with the decode already in the graph).
 *
 * @example
 * ```ts
 * import { decodeYolox } from "./detect_decode.ts";
 * const out = new Float32Array(84 * 6); // 64×64 input, one class, all zero
 * console.log(decodeYolox(out, [1, 84, 6], 64, 64, 0.3)); // []
 * ```
 */
export function decodeYolox(
  out: Float32Array,
  dims: readonly number[],
  inputW: number,
  inputH: number,
  scoreThreshold: number,
): Candidate[] {
  if (dims.length !== 3 || dims[0] !== 1 || dims[2] < 6) {
    throw new TaskError(
      `YOLOX output [${dims.join(",")}] does not match the layout [1, anchors, 5+classes]`,
    );
  }
  const n = dims[1];
  const step = dims[2];
  const classes = step - 5;
  const expected = yoloxAnchorCount(inputW, inputH);
  if (n !== expected) {
    throw new TaskError(
      `YOLOX output has ${n} anchors but a ${inputW}×${inputH} input has ${expected} ` +
        `(strides 8/16/32); the model is not a grid-encoded YOLOX export for this input size`,
    );
  }
  if (out.length < n * step) {
    throw new TaskError(`YOLOX output holds ${out.length} values, fewer than [${dims.join(",")}]`);
  }
  const result: Candidate[] = [];
  let anchor = 0;
  for (const stride of YOLOX_STRIDES) {
    const gw = gridSize(inputW, stride);
    const gh = gridSize(inputH, stride);
    for (let gy = 0; gy < gh; gy++) {
      for (let gx = 0; gx < gw; gx++, anchor++) {
        const base = anchor * step;
        const obj = out[base + 4];
        // Class scores are at most 1, so obj bounds the final score: most anchors stop here.
        if (!(obj >= scoreThreshold)) continue;
        let best = 0;
        let bestScore = out[base + 5];
        for (let c = 1; c < classes; c++) {
          const v = out[base + 5 + c];
          if (v > bestScore) {
            bestScore = v;
            best = c;
          }
        }
        const score = obj * bestScore;
        if (!(score >= scoreThreshold)) continue;
        const cx = (out[base] + gx) * stride;
        const cy = (out[base + 1] + gy) * stride;
        const hw = Math.exp(out[base + 2]) * stride / 2;
        const hh = Math.exp(out[base + 3]) * stride / 2;
        result.push({ cls: best, score, box: [cx - hw, cy - hh, cx + hw, cy + hh] });
      }
    }
  }
  return result;
}

/**
 * Decodes an Ultralytics (YOLOv8, YOLO11) output `[1, 4 + C, N]`, channel-major: row 0 holds
 * every anchor's `cx`, row 1 every `cy`, then `w`, `h` and one row per class. Boxes are already
 * in input pixels and class scores have no objectness. Keeps anchors whose best class score
 * reaches `scoreThreshold`.
 *
 * Throws a {@linkcode TaskError} when `dims` is not `[1, 4 + C, N]` with `C ≥ 1`.
 *
 * @example
 * ```ts
 * import { decodeUltralytics } from "./detect_decode.ts";
 * // one anchor, one class: box centred at (10, 10), 4×4, score 0.9
 * const out = new Float32Array([10, 10, 4, 4, 0.9]);
 * console.log(decodeUltralytics(out, [1, 5, 1], 0.3)); // [{ cls: 0, score: ~0.9, box: [8, 8, 12, 12] }]
 * ```
 */
export function decodeUltralytics(
  out: Float32Array,
  dims: readonly number[],
  scoreThreshold: number,
): Candidate[] {
  if (dims.length !== 3 || dims[0] !== 1 || dims[1] < 5) {
    throw new TaskError(
      `Ultralytics output [${dims.join(",")}] does not match the layout [1, 4+classes, anchors]`,
    );
  }
  const classes = dims[1] - 4;
  const n = dims[2];
  if (out.length < dims[1] * n) {
    throw new TaskError(
      `Ultralytics output holds ${out.length} values, fewer than [${dims.join(",")}]`,
    );
  }
  const result: Candidate[] = [];
  const clsBase = 4 * n;
  for (let i = 0; i < n; i++) {
    let best = 0;
    let score = out[clsBase + i];
    for (let c = 1; c < classes; c++) {
      const v = out[clsBase + c * n + i];
      if (v > score) {
        score = v;
        best = c;
      }
    }
    if (!(score >= scoreThreshold)) continue;
    const cx = out[i];
    const cy = out[n + i];
    const hw = out[2 * n + i] / 2;
    const hh = out[3 * n + i] / 2;
    result.push({ cls: best, score, box: [cx - hw, cy - hh, cx + hw, cy + hh] });
  }
  return result;
}

/**
 * Per-class greedy non-maximum suppression: walks candidates by score, highest first, and drops
 * any whose IoU with a kept box of the same class exceeds `iou`. Returns the kept candidates
 * sorted by score, descending; the input array is left as it was.
 *
 * @example
 * ```ts
 * import { nms } from "./detect_decode.ts";
 * const kept = nms([
 *   { cls: 0, score: 0.9, box: [0, 0, 10, 10] },
 *   { cls: 0, score: 0.8, box: [1, 1, 10, 10] },
 * ], 0.45);
 * console.log(kept.length); // 1
 * ```
 */
export function nms(cands: Candidate[], iou: number): Candidate[] {
  const sorted = [...cands].sort((a, b) => b.score - a.score);
  const kept: Candidate[] = [];
  for (const c of sorted) {
    let keep = true;
    for (const k of kept) {
      if (k.cls === c.cls && boxIou(k.box, c.box) > iou) {
        keep = false;
        break;
      }
    }
    if (keep) kept.push(c);
  }
  return kept;
}

function boxIou(a: readonly number[], b: readonly number[]): number {
  const iw = Math.min(a[2], b[2]) - Math.max(a[0], b[0]);
  const ih = Math.min(a[3], b[3]) - Math.max(a[1], b[1]);
  if (iw <= 0 || ih <= 0) return 0;
  const inter = iw * ih;
  const union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter;
  return union > 0 ? inter / union : 0;
}

/**
 * Maps a box from a top-left letterboxed model input back to the source frame: divides by the
 * letterbox `scale`, clamps into `[0, srcW]×[0, srcH]` (boxes may reach into the padding) and
 * rounds to one decimal.
 *
 * @example
 * ```ts
 * import { unletterbox } from "./detect_decode.ts";
 * console.log(unletterbox([-4, 10, 50, 300], 0.5, 640, 480)); // [0, 20, 100, 480]
 * ```
 */
export function unletterbox(
  box: readonly [number, number, number, number],
  scale: number,
  srcW: number,
  srcH: number,
): [number, number, number, number] {
  const fit = (v: number, max: number) =>
    Math.round(Math.min(max, Math.max(0, v / scale)) * 10) / 10;
  return [fit(box[0], srcW), fit(box[1], srcH), fit(box[2], srcW), fit(box[3], srcH)];
}
