/**
 * What the pipeline reports to `--debug`. The pipeline calls these through optional chaining,
 * so without a tracer nothing is computed or kept.
 *
 * A lane is a thread's row in the trace, named by a string: {@linkcode MAIN_LANE}, one
 * {@linkcode decodeLane} and one {@linkcode inferLane} per worker, and {@linkcode TRANSFER_LANE}
 * for frames on their way from a decoder to an inference worker. Spans on one lane should nest
 * or follow each other; a recorder moves any that overlap partially to a row of their own.
 *
 * @module
 */

import type { DecoderFacts } from "../decode/decode_messages.ts";
import type { InferTiming } from "../tasks/infer_messages.ts";
import type { ModelInfo } from "../tasks/task.ts";
import type { GateLevels } from "./gate.ts";

/** Span names. The per-keyframe stages and the start-up stages are in {@linkcode STAGES}. */
export const SPAN = {
  /** One `extract` call, on the main lane. */
  run: "run",
  /** Loading the decoder core in a decode worker. */
  loadCore: "load decoder core",
  /** A task's whole set-up in an inference worker (model sessions and warm-up). */
  setUpTask: "set up task",
  /** One model session's creation, inside `set up task`. */
  createSession: "create model session",
  /** One file in a decode worker, from opening it to its last keyframe. */
  decodeFile: "decode file",
  /** The demuxer's look at a file before decoding it. */
  probe: "probe",
  /**
   * From the previous keyframe leaving ffmpeg to this one reaching its filters. Reading and
   * demuxing interleave with decoding inside one ffmpeg call, so they are one span; its `args`
   * say how many bytes were read and how long the reads took.
   */
  decode: "read/demux+decode",
  /** ffmpeg's filters: scaling, letterboxing, pixel format. */
  scale: "scale+format",
  /** A decoder blocked because the in-flight bound was reached. */
  wait: "backpressure wait",
  /**
   * A frame posted by a decoder until its inference worker's handler ran, via the main thread;
   * `args` split it into the hop to main (with `--sequential`, the hold there) and the wait for
   * the worker, whose handler runs only between frames.
   */
  transfer: "transfer",
  /** The task's pre-processing in the inference worker. */
  pre: "pre-process",
  /** Running the model(s). */
  infer: "inference",
  /** The task's post-processing. */
  post: "post-process",
  /** A record handed to the caller until the caller asks for the next one. */
  output: "output",
} as const;

/** The stages whose total time the debug summary reports, in pipeline order. */
export const STAGES: readonly string[] = [
  SPAN.loadCore,
  SPAN.createSession,
  SPAN.probe,
  SPAN.decode,
  SPAN.scale,
  SPAN.wait,
  SPAN.transfer,
  SPAN.pre,
  SPAN.infer,
  SPAN.post,
  SPAN.output,
];

/** The main thread's lane. */
export const MAIN_LANE = "main";
/** The lane of frames between workers. */
export const TRANSFER_LANE = "transfer";

/** The lane of decode worker `n` (from 0). */
export function decodeLane(n: number): string {
  return `decode-${n}`;
}

/** The lane of inference worker `n` (from 0). */
export function inferLane(n: number): string {
  return `infer-${n}`;
}

/** Facts about a run for the debug summary; each call may give some of them. */
export interface RunFacts {
  /** How the run was made: `fast`, `fast --sequential`, `bulk`. */
  mode: string;
  /** The task, and where it came from: `--task`, the model's outputs, or the default (ocr). */
  task: string;
  taskFrom: "flag" | "model" | "default";
  /** The inference backend, e.g. `wasm`. */
  backend: string;
  /** The WebGPU adapter's name, when the backend is `webgpu`. */
  adapter: string;
  /** Threads per inference session. */
  threads: number;
  /** Threads of inference worker sessions, by the worker's lane; merged over calls. */
  workerThreads: Record<string, number>;
  /** The models loaded, with their input shapes. */
  models: ModelInfo[];
  /** The decoder core the decode workers loaded. */
  decoder: DecoderFacts;
  /**
   * The pool's workers. A run that ends while a worker still sets up leaves no span on its lane,
   * so the summary counts these rather than lanes.
   */
  decodeWorkers: number;
  inferenceWorkers: number;
  /** The in-flight bound. */
  maxInflightFrames: number;
  maxInflightBytes: number;
}

/**
 * Receives the pipeline's spans (times on the shared clock of `src/clock.ts`). `memory` and
 * `fallback` are optional so that a test's tracer can listen to only what it checks.
 */
export interface Tracer {
  /** A completed span of work on a lane. */
  span(name: string, lane: string, start: number, end: number, args: Record<string, unknown>): void;
  /** The in-flight gate's levels at this moment. */
  counter(name: string, levels: GateLevels): void;
  /** Facts for the summary: backend, threads, models, core. */
  meta(facts: Partial<RunFacts>): void;
  /** One keyframe's inference, split into its stages, on `lane` (default `infer-0`). */
  inferred(file: string, index: number, pts: number, timing: InferTiming, lane?: string): void;
  /** The process's resident memory at this moment, in bytes. */
  memory?(rss: number): void;
  /** vx fell back to another way, or retried, and why. */
  fallback?(what: string, reason: string): void;
}
