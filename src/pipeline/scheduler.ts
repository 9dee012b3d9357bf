/**
 * The one scheduler of `fast`, `bulk` and the resident engine: a pool of decode workers (each
 * one decoder core, loaded once) takes files from one queue; decoded keyframes wait in one
 * queue, in the order they were decoded, for the first inference worker with room (each
 * worker's model sessions created once; a worker holds at most
 * {@linkcode FRAMES_PER_INFERRER}). One in-flight gate bounds the decoded frames waiting for
 * inference across the pool, so memory does not grow with the number of files or callers.
 *
 * It is three parts: the workers' life is the pool's (`pool.ts`: spawning, the staggered
 * set-up, replacing a crashed or hung worker); what each event does is the dispatcher's
 * (`dispatcher.ts`: queues, the gate, the watchdog, cancellation, settling files); this module
 * is the loop between them and the callers' side (`run`, `idle`, `close`). Records leave per
 * file in pts order, streaming (`fast`) or a file at a time with its status (`bulk`): that order
 * is `file_order.ts`'s. Several callers may run files through one scheduler at once; each gets
 * exactly its own records. It is built in one place, `modes.ts`, for each mode.
 *
 * @module
 */

import { now } from "../clock.ts";
import type { BackendChoice } from "../infer/backend.ts";
import type { VxRecord } from "../records.ts";
import type { Call, CallOptions } from "./file_order.ts";
import type { ModelInfo, TaskOptions } from "../tasks/task.ts";
import { TASKS } from "../tasks/registry.ts";
import { type CheckedFiles, checkedReader } from "../input/checked_file.ts";
import { Channel } from "./channel.ts";
import { InflightGate } from "./gate.ts";
import { MAIN_LANE, SPAN, type Tracer } from "./tracer.ts";
import { Dispatcher, type SchedulerEvent } from "./dispatcher.ts";
import { WorkerPool } from "./pool.ts";
import type { Faults } from "./faults.ts";

export { FRAMES_PER_INFERRER, WATCHDOG_GRACE_MS } from "./dispatcher.ts";

/** What a scheduler runs and on what pool; fixed for its life. */
export interface SchedulerOptions {
  task: TaskOptions;
  decoders: number;
  inferrers: number;
  /** wasm threads per inference session. */
  threads: number;
  backend?: BackendChoice;
  maxInflightFrames: number;
  maxInflightBytes: number;
  /** The trace's name for the runs (`fast`, `bulk`, `engine`). */
  mode: string;
  tracer?: Tracer;
  onNotice?: (line: string) => void;
  /** Each model session runs once on a blank frame when created (the resident engine). */
  warm?: boolean;
  /**
   * The inference workers after the first set up once it has run a keyframe, not once it is
   * ready: its first run compiles the kernels they then share (see `modes.ts`, `fast`).
   */
  afterFirstRun?: boolean;
  /**
   * A file's frames wait until it is decoded whole, then go to the pool: `fast --decode-first`,
   * the bench's measure of what overlapping decoding with inference buys. The in-flight bound
   * must then hold every keyframe of a file, or decoding would wait for room that never frees.
   */
  decodeFirst?: boolean;
  /**
   * Decoding waits for the first model session, whose frame spec it then uses, rather than
   * starting at once where the task can tell its frames from the model file's header: the
   * sequential baseline's order (model, then decode, then infer).
   */
  modelFirst?: boolean;
  /** Faults the tests inject (`faults.ts`). */
  faults?: Faults;
  /**
   * The task's files (model, label file) the caller checked, by real path, with their device
   * and inode: the task reads each from that file only (`vx serve --models`; see `InferCommand`
   * init).
   */
  checked?: CheckedFiles;
}

export type { BulkProgress, CallOptions } from "./file_order.ts";

/** What the scheduler's workers did, for tests and the engine's callers. */
export interface SchedulerStats {
  /** Model sessions created, over all inference workers (each once, when it starts). */
  sessionsCreated: number;
  /** decoder cores loaded. */
  coresLoaded: number;
  /** Compilations of onnxruntime-web's wasm: one per inference worker that could not share. */
  wasmCompiles: number;
  /** Frames now waiting for inference, and their bytes. */
  inflightFrames: number;
  inflightBytes: number;
}

/**
 * A pool of decode and inference workers with one queue of files, one in-flight gate and one
 * event loop. Workers start with the first run and serve every run until {@linkcode close}.
 *
 * @example
 * ```ts
 * import { Scheduler } from "./scheduler.ts";
 * const s = new Scheduler({ task: { task: "keyframes" }, decoders: 1, inferrers: 1, threads: 1,
 *   maxInflightFrames: 8, maxInflightBytes: 64 << 20, mode: "bulk" });
 * for await (const r of s.run(["a.mp4"], { streaming: true, timeoutMs: 60_000,
 *   jpegPrefix: () => "a" })) console.log(r);
 * await s.close();
 * ```
 */
export class Scheduler {
  readonly #o: SchedulerOptions;
  readonly #inbox = new Channel<SchedulerEvent>();
  readonly #gate: InflightGate;
  #loop: Promise<void> | undefined;
  #failure: unknown;
  #closed = false;
  readonly #idle: (() => void)[] = [];
  /** The calls whose iteration has not ended, and whether the loop has. */
  readonly #open = new Set<Call>();
  #ended = false;
  readonly #stats: SchedulerStats = {
    sessionsCreated: 0,
    coresLoaded: 0,
    wasmCompiles: 0,
    inflightFrames: 0,
    inflightBytes: 0,
  };
  /** Set once every inference worker is ready (and warm, when asked). */
  #readyResolve!: (models: ModelInfo[]) => void;
  #readyReject!: (e: unknown) => void;
  /** Resolves with the task's models once every inference worker is set up. */
  readonly ready: Promise<ModelInfo[]>;

  constructor(options: SchedulerOptions) {
    this.#o = options;
    this.#gate = InflightGate.create(options.maxInflightFrames, options.maxInflightBytes);
    this.ready = new Promise((resolve, reject) => {
      this.#readyResolve = resolve;
      this.#readyReject = reject;
    });
    this.ready.catch(() => {}); // observed by run() and the engine, not here
  }

  /** Counts of what the workers did. */
  get stats(): SchedulerStats {
    const levels = this.#gate.levels();
    return { ...this.#stats, inflightFrames: levels.frames, inflightBytes: levels.bytes };
  }

  /** Starts the workers now rather than with the first run (the resident engine). */
  start(): void {
    this.#loop ??= this.#run().catch((e) => {
      this.#failure = e;
      this.#readyReject(e);
    }).then(() => {
      // Calls the loop did not take before it ended (it failed, or closed) are answered too.
      this.#ended = true;
      for (const c of this.#open) {
        c.out.push({ error: this.#failure ?? new Error("scheduler closed") });
      }
    });
  }

  /**
   * Runs `paths` and yields their records: per file in pts order, streaming or followed by its
   * status record (see {@linkcode CallOptions}). Rejects with {@linkcode VxError} when nothing
   * can run (the model cannot be loaded); a bad file only gets an error status. Ending the
   * iteration early cancels the call's files that have not finished.
   */
  async *run(paths: readonly string[], call: CallOptions): AsyncGenerator<VxRecord> {
    if (this.#failure !== undefined) throw this.#failure;
    if (this.#closed) throw new Error("the scheduler is closed");
    const c: Call = {
      ...call,
      out: new Channel(),
      left: paths.length,
      progress: { total: paths.length, done: 0, failed: 0, keyframes: 0, elapsedMs: 0 },
      t0: now(),
      cancelled: false,
      ended: false,
    };
    if (paths.length === 0) return;
    if (call.framesDir !== undefined) await Deno.mkdir(call.framesDir, { recursive: true });
    this.start();
    this.#inbox.push({ from: "submit", call: c, paths });
    const onAbort = () => this.#inbox.push({ from: "cancel", call: c });
    if (call.signal?.aborted) onAbort();
    else call.signal?.addEventListener("abort", onAbort, { once: true });
    // A loop that ends before it took the call (it failed) still answers it.
    // One handler on the loop for every open call, not one per call: a resident engine's loop
    // lives as long as the process, and a handler per call kept each call (and its records)
    // for as long (bench/soak.ts: RSS grew ~7 KiB a request).
    this.#open.add(c);
    if (this.#ended) c.out.push({ error: this.#failure ?? new Error("scheduler closed") });
    try {
      for (;;) {
        const item = await c.out.next();
        if ("end" in item) return;
        if ("error" in item) throw item.error;
        yield item.record;
      }
    } finally {
      this.#open.delete(c);
      call.signal?.removeEventListener("abort", onAbort);
      if (!c.ended) this.#inbox.push({ from: "cancel", call: c });
    }
  }

  /**
   * Resolves once no file is being decoded or inferred and no frame waits: after a cancelled
   * call, its frames have left the in-flight bound.
   */
  idle(): Promise<void> {
    if (!this.#loop || this.#failure !== undefined || this.#closed) return Promise.resolve();
    const woken = new Promise<void>((resolve) => this.#idle.push(resolve));
    this.#inbox.push({ from: "wake" });
    return woken;
  }

  /** Ends every worker once the runs under way are done; the scheduler is not used after. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    if (!this.#loop) return;
    this.#inbox.push({ from: "close" });
    await this.#loop;
  }

  async #run(): Promise<void> {
    const o = this.#o;
    const gate = this.#gate;
    const tracer = o.tracer;
    const inbox = this.#inbox;
    const t0 = now();
    tracer?.meta({
      mode: o.mode,
      decodeWorkers: o.decoders,
      inferenceWorkers: o.inferrers,
      maxInflightFrames: gate.maxFrames,
      maxInflightBytes: gate.maxBytes,
    });
    // Where the task can tell its frames without a session, decoding starts at once.
    const spec = o.modelFirst
      ? undefined
      : await TASKS[o.task.task].frameSpec?.(o.task, checkedReader(o.checked));
    const pool = new WorkerPool(o, gate, (ev) => inbox.push(ev));
    const dispatcher = new Dispatcher(
      {
        ...o,
        spec,
        stats: this.#stats,
        onReady: (models) => this.#readyResolve(models),
        onIdle: () => {
          for (const wake of this.#idle.splice(0)) wake();
        },
      },
      pool,
      gate,
    );
    const timer = setInterval(() => inbox.push({ from: "tick" }), 1000);
    Deno.unrefTimer(timer);
    pool.start();
    try {
      while (!dispatcher.step()) dispatcher.handle(await inbox.next());
    } catch (e) {
      dispatcher.failAll(e);
      throw e;
    } finally {
      clearInterval(timer);
      pool.close();
      tracer?.span(SPAN.run, MAIN_LANE, t0, now(), { files: dispatcher.files });
    }
  }
}
