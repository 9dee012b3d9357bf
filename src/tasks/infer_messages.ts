/**
 * The message protocol between the main thread and an inference worker, which runs a task (its
 * pre- and post-processing) on the task's models. Frame pixels cross it as transferred buffers,
 * never as copies.
 *
 * @module
 */

import type { Frame, FrameSpec, ModelInfo, TaskOptions, TaskResult } from "./task.ts";
import type { Backend, BackendChoice } from "../infer/backend.ts";
import type { SessionLoad } from "../infer/runtime.ts";

/** Main thread → inference worker. */
export type InferCommand =
  | {
    type: "init";
    task: TaskOptions;
    threads?: number;
    backend?: BackendChoice;
    /** Run the task once on a blank frame after set-up, so the first real one is not slowed. */
    warm?: boolean;
    /** onnxruntime-web's wasm as another worker compiled it (see `ort_wasm.ts`). */
    wasmModule?: WebAssembly.Module;
    /**
     * The files of `task` the main thread checked (`vx serve --models`: its model, its label
     * file), by real path, with the device and inode each had: the worker reads each from that
     * file only, from the handle it compared (`checked_file.ts`), and fails to set up on another.
     */
    checked?: Readonly<Record<string, { dev: number; ino: number }>>;
  }
  | { type: "frame"; seq: number; frame: Frame; sent: number }
  /** Tests only: destroy the WebGPU device, as a GPU reset would (after set-up, in order). */
  | { type: "lose-gpu" }
  /**
   * The run is over: skip frames still queued, free the sessions, wait for the GPU to finish,
   * then answer `parked`. The worker may be given a new `init` after (see `workers.ts`).
   */
  | { type: "park" };

/**
 * Per-frame timing for the debug trace: `sent` (main thread forwarded the frame), `received`
 * (the worker's handler ran: later than delivery while the worker is busy with a frame before),
 * `start` and `end` of the task on the shared clock (`src/clock.ts`); `pre`, `infer`, `post`:
 * ms in each stage.
 */
export interface InferTiming {
  sent: number;
  received: number;
  start: number;
  pre: number;
  infer: number;
  post: number;
  end: number;
  /** The model input's size, where the task chose it for this frame (detect: `416x256`). */
  input?: string;
  /** Why the task changed how it runs, on the frame where it did. */
  note?: string;
}

/** Inference worker → main thread. */
export type InferEvent =
  | {
    type: "ready";
    frameSpec: FrameSpec;
    models: ModelInfo[];
    /** The backend the task's models run on. */
    backend: Backend;
    /** Why `auto` (or `webgpu`) settled on wasm; absent when it did not. */
    fallbackReason?: string;
    /** `auto` chose wasm for want of a hardware GPU: said in the trace only. */
    fallbackChosen?: boolean;
    /** Said once on stderr although nothing fell back (WebGPU on a software adapter). */
    warning?: string;
    /** The WebGPU adapter's name, on `webgpu`. */
    adapter?: string;
    /** Whether the worker loaded a GPU driver (asked for an adapter), on any backend. */
    touchedGpu?: boolean;
    threads: number;
    /**
     * Whether the worker compiled onnxruntime-web's wasm itself (`own`) or was given the module
     * (`shared`); absent when it made no wasm session.
     */
    ortWasm?: "own" | "shared";
    /** That module, for the other workers (see `ort_wasm.ts`). */
    wasmModule?: WebAssembly.Module;
    /** The task's whole set-up, and within it each model session's creation. */
    loadStart: number;
    loadEnd: number;
    sessions: SessionLoad[];
  }
  | { type: "result"; seq: number; results: TaskResult[]; timing: InferTiming }
  /** After set-up: a WebGPU run failed and inference moved to `backend` (wasm) for good. */
  | { type: "fallback"; backend: Backend; fallbackReason: string }
  /**
   * Answer to `park`: nothing runs in the worker any more; a later run may `init` it again
   * (on wasm, if its GPU device was lost).
   */
  | { type: "parked" }
  /** `user`: caused by the user's input (bad model, labels), else an internal failure. */
  | { type: "error"; seq: number | null; message: string; user: boolean };
