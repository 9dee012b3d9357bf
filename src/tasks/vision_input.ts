/**
 * The input side of the generic vision tasks (`classify`, `embed`, `faces`, `tensor`): how a
 * keyframe becomes the float tensor a model declares. Everything is declared, never guessed
 * silently: the size and layout come from the model's input (a dynamic size needs `size`), the
 * rest from the options or from the task's documented defaults, and the result is recorded
 * for `--debug`. Scaling, cropping, letterboxing and the pixel format happen in ffmpeg's filter
 * graph (the {@linkcode FrameSpec}); here the bytes only become normalised floats.
 *
 * @module
 */

import type { Model, TensorData } from "../infer/runtime.ts";
import { firstLine } from "../infer/backend.ts";
import type { DeclaredShape, DeclaredValue } from "../infer/onnx_header.ts";
import { type PerChannel, type PlaneLayout, planesToFloat } from "../infer/gpu_planes.ts";
import { type FrameSpec, type PreprocessOptions, TaskError, type TaskName } from "./task.ts";

/** A task's pre-processing defaults; `mean` and `std` are in RGB order. */
export interface VisionDefaults {
  fit: NonNullable<PreprocessOptions["fit"]>;
  channels: NonNullable<PreprocessOptions["channels"]>;
  range: NonNullable<PreprocessOptions["range"]>;
  mean: PerChannel;
  std: PerChannel;
}

/** classify and embed: what torchvision, timm and transformers.js image models expect. */
export const IMAGENET_DEFAULTS: VisionDefaults = {
  fit: "stretch",
  channels: "rgb",
  range: "0-1",
  mean: [0.485, 0.456, 0.406],
  std: [0.229, 0.224, 0.225],
};

/** tensor: the picture as it is, RGB scaled to 0–1, no mean or std. */
export const PLAIN_DEFAULTS: VisionDefaults = {
  fit: "stretch",
  channels: "rgb",
  range: "0-1",
  mean: [0, 0, 0],
  std: [1, 1, 1],
};

/** Letterbox fill, the grey YOLO-family models train with; detect uses the same. */
const PAD = 114;

/** A model's image input, resolved: what to ask the decoder for and how to fill the tensor. */
export interface VisionInput {
  /** The ONNX input's name. */
  readonly name: string;
  readonly width: number;
  readonly height: number;
  readonly layout: "nchw" | "nhwc";
  /** The tensor's dims: `[1,3,H,W]` or `[1,H,W,3]`. */
  readonly dims: readonly number[];
  readonly fit: NonNullable<PreprocessOptions["fit"]>;
  /** What the decoder delivers. */
  readonly frameSpec: FrameSpec;
  /** NCHW only: the planar layout a WebGPU shader can apply in place of {@linkcode toFloat}. */
  readonly planes?: PlaneLayout;
  /** The frame's bytes as the model's normalised floats, into `out` when given. */
  toFloat(data: Uint8Array, out?: Float32Array): Float32Array;
  /** The pre-processing used, for `--debug`. */
  readonly describe: Record<string, unknown>;
}

/** ONNX's `TensorProto.DataType` names of the element types an image input might have. */
const ONNX_TYPES: Record<number, string> = {
  2: "uint8",
  3: "int8",
  6: "int32",
  7: "int64",
  10: "float16",
  11: "float64",
  16: "bfloat16",
};

const shown = (shape: DeclaredShape) =>
  `[${shape.map((d) => (typeof d === "number" ? d : "?")).join(",")}]`;

/**
 * Resolves a model's image input for `task` from its declared inputs, the user's options and
 * the task's defaults.
 *
 * Throws a {@linkcode TaskError} naming `path` when the model does not take one image (one
 * input, rank 4, three channels, batch 1 or dynamic), when its size is dynamic and no `size` is
 * given or `size` contradicts it, when `layout` contradicts it, or when `mean`/`std` are not
 * three numbers (a zero `std` included).
 *
 * @example
 * ```ts
 * import { IMAGENET_DEFAULTS, resolveVisionInput } from "./vision_input.ts";
 * const input = resolveVisionInput(
 *   "m.onnx",
 *   "classify",
 *   [{ name: "x", shape: ["N", 3, "H", "W"] }],
 *   { size: [192, 48], channels: "bgr", mean: [0.5, 0.5, 0.5], std: [0.5, 0.5, 0.5] },
 *   IMAGENET_DEFAULTS,
 * );
 * console.log(input.dims, input.frameSpec);
 * // [1, 3, 48, 192] { fit: { kind: "stretch", width: 192, height: 48 }, pixFmt: "gbrp" }
 * ```
 */
export function resolveVisionInput(
  path: string,
  task: TaskName,
  inputs: readonly (DeclaredValue | { name: string; shape: DeclaredShape; elemType?: string })[],
  options: PreprocessOptions,
  defaults: VisionDefaults,
): VisionInput {
  const misfit = (why: string): never => {
    throw new TaskError(`${path}: ${why}`);
  };
  if (inputs.length !== 1) {
    misfit(
      `model has ${inputs.length} inputs (${inputs.map((i) => i.name).join(", ")}); ` +
        `${task} feeds one image`,
    );
  }
  const { name, shape, elemType } = inputs[0];
  // The header gives ONNX's number (1 is FLOAT), a session onnxruntime's name.
  if (elemType !== undefined && elemType !== 1 && elemType !== "float32") {
    misfit(
      `model input ${name} is ${
        typeof elemType === "number" ? ONNX_TYPES[elemType] ?? `type ${elemType}` : elemType
      }; ` +
        `${task} feeds float32`,
    );
  }
  const need = `need an image [1,3,H,W] or [1,H,W,3]`;
  if (shape.length !== 4) misfit(`model input ${shown(shape)} does not fit ${task}: ${need}`);
  const layout = options.layout ??
    (shape[1] === 3 ? "nchw" : shape[3] === 3 ? "nhwc" : undefined) ??
    misfit(`model input ${shown(shape)} does not fit ${task}: ${need} (or give --layout)`);
  const [n, c, h, w] = layout === "nchw" ? shape : [shape[0], shape[3], shape[1], shape[2]];
  if (typeof c === "number" && c !== 3) {
    misfit(`model input ${shown(shape)} has ${c} channels as ${layout}; ${task} feeds 3`);
  }
  if (typeof n === "number" && n !== 1) {
    misfit(`model input ${shown(shape)} has batch ${n}; vx feeds one keyframe at a time`);
  }
  let width: number, height: number;
  if (options.size) {
    [width, height] = options.size;
    if (!(width > 0 && height > 0 && Number.isInteger(width) && Number.isInteger(height))) {
      misfit(`--size ${width}x${height} is not a size`);
    }
    if ((typeof w === "number" && w !== width) || (typeof h === "number" && h !== height)) {
      misfit(`model input ${shown(shape)} is ${w}×${h}, not the --size ${width}x${height}`);
    }
  } else if (typeof w === "number" && typeof h === "number" && w > 0 && h > 0) {
    [width, height] = [w, h];
  } else {
    return misfit(`model input ${shown(shape)} has a dynamic size: give --size WxH`);
  }
  const channels = options.channels ?? defaults.channels;
  const range = options.range ?? defaults.range;
  const fit = options.fit ?? defaults.fit;
  // The defaults are in RGB order; options are in the model's channel order.
  const inOrder = (v: PerChannel): PerChannel => channels === "bgr" ? [v[2], v[1], v[0]] : v;
  const mean = perChannel(path, "mean", options.mean) ?? inOrder(defaults.mean);
  const std = perChannel(path, "std", options.std) ?? inOrder(defaults.std);
  if (std.some((s) => s === 0)) misfit(`--std ${std.join(",")} divides by zero`);
  const unit = range === "0-1" ? 1 / 255 : 1;
  const scale = std.map((s) => unit / s) as unknown as PerChannel;
  const offset = mean.map((m, i) => -m / std[i]) as unknown as PerChannel;
  const frameFit = fit === "letterbox"
    ? { kind: "letterbox" as const, width, height, pad: PAD }
    : { kind: fit, width, height };
  // Planar frames come as G, B, R planes; packed ones already in the model's channel order.
  const pixFmt = layout === "nchw" ? "gbrp" : channels === "rgb" ? "rgb24" : "bgr24";
  const planes: PlaneLayout | undefined = layout === "nchw"
    ? { order: channels === "rgb" ? [2, 0, 1] : [1, 0, 2], scale, offset }
    : undefined;
  const dims = layout === "nchw" ? [1, 3, height, width] : [1, height, width, 3];
  return {
    name,
    width,
    height,
    layout,
    dims,
    fit,
    frameSpec: { fit: frameFit, pixFmt },
    planes,
    toFloat: planes
      ? (data, out) => planesToFloat(data, planes, out)
      : (data, out) => packedToFloat(data, scale, offset, out),
    describe: {
      input: name,
      dims,
      layout,
      fit,
      ...(fit === "letterbox" ? { pad: PAD } : {}),
      channels,
      range,
      mean: [...mean],
      std: [...std],
      pixFmt,
    },
  };
}

function perChannel(path: string, flag: string, v: number[] | undefined): PerChannel | undefined {
  if (v === undefined) return undefined;
  if (v.length !== 3 || v.some((x) => !Number.isFinite(x))) {
    throw new TaskError(`${path}: --${flag} needs three numbers, got ${v.join(",")}`);
  }
  return [v[0], v[1], v[2]];
}

/** Packed pixels (`rgb24`/`bgr24`, already in channel order) to floats, channel by channel. */
function packedToFloat(
  data: Uint8Array,
  scale: PerChannel,
  offset: PerChannel,
  out: Float32Array = new Float32Array(data.length),
): Float32Array {
  for (let i = 0; i < data.length; i += 3) {
    out[i] = data[i] * scale[0] + offset[0];
    out[i + 1] = data[i + 1] * scale[1] + offset[1];
    out[i + 2] = data[i + 2] * scale[2] + offset[2];
  }
  return out;
}

/**
 * Runs `model` on one frame's bytes: on WebGPU the planes go up as bytes and a shader
 * normalises them; elsewhere `input.toFloat` fills `scratch`. Returns the outputs and when the
 * pre-processing ended (for the stage timings).
 */
export async function runOnFrame(
  model: Model,
  input: VisionInput,
  data: Uint8Array<ArrayBuffer>,
  scratch: Float32Array,
): Promise<{ outputs: Record<string, TensorData>; preEnd: number }> {
  if (model.runPlanes && input.planes) {
    const preEnd = performance.now();
    return { outputs: await model.runPlanes(input.name, data, input.dims, input.planes), preEnd };
  }
  input.toFloat(data, scratch);
  const preEnd = performance.now();
  return {
    outputs: await model.run({ [input.name]: { data: scratch, dims: input.dims } }),
    preEnd,
  };
}

/**
 * The outputs' dims, in `model.outputNames` order, as declared where that is fully numeric
 * (a dynamic batch counts as 1); otherwise from one run on a zero input, since many exports
 * leave dimensions symbolic. Throws a {@linkcode TaskError} when that run fails.
 */
export async function outputDims(model: Model, input: VisionInput): Promise<number[][]> {
  const declared = knownDims(model.outputShapes.map((s) => s ?? []));
  if (declared) return declared;
  let out: Record<string, TensorData>;
  try {
    const zeros = new Float32Array(input.dims.reduce((a, b) => a * b, 1));
    out = await model.run({ [input.name]: { data: zeros, dims: input.dims } });
  } catch (e) {
    throw new TaskError(
      `${model.path}: cannot run on a [${input.dims.join(",")}] image (${firstLine(e)})`,
    );
  }
  return model.outputNames.map((n) => [...out[n].dims]);
}

/**
 * Declared output shapes as numbers, a symbolic first (batch) dimension read as 1; undefined
 * when any other dimension is symbolic (or a shape is missing), so the shapes are only known
 * from a run.
 */
export function knownDims(
  shapes: readonly (readonly (number | string)[])[],
): number[][] | undefined {
  const out: number[][] = [];
  for (const shape of shapes) {
    if (shape.length === 0) return undefined;
    const dims = shape.map((d, i) => (typeof d === "number" ? d : i === 0 ? 1 : NaN));
    if (dims.some((d) => !Number.isFinite(d))) return undefined;
    out.push(dims);
  }
  return out;
}

/**
 * Maps a box in model-input pixels back to the `srcWidth`×`srcHeight` source frame for the
 * input's fit (stretch, top-left letterbox, centre crop), clamps it into the frame and rounds to
 * one decimal, as detect does.
 *
 * @example
 * ```ts
 * import { toSourceBox } from "./vision_input.ts";
 * // A 320×240 stretch of a 640×360 frame.
 * console.log(toSourceBox([32, 24, 64, 48], "stretch", 320, 240, 640, 360)); // [64, 36, 128, 72]
 * ```
 */
export function toSourceBox(
  box: readonly [number, number, number, number],
  fit: NonNullable<PreprocessOptions["fit"]>,
  width: number,
  height: number,
  srcWidth: number,
  srcHeight: number,
): [number, number, number, number] {
  let sx: number, sy: number, ox = 0, oy = 0;
  if (fit === "stretch") {
    sx = width / srcWidth;
    sy = height / srcHeight;
  } else if (fit === "letterbox") {
    sx = sy = Math.min(width / srcWidth, height / srcHeight);
  } else {
    // As `outputGeometry` scales before ffmpeg's crop takes the centre (rounded down).
    sx = sy = Math.max(width / srcWidth, height / srcHeight);
    ox = Math.floor((Math.max(width, Math.round(srcWidth * sx)) - width) / 2);
    oy = Math.floor((Math.max(height, Math.round(srcHeight * sy)) - height) / 2);
  }
  const map = (v: number, o: number, s: number, max: number) =>
    Math.round(Math.min(max, Math.max(0, (v + o) / s)) * 10) / 10;
  return [
    map(box[0], ox, sx, srcWidth),
    map(box[1], oy, sy, srcHeight),
    map(box[2], ox, sx, srcWidth),
    map(box[3], oy, sy, srcHeight),
  ];
}

/** A number to 6 significant digits, as embed and tensor write them. */
export function sig6(v: number): number {
  return Number(v.toPrecision(6));
}
