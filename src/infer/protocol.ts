/**
 * The message protocol between the main thread and an inference worker. Frame pixels cross it
 * as transferred buffers, never as copies.
 *
 * @module
 */

import type { Frame, FrameSpec, ModelInfo, TaskOptions, TaskResult } from "../tasks/task.ts";

/** Main thread → inference worker. */
export type InferCommand =
  | { type: "init"; task: TaskOptions; threads?: number }
  | { type: "frame"; seq: number; frame: Frame; sent: number };

/** Per-frame timing, on the shared clock (`src/clock.ts`), for the debug trace. */
export interface InferTiming {
  received: number;
  start: number;
  pre: number;
  infer: number;
  post: number;
  end: number;
}

/** Inference worker → main thread. */
export type InferEvent =
  | {
    type: "ready";
    frameSpec: FrameSpec;
    models: ModelInfo[];
    backend: string;
    threads: number;
    loadStart: number;
    loadEnd: number;
  }
  | { type: "result"; seq: number; results: TaskResult[]; timing: InferTiming }
  /** `user`: caused by the user's input (bad model, labels), else an internal failure. */
  | { type: "error"; seq: number | null; message: string; user: boolean };
