/**
 * The task interface: what a task asks of the decoder, and how it turns a decoded frame into
 * results. A task owns its pre- and post-processing; the engine that runs its model does not
 * know which task it runs.
 *
 * @module
 */

import type { Engine } from "../infer/engine.ts";

/** How the decoder should fit the source frame into the task's input. */
export type FrameFit =
  /** Scale to fit inside `width`×`height` keeping aspect, pad right/bottom with `pad`. */
  | { kind: "letterbox"; width: number; height: number; pad: number }
  /** Scale to exactly `width`×`height`, ignoring aspect. */
  | { kind: "stretch"; width: number; height: number }
  /** Keep aspect; scale down so the longer side is at most `maxSide` (never up). */
  | { kind: "contain"; maxSide: number };

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

/** A result of any task. */
export type TaskResult = Detection | TextLine;

/** Options that select and configure a task, as given on the command line. */
export interface TaskOptions {
  task: TaskName;
  /** Model path (detect); OCR uses the embedded PP-OCRv4 models unless given. */
  model?: string;
  /** `coco` or a path to a text file with one label a line. */
  labels?: string;
  /** Minimum score to report. */
  score?: number;
}

/** The names of the tasks in the registry. */
export type TaskName = "ocr" | "detect" | "keyframes";

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
}

/** Milliseconds spent in each stage of one task run, filled in by the task. */
export interface StageTimings {
  pre: number;
  infer: number;
  post: number;
}

/** Creates a task. Tasks that run models get their sessions from `engine`. */
export type TaskFactory = (options: TaskOptions, engine: Engine) => Promise<Task>;

/**
 * A task as the registry knows it: how to create it, and, where that can be known without
 * creating a model session, the frames it will want — so decoding can start while the session
 * is still being created. `frameSpec` resolves to undefined when it cannot tell (the task's
 * creation then reports what is wrong).
 */
export interface TaskDefinition {
  create: TaskFactory;
  frameSpec?: (options: TaskOptions) => Promise<FrameSpec | undefined>;
}

/** Error a user can cause with a task's inputs: bad model, bad labels. */
export class TaskError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "TaskError";
  }
}
