/**
 * The `detect` task: runs a YOLOX or Ultralytics (YOLOv8, YOLO11) object detector on each
 * keyframe and reports labelled boxes in source pixels.
 *
 * @module
 */

import type { Model, TensorData } from "../infer/engine.ts";
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
  type StageTimings,
  type Task,
  type TaskDefinition,
  TaskError,
  type TaskFactory,
} from "./task.ts";
import { readInputShapes } from "../infer/onnx_header.ts";

/** Score below which detections are dropped when `--score` is not given. */
export const DEFAULT_SCORE = 0.3;
/** IoU above which a lower-scored box of the same class is a duplicate (YOLOX's demo value). */
const NMS_IOU = 0.45;
/** Letterbox fill: the grey both YOLOX and Ultralytics train with. */
const PAD = 114;

/**
 * Creates the `detect` task from `options.model`, an ONNX detector with a fixed `[1,3,H,W]`
 * image input and a YOLOX (`[1, anchors, 5+C]`, grid-encoded) or Ultralytics
 * (`[1, 4+C, anchors]`) output. Labels come from `options.labels` (default COCO).
 *
 * Throws a {@linkcode TaskError} when no model is given, the model cannot be loaded, its input
 * or output does not fit a detector, or the labels do not match its class count.
 *
 * @example
 * ```ts ignore
 * import { createEngine } from "../infer/engine.ts";
 * import { createDetectTask } from "./detect.ts";
 * const task = await createDetectTask({ task: "detect", model: "yolox_nano.onnx" }, createEngine());
 * console.log(task.frameSpec); // { fit: { kind: "letterbox", width: 416, height: 416, pad: 114 }, pixFmt: "gbrp" }
 * ```
 */
export const createDetectTask: TaskFactory = async (options, engine) => {
  const path = options.model;
  if (path === undefined) throw new TaskError("detect needs --model PATH");
  const model = await engine.load(path);
  const inputShape = model.inputShapes[0] ?? [];
  const [width, height] = imageSize(path, inputShape);
  const inputName = model.inputNames[0];
  const input = new Float32Array(3 * width * height);
  const inputDims = [1, 3, height, width] as const;

  const outDims = await outputDims(model, inputName, input, inputDims);
  const layout = detectLayout(outDims);
  const classes = layout === "yolox" ? outDims[2] - 5 : outDims[1] - 4;
  if (layout === "yolox" && outDims[1] !== yoloxAnchorCount(width, height)) {
    throw new TaskError(
      `${path}: output [${outDims.join(",")}] has ${outDims[1]} anchors, but a grid-encoded ` +
        `YOLOX with a ${width}×${height} input has ${yoloxAnchorCount(width, height)}; ` +
        `export it with decode_in_inference=False`,
    );
  }
  const labels = await loadLabels(options.labels, classes);
  const threshold = options.score ?? DEFAULT_SCORE;
  const frameSpec = letterbox(width, height);
  // gbrp planes are G, B, R. YOLOX takes BGR planes, raw 0–255; Ultralytics RGB scaled to 0–1.
  const planeLayout: PlaneLayout = layout === "yolox"
    ? { order: [1, 0, 2], scale: 1 }
    : { order: [2, 0, 1], scale: 1 / 255 };

  return {
    name: "detect",
    frameSpec,
    models: [{ path, inputShape }],
    async run(frame: Frame, timings?: StageTimings): Promise<Detection[]> {
      const t0 = performance.now();
      if (frame.width !== width || frame.height !== height) {
        // The decoder scales to frameSpec; anything else is a bug upstream, not user input.
        throw new Error(
          `detect: got a ${frame.width}×${frame.height} frame, need ${width}×${height}`,
        );
      }
      let outputs: Record<string, TensorData>;
      let t1: number;
      if (model.runPlanes) {
        // The planes go to the GPU as bytes; a shader does what `planesToFloat` does here.
        t1 = performance.now();
        outputs = await model.runPlanes(inputName, frame.data, inputDims, planeLayout);
      } else {
        planesToFloat(frame.data, planeLayout, input);
        t1 = performance.now();
        outputs = await model.run({ [inputName]: { data: input, dims: inputDims } });
      }
      const t2 = performance.now();
      const out = outputs[model.outputNames[0]];
      const cands: Candidate[] = layout === "yolox"
        ? decodeYolox(out.data, out.dims, width, height, threshold)
        : decodeUltralytics(out.data, out.dims, threshold);
      const scale = Math.min(width / frame.srcWidth, height / frame.srcHeight);
      const detections: Detection[] = [];
      for (const c of nms(cands, NMS_IOU)) {
        const box = unletterbox(c.box, scale, frame.srcWidth, frame.srcHeight);
        // A box that lies wholly in the padding clamps to nothing; it is not in the picture.
        if (box[2] <= box[0] || box[3] <= box[1]) continue;
        detections.push({ label: labels[c.cls], score: Math.round(c.score * 1000) / 1000, box });
      }
      const t3 = performance.now();
      if (timings) {
        timings.pre = t1 - t0;
        timings.infer = t2 - t1;
        timings.post = t3 - t2;
      }
      return detections;
    },
  } satisfies Task;
};

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
  async frameSpec(options) {
    if (options.model === undefined) return undefined;
    try {
      const [input] = readInputShapes(await Deno.readFile(options.model));
      const [width, height] = imageSize(options.model, input?.shape ?? []);
      return letterbox(width, height);
    } catch {
      return undefined; // creating the task says what is wrong
    }
  },
};

/** Checks the model takes a fixed `[1,3,H,W]` image and returns `[W, H]`. */
function imageSize(path: string, shape: readonly (number | string)[]): [number, number] {
  const [n, c, h, w] = shape;
  if (
    shape.length !== 4 || n !== 1 || c !== 3 || typeof h !== "number" || typeof w !== "number" ||
    h <= 0 || w <= 0
  ) {
    const shown = shape.map((d) => (typeof d === "number" ? d : "?")).join(",");
    throw new TaskError(
      `${path}: model input [${shown}] does not fit detect: need a fixed [1,3,H,W] image input`,
    );
  }
  return [w, h];
}

/**
 * The first output's shape: from the model's metadata when it is fully numeric, else from one
 * run on the (still zero) input, since some exports leave the anchor count symbolic.
 */
async function outputDims(
  model: Model,
  inputName: string,
  input: Float32Array,
  dims: readonly number[],
): Promise<readonly number[]> {
  const declared = model.outputShapes[0];
  if (declared && declared.every((d) => typeof d === "number")) return declared as number[];
  try {
    const out = await model.run({ [inputName]: { data: input, dims } });
    return out[model.outputNames[0]].dims;
  } catch (e) {
    throw new TaskError(
      `${model.path}: cannot run on a [${dims.join(",")}] image (${firstLine(e)})`,
    );
  }
}
