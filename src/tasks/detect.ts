/**
 * The `detect` task: runs a YOLOX or Ultralytics (YOLOv8, YOLO11) object detector on each
 * keyframe and reports labelled boxes in source pixels.
 *
 * @module
 */

import type { Model, Runtime, TensorData } from "../infer/runtime.ts";
import { firstLine } from "../infer/backend.ts";
import { type PlaneLayout, planesToFloat } from "../infer/gpu_planes.ts";
import { loadLabels } from "./coco.ts";
import {
  type Candidate,
  decodeUltralytics,
  decodeYolox,
  detectLayout,
  nms,
  unletterbox,
  yoloxAnchorCount,
} from "./detect_decode.ts";
import {
  type Detection,
  type Frame,
  type FrameSpec,
  type ReadFile,
  type StageTimings,
  type Task,
  type TaskDefinition,
  TaskError,
  type TaskFactory,
} from "./task.ts";
import { readModelShapes } from "../infer/onnx_header.ts";
import { cropPlanes, DETECT_STRIDE, detectInputSize } from "./detect_input.ts";

/** Score below which detections are dropped when `--score` is not given. */
export const DEFAULT_SCORE = 0.3;
/** IoU above which a lower-scored box of the same class is a duplicate (YOLOX's demo value). */
const NMS_IOU = 0.45;
/** Letterbox fill: the grey both YOLOX and Ultralytics train with. */
const PAD = 114;

/**
 * Creates the `detect` task from `options.model`, an ONNX detector with a `[1,3,H,W]` image
 * input (fixed, or any size with `options.size`) and a YOLOX (`[1, anchors, 5+C]`,
 * grid-encoded) or Ultralytics (`[1, 4+C, anchors]`) output. Labels come from `options.labels`
 * (default COCO).
 *
 * Without `options.size` each keyframe runs at the smallest stride-32 rectangle that holds it
 * letterboxed into the model's input (`detect_input.ts`: 416×256 for 16:9 video in a 416×416
 * model), on a session of the model reshaped to it; sessions are kept per shape. A model that
 * does not run at another shape keeps its own, and `--debug` says why. `options.size` pins one
 * input (`[416, 416]`: the square letterbox).
 *
 * Throws a {@linkcode TaskError} when no model is given, the model cannot be loaded (or run at
 * `options.size`), its input or output does not fit a detector, or the labels do not match its
 * class count.
 *
 * @example
 * ```ts
 * import { createRuntime } from "../infer/runtime.ts";
 * import { createDetectTask } from "./detect.ts";
 * const task = await createDetectTask({ task: "detect", model: "yolox_nano.onnx" }, createRuntime());
 * console.log(task.frameSpec); // { fit: { kind: "letterbox", width: 416, height: 416, pad: 114 }, pixFmt: "gbrp" }
 * ```
 */
export const createDetectTask: TaskFactory = async (options, engine, read = Deno.readFile) => {
  const path = options.model;
  if (path === undefined) throw new TaskError("detect needs --model PATH");
  const header = await readHeader(path, read);
  // Without a readable header (a stub engine's model) the session says what the model declares.
  const first = header ? undefined : await engine.load(path);
  const inputShape = header?.inputs[0]?.shape ?? first?.inputShapes[0] ?? [];
  const declaredOut = header ? header.outputs[0]?.shape : first?.outputShapes[0];
  const declared = fixedSize(inputShape);
  const [width, height] = imageSize(path, inputShape, options.size);
  const box: Size = [width, height];
  const outKnown = declaredOut && declaredOut.every((d) => typeof d === "number")
    ? declaredOut as number[]
    : undefined;
  const auto = options.size === undefined;
  /** Why keyframes run at `box` whatever their shape; undefined while they may not. */
  let fixed: string | undefined = !auto
    ? undefined
    : first
    ? "its header could not be read"
    : outKnown && (outKnown.length !== 3 || outKnown[0] !== 1)
    ? `its output [${outKnown.join(",")}] is not a known detector layout`
    : undefined;

  const sessions = new DetectSessions(
    path,
    engine,
    first,
    (size) => reshapeFor(header, declared, outKnown, size),
  );
  const open = (size: Size) => sessions.open(size);
  // The first session: at the shape of 16:9 video, the common case, so its keyframes need no
  // second one; `warm` runs (workers/infer.ts) run a 16:9 blank frame for the same reason.
  let current: Session;
  const firstSize = auto && !fixed ? detectInputSize(box, 1920, 1080) : box;
  try {
    current = await open(firstSize);
  } catch (e) {
    if (!auto) {
      throw new TaskError(`${path}: cannot run at --size ${showSize(box)} (${firstLine(e)})`);
    }
    if (showSize(firstSize) === showSize(box)) throw e;
    fixed = `it does not run at ${showSize(firstSize)}: ${why(path, e)}`;
    current = await open(box);
  }

  const outDims = await outputDims(current);
  const layout = detectLayout(outDims);
  const classes = layout === "yolox" ? outDims[2] - 5 : outDims[1] - 4;
  const [cw, ch] = current.size;
  if (layout === "yolox" && outDims[1] !== yoloxAnchorCount(cw, ch)) {
    throw new TaskError(
      `${path}: output [${outDims.join(",")}] has ${outDims[1]} anchors, but a grid-encoded ` +
        `YOLOX with a ${cw}×${ch} input has ${yoloxAnchorCount(cw, ch)}; ` +
        `export it with decode_in_inference=False`,
    );
  }
  const labels = await loadLabels(options.labels, classes, read);
  const threshold = options.score ?? DEFAULT_SCORE;
  const frameSpec = letterbox(width, height);
  // gbrp planes are G, B, R. YOLOX takes BGR planes, raw 0–255; Ultralytics RGB scaled to 0–1.
  const planeLayout: PlaneLayout = layout === "yolox"
    ? { order: [1, 0, 2], scale: 1 }
    : { order: [2, 0, 1], scale: 1 / 255 };

  const run: DetectRun = { width, height, layout, planeLayout, threshold };
  const infer = (s: Session, frame: Frame) => inferOn(s, frame, run);

  return {
    name: "detect",
    frameSpec,
    models: [{
      path,
      inputShape,
      preprocess: {
        size: auto
          ? `auto: the stride-${DETECT_STRIDE} rectangle within ${
            showSize(box)
          } that holds the keyframe`
          : showSize(box),
        ...(fixed === undefined ? {} : { sizeKept: `${showSize(box)}: ${fixed}` }),
      },
    }],
    async run(frame: Frame, timings?: StageTimings): Promise<Detection[]> {
      const t0 = performance.now();
      if (frame.width !== width || frame.height !== height) {
        // The decoder scales to frameSpec; anything else is a bug upstream, not user input.
        throw new Error(
          `detect: got a ${frame.width}×${frame.height} frame, need ${width}×${height}`,
        );
      }
      let note: string | undefined;
      const keep = (why: string) => {
        fixed = why;
        note = `${path}: keeps its ${showSize(box)} input: ${why}`;
      };
      // A shape not met before gets its session here, within the pre-process span.
      const size = auto && fixed === undefined
        ? detectInputSize(box, frame.srcWidth, frame.srcHeight)
        : box;
      if (showSize(size) !== current.key) {
        try {
          current = await open(size);
        } catch (e) {
          keep(`it does not run at ${showSize(size)}: ${why(path, e)}`);
          current = await open(box);
        }
      }
      let cands: Candidate[], t1: number;
      try {
        [cands, t1] = await infer(current, frame);
      } catch (e) {
        // A reshaped session that fails its first frame: the graph does not follow the input.
        if (current.proven) throw e;
        keep(`it does not run at ${current.key}: ${why(path, e)}`);
        sessions.drop(current);
        current = await open(box);
        [cands, t1] = await infer(current, frame);
      }
      current.proven = true;
      const t2 = performance.now();
      const detections = toDetections(cands, frame, width, height, labels);
      const t3 = performance.now();
      if (timings) {
        timings.pre = t1 - t0;
        timings.infer = t2 - t1;
        timings.post = t3 - t2;
        timings.input = current.key;
        if (note !== undefined) timings.note = note;
      }
      return detections;
    },
  } satisfies Task;
};

/** A model input size, `[width, height]`. */
type Size = [number, number];

/** One shape's session and its buffers. */
interface Session {
  size: Size;
  /** `416x256`. */
  key: string;
  model: Model;
  input: Float32Array;
  /** The cropped planes, once a frame needed cropping. */
  crop?: Uint8Array<ArrayBuffer>;
  /** Ran at its shape and gave that shape's anchors; a reshaped session has not until then. */
  proven: boolean;
}

/**
 * Sessions kept per worker: one video has one shape, a bulk run of mixed videos a few. Each
 * YOLOX-Nano session after the first added up to 24 MB of resident memory once it had run
 * (BENCHMARKS.md, "Rectangular detector inputs"), and wasm memory is not given back.
 */
const MAX_SESSIONS = 4;

/**
 * The declared output at another input size, where the layout is known from it: declaring it
 * lets onnxruntime's shape inference refuse a head that does not follow the input. Undefined
 * where the model has no readable header, or `size` is its declared one.
 */
function reshapeFor(
  header: Awaited<ReturnType<typeof readHeader>>,
  declared: Size | undefined,
  outKnown: number[] | undefined,
  size: Size,
): Record<string, number[]> | undefined {
  if (!header || (declared && size[0] === declared[0] && size[1] === declared[1])) {
    return undefined;
  }
  const reshape: Record<string, number[]> = {
    [header.inputs[0].name]: [1, 3, size[1], size[0]],
  };
  if (outKnown) {
    const cells = yoloxAnchorCount(size[0], size[1]); // strides 8/16/32 in both layouts
    reshape[header.outputs[0].name] = detectLayout(outKnown) === "yolox"
      ? [1, cells, outKnown[2]]
      : [1, outKnown[1], cells];
  }
  return reshape;
}

/** A detector's sessions, one per input size, at most {@linkcode MAX_SESSIONS}, last used kept. */
class DetectSessions {
  readonly #path: string;
  readonly #runtime: Runtime;
  /** The session made to read the model when its header could not be: the first `open` takes it. */
  #first: Model | undefined;
  readonly #reshapeFor: (size: Size) => Record<string, number[]> | undefined;
  /** By key, in the order of use. */
  readonly #sessions = new Map<string, Session>();

  constructor(
    path: string,
    runtime: Runtime,
    first: Model | undefined,
    reshape: (size: Size) => Record<string, number[]> | undefined,
  ) {
    this.#path = path;
    this.#runtime = runtime;
    this.#first = first;
    this.#reshapeFor = reshape;
  }

  /** The session at `size`, made (reshaped) when there is none. */
  async open(size: Size): Promise<Session> {
    const key = showSize(size);
    let s = this.#sessions.get(key);
    if (s) {
      this.#sessions.delete(key); // re-inserted: the map's order is the order of use
    } else {
      const first = this.#first;
      const reshape = first ? undefined : this.#reshapeFor(size);
      const model = first ??
        await this.#runtime.load(this.#path, reshape ? { reshape } : undefined);
      this.#first = undefined;
      const got = fixedSize(model.inputShapes[0] ?? []);
      if (reshape && !(got && got[0] === size[0] && got[1] === size[1])) {
        model.release?.();
        throw new Error("the engine does not reshape models");
      }
      s = { size, key, model, input: new Float32Array(3 * size[0] * size[1]), proven: !reshape };
      if (this.#sessions.size >= MAX_SESSIONS) {
        const [oldest] = this.#sessions.values();
        this.drop(oldest);
      }
    }
    this.#sessions.set(key, s);
    return s;
  }

  /** Forgets `s` and releases its model. */
  drop(s: Session): void {
    this.#sessions.delete(s.key);
    s.model.release?.();
  }
}

/** What every run of one detector shares. */
interface DetectRun {
  /** The frames' size: the letterbox the decoder makes. */
  width: number;
  height: number;
  layout: "yolox" | "ultralytics";
  planeLayout: PlaneLayout;
  threshold: number;
}

/** Runs `s` on the top-left of `frame` and decodes its output; also when inference began. */
async function inferOn(s: Session, frame: Frame, run: DetectRun): Promise<[Candidate[], number]> {
  const [w, h] = s.size;
  const planes = cropPlanes(frame.data, run.width, run.height, w, h, s.crop);
  if (planes !== frame.data) s.crop = planes;
  const dims = [1, 3, h, w] as const;
  const name = s.model.inputNames[0];
  let outputs: Record<string, TensorData>;
  let t1: number;
  if (s.model.runPlanes) {
    // The planes go to the GPU as bytes; a shader does what `planesToFloat` does here.
    t1 = performance.now();
    outputs = await s.model.runPlanes(name, planes, dims, run.planeLayout);
  } else {
    planesToFloat(planes, run.planeLayout, s.input);
    t1 = performance.now();
    outputs = await s.model.run({ [name]: { data: s.input, dims } });
  }
  const out = outputs[s.model.outputNames[0]];
  const cands = run.layout === "yolox"
    ? decodeYolox(out.data, out.dims, w, h, run.threshold)
    : decodeUltralytics(out.data, out.dims, run.threshold);
  if (!s.proven && run.layout === "ultralytics" && out.dims[2] !== yoloxAnchorCount(w, h)) {
    throw new TaskError(
      `output [${out.dims.join(",")}] does not follow a ${showSize(s.size)} input`,
    );
  }
  return [cands, t1];
}

/** The candidates after NMS, in the source picture's pixels; a box wholly in the padding goes. */
function toDetections(
  cands: Candidate[],
  frame: Frame,
  width: number,
  height: number,
  labels: readonly string[],
): Detection[] {
  const scale = Math.min(width / frame.srcWidth, height / frame.srcHeight);
  const detections: Detection[] = [];
  for (const c of nms(cands, NMS_IOU)) {
    const box = unletterbox(c.box, scale, frame.srcWidth, frame.srcHeight);
    // A box that lies wholly in the padding clamps to nothing; it is not in the picture.
    if (box[2] <= box[0] || box[3] <= box[1]) continue;
    detections.push({ label: labels[c.cls], score: Math.round(c.score * 1000) / 1000, box });
  }
  return detections;
}

/** An error's first line, without the model's path the engine put before it. */
function why(path: string, e: unknown): string {
  const line = firstLine(e);
  return line.startsWith(`${path}: `) ? line.slice(path.length + 2) : line;
}

function showSize([w, h]: readonly number[]): string {
  return `${w}x${h}`;
}

/** The declared shapes, or undefined when the file cannot be read as a model (load says why). */
async function readHeader(path: string, read: ReadFile) {
  try {
    const shapes = readModelShapes(await read(path));
    return shapes.inputs.length > 0 && shapes.outputs.length > 0 ? shapes : undefined;
  } catch {
    return undefined;
  }
}

/** `[W, H]` of a fixed `[1,3,H,W]` shape, else undefined. */
function fixedSize(shape: readonly (number | string)[]): Size | undefined {
  const [n, c, h, w] = shape;
  return shape.length === 4 && n === 1 && c === 3 && typeof h === "number" &&
      typeof w === "number" && h > 0 && w > 0
    ? [w, h]
    : undefined;
}

/**
 * Both layouts take the frame letterboxed top-left with grey as planar G, B, R bytes; the task
 * reorders and scales the planes itself.
 */
function letterbox(width: number, height: number): FrameSpec {
  return { fit: { kind: "letterbox", width, height, pad: PAD }, pixFmt: "gbrp" };
}

/** The `detect` task for the registry; its frames follow from the model's declared input. */
export const DETECT: TaskDefinition = {
  create: createDetectTask,
  needsModel: true,
  flags: ["model", "threads", "labels", "score", "size", "draw"],
  builtInLabels: ["coco"],
  async frameSpec(options, read = Deno.readFile) {
    if (options.model === undefined) return undefined;
    try {
      const [input] = readModelShapes(await read(options.model)).inputs;
      const [width, height] = imageSize(options.model, input?.shape ?? [], options.size);
      return letterbox(width, height);
    } catch {
      return undefined; // creating the task says what is wrong
    }
  },
};

/**
 * Checks the model takes a `[1,3,H,W]` image, fixed unless `size` is given, and returns
 * `size` or `[W, H]`.
 */
function imageSize(
  path: string,
  shape: readonly (number | string)[],
  size?: [number, number],
): [number, number] {
  const [n, c, h, w] = shape;
  const fits = (d: number | string | undefined) =>
    typeof d === "number" ? d > 0 : size !== undefined && d !== undefined;
  if (shape.length !== 4 || n !== 1 || c !== 3 || !fits(h) || !fits(w)) {
    const shown = shape.map((d) => (typeof d === "number" ? d : "?")).join(",");
    const need = size ? "a [1,3,H,W] image input" : "a fixed [1,3,H,W] image input (or --size WxH)";
    throw new TaskError(`${path}: model input [${shown}] does not fit detect: need ${need}`);
  }
  return size ?? [w as number, h as number];
}

/**
 * The first output's shape: from the session's metadata when it is fully numeric, else from one
 * run on the (still zero) input, since some exports leave the anchor count symbolic.
 */
async function outputDims(s: Session): Promise<readonly number[]> {
  const { model, input, size } = s;
  const declared = model.outputShapes[0];
  if (declared && declared.every((d) => typeof d === "number")) return declared as number[];
  const dims = [1, 3, size[1], size[0]];
  try {
    const out = await model.run({ [model.inputNames[0]]: { data: input, dims } });
    return out[model.outputNames[0]].dims;
  } catch (e) {
    throw new TaskError(
      `${model.path}: cannot run on a [${dims.join(",")}] image (${firstLine(e)})`,
    );
  }
}
