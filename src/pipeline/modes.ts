/**
 * The ways vx runs its one scheduler, with their defaults in one table: `fast` (one file, lowest
 * latency), its two baselines (`fast --decode-first`, `fast --sequential`), `bulk` (many files,
 * most work per core) and the resident `engine`. {@linkcode createScheduler} is the only place a
 * {@linkcode Scheduler} is built; a mode is data, not a loop of its own.
 *
 * @module
 */

import type { BackendChoice } from "../infer/backend.ts";
import { TASKS } from "../tasks/registry.ts";
import type { TaskOptions } from "../tasks/task.ts";
import { Scheduler } from "./scheduler.ts";
import type { Tracer } from "./tracer.ts";
import type { CheckedFiles } from "../input/checked_file.ts";
import type { Faults } from "./faults.ts";

/** A way of running the scheduler; also the trace's `mode`. */
export type Mode =
  | "fast"
  | "fast --decode-first"
  | "fast --sequential"
  | "bulk"
  | "engine"
  | "engine --sequential";

/** What a caller may set over its mode's defaults. */
export interface PoolOptions {
  decoders?: number;
  inferrers?: number;
  threads?: number;
  backend?: BackendChoice;
  maxInflightFrames?: number;
  maxInflightBytes?: number;
  tracer?: Tracer;
  onNotice?: (line: string) => void;
  /** Faults the tests inject (`faults.ts`). */
  faults?: Faults;
  /** The task's files the caller checked (see `SchedulerOptions.checked`). */
  checked?: CheckedFiles;
}

/**
 * Inference workers for `fast` and the engine unless told: one per core, each single-threaded.
 * Inference costs about five times a keyframe's decode (YOLOX-Nano 78 ms against ~15 ms), and
 * one-thread workers scale better than one session with several threads (bench/run.ts).
 */
export function fastInferrers(cores = navigator.hardwareConcurrency ?? 1): number {
  return Math.max(1, cores);
}

/**
 * Inference threads per worker for `fast` and the resident engine (`vx serve`, the daemon)
 * unless told, for a request alone and under load alike: one. Two-thread sessions take longer
 * to create, and lose more when other processes hold the cores than they gain when the cores
 * are free; `--threads 2` is there for a machine known to be idle (BENCHMARKS.md, "Threads per
 * inference session" and "Measurements behind the defaults").
 */
export const FAST_THREADS = 1;

/** Default bound on frames waiting for inference in `fast`: enough to hide decode jitter. */
export const DEFAULT_INFLIGHT_FRAMES = 8;
/** Default bound on bytes waiting for inference in `fast`. */
export const DEFAULT_INFLIGHT_BYTES = 64 << 20;
/** The default bound on decoded frames waiting for inference across a `bulk` or engine pool. */
export const DEFAULT_BULK_INFLIGHT_BYTES = 128 << 20;

/** The in-flight bound of the non-streaming baselines: every keyframe of the file waits. */
const UNBOUNDED_FRAMES = 1 << 30;
const UNBOUNDED_BYTES = 2 ** 31 - 1;

/**
 * The pool sized to the machine. Measured on 2 cores (`bench/bulk.ts`, BENCHMARKS.md): inference
 * dominates, and two single-threaded inference sessions give more frames per second than one
 * session with two threads (`bench/threads.ts`: 188 against 537 ms a frame on the shared
 * machine, 72.5 against 79 on a quiet one), while one decode worker keeps them fed. `jobs` sets the number of
 * inference workers (and decode workers alongside, at most 2 of those).
 */
export function defaultPool(
  cores = navigator.hardwareConcurrency ?? 2,
  jobs?: number,
): { decoders: number; inferrers: number; threads: number } {
  const inferrers = Math.max(1, jobs ?? cores);
  const decoders = Math.max(1, Math.min(2, Math.ceil(inferrers / 2)));
  const threads = Math.max(1, Math.floor(cores / inferrers));
  return { decoders, inferrers, threads };
}

/** One mode's defaults, from the task and the workers asked for. */
interface ModeDefaults {
  inferrers(task: TaskOptions, asked?: number): number;
  decoders(inferrers: number, task: TaskOptions): number;
  threads(inferrers: number): number;
  maxInflightFrames(inferrers: number): number;
  maxInflightBytes: number;
  /** A file's frames wait until it is decoded whole (see `SchedulerOptions.decodeFirst`). */
  decodeFirst?: boolean;
  /** Decoding waits for the model: the frame spec comes from the loaded session. */
  modelFirst?: boolean;
  /** Each session runs once on a blank frame when created. */
  warm?: boolean;
  /** The inference workers after the first set up once it has run a keyframe. */
  afterFirstRun?: boolean;
}

/** A task that runs no model needs one inference worker; more take start-up from the decoder. */
const fastWorkers = (task: TaskOptions, asked?: number) =>
  asked ?? (TASKS[task.task].runsModel === false ? 1 : fastInferrers());

/**
 * Decode workers for `fast`: two (at most the cores) for a task that runs no model, whose run is
 * all decoding, sharing the file's key packets (see `KeyClaims`); one beside a model, whose
 * inference workers want the cores (a second decoder there gained nothing: BENCHMARKS.md,
 * "decoder").
 */
export function fastDecoders(
  task: TaskOptions,
  cores = navigator.hardwareConcurrency ?? 1,
): number {
  return TASKS[task.task].runsModel === false ? Math.max(1, Math.min(2, cores)) : 1;
}

/**
 * `fast`'s second inference worker sets up once the first has run a keyframe, not once it has
 * created its session: that first run compiles onnxruntime's kernels lazily, and the second
 * worker's session then runs on them, rather than both running their first keyframes on V8's
 * baseline code at once (BENCHMARKS.md, "Measurements behind the defaults"). `bulk` keeps setting
 * up at once: over many files, a worker started later is lost throughput.
 */
const FAST_AFTER_FIRST_RUN = true;

const FAST: ModeDefaults = {
  inferrers: fastWorkers,
  decoders: (_n, task) => fastDecoders(task),
  threads: () => FAST_THREADS,
  maxInflightFrames: (n) => Math.max(DEFAULT_INFLIGHT_FRAMES, 4 * n),
  maxInflightBytes: DEFAULT_INFLIGHT_BYTES,
  afterFirstRun: FAST_AFTER_FIRST_RUN,
};

/** Every mode's defaults. */
const MODES: Record<Mode, ModeDefaults> = {
  fast: FAST,
  // What overlap alone buys: the pool, but every keyframe decoded before any is inferred.
  "fast --decode-first": {
    ...FAST,
    maxInflightFrames: () => UNBOUNDED_FRAMES,
    maxInflightBytes: UNBOUNDED_BYTES,
    decodeFirst: true,
  },
  // The seed's baseline: one decoder, one inference worker; the model is loaded, then every
  // keyframe decoded, then every keyframe inferred.
  "fast --sequential": {
    ...FAST,
    inferrers: () => 1,
    decoders: () => 1,
    maxInflightFrames: () => UNBOUNDED_FRAMES,
    maxInflightBytes: UNBOUNDED_BYTES,
    decodeFirst: true,
    modelFirst: true,
  },
  bulk: {
    inferrers: (_task, asked) => asked ?? defaultPool().inferrers,
    decoders: (n) => defaultPool(undefined, n).decoders,
    threads: (n) => defaultPool(undefined, n).threads,
    maxInflightFrames: (n) => Math.max(4, 4 * n),
    maxInflightBytes: DEFAULT_BULK_INFLIGHT_BYTES,
  },
  engine: {
    inferrers: (_task, asked) => asked ?? fastInferrers(),
    decoders: (n) => defaultPool(undefined, n).decoders,
    threads: () => FAST_THREADS,
    maxInflightFrames: (n) => Math.max(8, 4 * n),
    maxInflightBytes: DEFAULT_BULK_INFLIGHT_BYTES,
    warm: true,
  },
  // The warm engine the sequential way: one decoder, one inference worker, every keyframe of a
  // file decoded before any is inferred. Start-up paid, what streaming buys shows (bench/run.ts).
  "engine --sequential": {
    inferrers: () => 1,
    decoders: () => 1,
    threads: () => FAST_THREADS,
    maxInflightFrames: () => UNBOUNDED_FRAMES,
    maxInflightBytes: UNBOUNDED_BYTES,
    decodeFirst: true,
    warm: true,
  },
};

/**
 * Builds the scheduler for `mode` and `task`: the mode's defaults, where `options` does not set
 * them. The only place a {@linkcode Scheduler} is made.
 *
 * @example
 * ```ts
 * import { createScheduler } from "./modes.ts";
 * const scheduler = createScheduler("bulk", { task: "keyframes" }, { inferrers: 2 });
 * ```
 */
export function createScheduler(mode: Mode, task: TaskOptions, options: PoolOptions): Scheduler {
  const m = MODES[mode];
  const inferrers = m.inferrers(task, options.inferrers);
  return new Scheduler({
    task,
    decoders: options.decoders ?? m.decoders(inferrers, task),
    inferrers,
    threads: options.threads ?? m.threads(inferrers),
    backend: options.backend,
    maxInflightFrames: options.maxInflightFrames ?? m.maxInflightFrames(inferrers),
    maxInflightBytes: options.maxInflightBytes ?? m.maxInflightBytes,
    decodeFirst: m.decodeFirst,
    modelFirst: m.modelFirst,
    warm: m.warm,
    afterFirstRun: m.afterFirstRun,
    mode,
    tracer: options.tracer,
    onNotice: options.onNotice,
    faults: options.faults,
    checked: options.checked,
  });
}
