/**
 * The task interface: what a task asks of the decoder, and how it turns a decoded frame into
 * results. A task owns its pre- and post-processing; the engine that runs its model does not
 * know which task it runs.
 *
 * @module
 */

import type { Runtime } from "../infer/runtime.ts";
import type { OptimisedUse } from "../infer/optimised.ts";
import type { TaskName } from "./registry.ts";

/** How the decoder should fit the source frame into the task's input. */
export type FrameFit =
  /** Scale to fit inside `width`×`height` keeping aspect, pad right/bottom with `pad`. */
  | { kind: "letterbox"; width: number; height: number; pad: number }
  /**
   * Scale to exactly `width`×`height`, ignoring aspect; `nearest` takes the source pixel nearest
   * each output one, unfiltered, for a task that reads no pixels (`keyframes`).
   */
  | { kind: "stretch"; width: number; height: number; nearest?: boolean }
  /** Keep aspect; scale down so the longer side is at most `maxSide` (never up). */
  | { kind: "contain"; maxSide: number }
  /** Scale to cover `width`×`height` keeping aspect, then cut the centre out. */
  | { kind: "crop"; width: number; height: number };

/**
 * What a task wants from the decoder. Pixel formats are ffmpeg's names: `rgb24` and `bgr24`
 * are packed, `gbrp` is planar in G, B, R plane order.
 */
export interface FrameSpec {
  fit: FrameFit;
  pixFmt: "rgb24" | "bgr24" | "gbrp";
}

/** One decoded keyframe, already scaled by ffmpeg to the task's {@linkcode FrameSpec}. */
export interface Frame {
  /** Keyframe index within the file, from 0. */
  index: number;
  /** Presentation time in seconds. */
  pts: number;
  /** Size of the decoded source frame. */
  srcWidth: number;
  srcHeight: number;
  /** Size of `data` as laid out by the spec's pixel format. */
  width: number;
  height: number;
  /** Pixels, `width * height * 3` bytes. */
  data: Uint8Array<ArrayBuffer>;
}

/** An object found by a detector; `box` is `[x1, y1, x2, y2]` in source pixels. */
export interface Detection {
  label: string;
  score: number;
  box: [number, number, number, number];
}

/** A line of text read by OCR; `box` is `[x1, y1, x2, y2]` in source pixels. */
export interface TextLine {
  text: string;
  score: number;
  box: [number, number, number, number];
}

/** A class an image classifier chose, best first; `score` is a probability. */
export interface Classification {
  label: string;
  score: number;
}

/** One vector per keyframe from an image embedder (L2-normalised unless `raw`). */
export interface Embedding {
  embedding: number[];
}

/** One output of a model vx does not interpret: its name, dims and (maybe capped) values. */
export interface TensorOutput {
  name: string;
  dims: number[];
  /** Row-major values, at most `maxValues` of them; fewer than `dims` hold when capped. */
  values: number[];
}

/** A result of any task. */
export type TaskResult = Detection | TextLine | Classification | Embedding | TensorOutput;

/** How the picture becomes the model's input; see `src/tasks/vision_input.ts`. */
export interface PreprocessOptions {
  /** Model input size `[width, height]`; needed when the model's is dynamic. */
  size?: [number, number];
  /** How the keyframe fits that size. */
  fit?: "letterbox" | "stretch" | "crop";
  /** Per input channel, in the model's channel order, in the units of `range`. */
  mean?: number[];
  std?: number[];
  channels?: "rgb" | "bgr";
  /** What a pixel's 0–255 byte becomes before mean and std: `0-1` divides by 255. */
  range?: "0-1" | "0-255";
  layout?: "nchw" | "nhwc";
}

/** Options that select and configure a task, as given on the command line. */
export interface TaskOptions extends PreprocessOptions {
  task: TaskName;
  /** Model path (detect, classify, …); OCR uses the embedded PP-OCRv4 models unless given. */
  model?: string;
  /** `coco` (detect), `imagenet` (classify) or a path to a text file with one label a line. */
  labels?: string;
  /** Minimum score to report. */
  score?: number;
  /** classify: how many classes to report (default 5). */
  top?: number;
  /** embed: keep the model's values instead of L2-normalising them. */
  raw?: boolean;
  /** tensor: at most this many values per output. */
  maxValues?: number;
}

/** The options of how a keyframe becomes a vision model's input. */
const VISION_OPTION_KEYS = ["size", "fit", "mean", "std", "channels", "range", "layout"] as const;

/** Every option of {@linkcode TaskOptions}, so callers can pick them out of wider options. */
export const TASK_OPTION_KEYS = [
  "model",
  "labels",
  "score",
  "top",
  "raw",
  "maxValues",
  ...VISION_OPTION_KEYS,
] as const satisfies readonly (keyof TaskOptions)[];

/**
 * The task options among `options` (the library's options hold others too), with the task
 * defaulting to `ocr`. Options left undefined are left out, so the result posts cleanly to a
 * worker and compares by value.
 *
 * @example
 * ```ts
 * import { pickTaskOptions } from "./task.ts";
 * console.log(pickTaskOptions({ task: "classify", top: 3, threads: 2 } as never));
 * // { task: "classify", top: 3 }
 * ```
 */
export function pickTaskOptions(options: Partial<TaskOptions>): TaskOptions {
  const picked: TaskOptions = { task: options.task ?? "ocr" };
  for (const key of TASK_OPTION_KEYS) {
    if (options[key] !== undefined) {
      (picked as unknown as Record<string, unknown>)[key] = options[key];
    }
  }
  return picked;
}

/** The names of the tasks in the registry (`registry.ts`). */
export type { TaskName } from "./registry.ts";

/**
 * The flags only some tasks read (`fast`, `bulk`, `serve` and the library's options of the same
 * names). A task's definition lists the ones it reads; any other, given with it, is refused.
 */
export type TaskFlag = (typeof TASK_OPTION_KEYS)[number] | "threads" | "draw";

/** The flags of the tasks that run a vision model of the user's (`vision_task.ts`). */
export const VISION_FLAGS: readonly TaskFlag[] = ["model", "threads", ...VISION_OPTION_KEYS];

/** A loaded task, ready to run on frames. */
export interface Task {
  readonly name: TaskName;
  readonly frameSpec: FrameSpec;
  /** What the task loaded, for the debug summary: model paths and input shapes. */
  readonly models: ModelInfo[];
  /** Runs the task on one frame. */
  run(frame: Frame, timings?: StageTimings): Promise<TaskResult[]>;
}

/** A model a task loaded. */
export interface ModelInfo {
  path: string;
  inputShape: readonly (number | string)[];
  /** How keyframes become its input, for `--debug`: sizes, fit, channels, mean, std, … */
  preprocess?: Record<string, unknown>;
  /** The `.ort` its session was made from, or why the `.onnx`, where it has one (OCR). */
  optimised?: OptimisedUse;
}

/** Milliseconds spent in each stage of one task run, filled in by the task. */
export interface StageTimings {
  pre: number;
  infer: number;
  post: number;
  /** The model input's size, `416x256`, where the task chooses it per frame (detect). */
  input?: string;
  /** Why the task changed how it runs, on the frame where it did (for `--debug`). */
  note?: string;
}

/**
 * How a task reads the files its options name (a model's header, a label file): by default
 * `Deno.readFile`; `vx serve` passes one that reads a file it checked from that file only
 * (`src/input/checked_file.ts`).
 */
export type ReadFile = (path: string) => Promise<Uint8Array>;

/**
 * Creates a task. Tasks that run models get their sessions from `engine`, and read other files
 * their options name with `read`.
 */
export type TaskFactory = (options: TaskOptions, engine: Runtime, read?: ReadFile) => Promise<Task>;

/**
 * A task as the registry knows it: how to create it, and, where that can be known without
 * creating a model session, the frames it will want — so decoding can start while the session
 * is still being created. `frameSpec` resolves to undefined when it cannot tell (the task's
 * creation then reports what is wrong).
 */
export interface TaskDefinition {
  create: TaskFactory;
  /**
   * `false` for a task that runs no model: one inference worker is enough for it, and more would
   * only take start-up time from the decoder (bench/keyframes.ts).
   */
  runsModel?: false;
  /** It runs the user's model, which `--model` must name (a task with none of its own). */
  needsModel?: true;
  /** The task-specific flags it reads; `draw` among them when its results can be drawn. */
  flags: readonly TaskFlag[];
  /** The label sets vx has built in for it, by the name `--labels` takes. */
  builtInLabels?: readonly string[];
  frameSpec?: (options: TaskOptions, read?: ReadFile) => Promise<FrameSpec | undefined>;
}

/** Error a user can cause with a task's inputs; defined below both tasks and inference. */
export { TaskError } from "../errors.ts";
