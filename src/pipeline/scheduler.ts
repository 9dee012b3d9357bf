/**
 * The one scheduler of `fast`, `bulk` and the resident engine. A pool of decode workers (each
 * one ffmpeg core, loaded once) takes files from one queue; decoded keyframes wait in one queue,
 * in the order they were decoded, for the first inference worker with room (each worker's model
 * sessions created once; a worker holds at most {@linkcode FRAMES_PER_INFERRER}). One in-flight
 * gate bounds the decoded frames waiting for inference across the pool, so memory does not grow
 * with the number of files or callers.
 *
 * Start-up is staggered, because on a cold process it is most of a short run: the first
 * inference worker compiles onnxruntime-web's wasm and creates its sessions at once; the others
 * set up only when it is ready, on its compiled module (`ort_wasm.ts`), so that they find its
 * code compiled (their sessions then take ~0.2 s instead of ~0.9 s each) and two cores are not
 * split three ways while the first keyframe waits. The ffmpeg core is shared the same way.
 *
 * What it owns: the workers' life (spawning, staggered set-up, replacing a crashed one, parking
 * a GPU worker via `workers.ts`), dispatch through the in-flight gate (`gate.ts`), cancellation
 * and the per-file watchdog. Records leave per file in pts order, streaming (`fast`) or a file at
 * a time with its status (`bulk`): that order is `file_output.ts`'s. Several callers may run
 * files through one scheduler at once; each gets exactly its own records. It is built in one
 * place, `modes.ts`, for each mode.
 *
 * @module
 */

import { now } from "../clock.ts";
import { describeDamage } from "../decode/keyframes.ts";
import type { DecodeCommand, DecodeEvent } from "../decode/protocol.ts";
import { VxError } from "../errors.ts";
import type { BackendChoice } from "../infer/backend.ts";
import type { InferCommand, InferEvent } from "../tasks/protocol.ts";
import type { FrameRecord, VxRecord } from "../records.ts";
import {
  type Call,
  type CallOptions,
  type FileState,
  finishFile,
  newFile,
  settled,
  writeReady,
} from "./file_output.ts";
import type { FrameSpec, ModelInfo, TaskOptions } from "../tasks/task.ts";
import { TASKS } from "../tasks/registry.ts";
import { type CheckedFiles, checkedReader } from "../input/checked_file.ts";
import { noticeFallback } from "./backend_notice.ts";
import { Channel } from "./channel.ts";
import { InflightGate } from "./gate.ts";
import { decodeLane, inferLane, MAIN_LANE, SPAN, type Tracer } from "./tracer.ts";
import {
  traceCoreLoaded,
  traceFileDecoded,
  traceFrame,
  traceResult,
  traceTaskReady,
} from "./trace_events.ts";
import { type CrashEvent, spawnDecoder, spawnInferrer, type WorkerHandle } from "./workers.ts";
import { spawnInline } from "./inline_inferrer.ts";
import type { Frame } from "../tasks/task.ts";

/**
 * Frames an inference worker holds at once: the one it runs and the next, so that it never
 * waits for the main thread between frames; the rest wait in the scheduler's queue for whichever
 * worker is free first, so the last keyframes of a file are not stuck behind a busy worker.
 */
export const FRAMES_PER_INFERRER = 2;

/** Grace given to ffmpeg's own timeout before the decode worker is terminated. */
export const WATCHDOG_GRACE_MS = 5_000;

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
  /** Tests only: each inference worker destroys its WebGPU device once set up. */
  loseGpu?: boolean;
  /**
   * The task's files (model, label file) the caller checked, by real path, with their device
   * and inode: the task reads each from that file only (`vx serve --models`; see `InferCommand`
   * init).
   */
  checked?: CheckedFiles;
}

export type { BulkProgress, CallOptions } from "./file_output.ts";

/** What the scheduler's workers did, for tests and the engine's callers. */
export interface SchedulerStats {
  /** Model sessions created, over all inference workers (each once, when it starts). */
  sessionsCreated: number;
  /** ffmpeg cores loaded. */
  coresLoaded: number;
  /** Compilations of onnxruntime-web's wasm: one per inference worker that could not share. */
  wasmCompiles: number;
  /** Frames now waiting for inference, and their bytes. */
  inflightFrames: number;
  inflightBytes: number;
}

interface DecoderSlot {
  handle: WorkerHandle<DecodeCommand, DecodeEvent>;
  /** Its `init` was posted (the first decoder's at once, the others' with a compiled core). */
  started: boolean;
  /** The worker's stop cell: the id + 1 of a file to leave (see `DecodeCommand` init). */
  stop: Int32Array;
  ready: boolean;
  file?: FileState;
  lane: string;
}

interface InferrerSlot {
  handle: WorkerHandle<InferCommand, InferEvent>;
  /** Its `init` was posted (the first worker's at once, the others' once it is ready). */
  started: boolean;
  ready: boolean;
  outstanding: Set<number>;
  lane: string;
}

interface InFlight {
  id: number;
  file: FileState;
  index: number;
  pts: number;
  width: number;
  height: number;
  bytes: number;
  image?: string;
  posted: number;
  /** Until it is given to an inference worker: the frame, waiting in the queue. */
  frame?: Frame;
  inferrer?: InferrerSlot;
}

type Event =
  | { from: "decode"; slot: DecoderSlot; e: DecodeEvent | CrashEvent }
  | { from: "infer"; slot: InferrerSlot; e: InferEvent | CrashEvent }
  | { from: "tick" }
  | { from: "submit"; call: Call; paths: readonly string[] }
  | { from: "cancel"; call: Call }
  | { from: "close" }
  /** Wakes the loop, so it checks idleness. */
  | { from: "poke" };

/**
 * A pool of decode and inference workers with one queue of files, one in-flight gate and one
 * event loop. Workers start with the first run and serve every run until {@linkcode close}.
 *
 * @example
 * ```ts ignore
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
  readonly #inbox = new Channel<Event>();
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
    this.#inbox.push({ from: "poke" });
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
    const task = o.task;
    const gate = this.#gate;
    const tracer = o.tracer;
    const inbox = this.#inbox;
    const stats = this.#stats;
    const t0 = now();
    tracer?.meta({
      mode: o.mode,
      decodeWorkers: o.decoders,
      inferenceWorkers: o.inferrers,
      maxInflightFrames: gate.maxFrames,
      maxInflightBytes: gate.maxBytes,
    });
    const queue: FileState[] = [];
    const calls = new Set<Call>();
    /** Whether stderr was told that inference left WebGPU. */
    let leftGpu = false;
    let anyReady = false;
    let readyCount = 0;
    let models: ModelInfo[] = [];
    // Where the task can tell its frames without a session, decoding starts at once.
    let spec: FrameSpec | undefined = o.modelFirst
      ? undefined
      : await TASKS[task.task].frameSpec?.(task, checkedReader(o.checked));
    const decoders: DecoderSlot[] = [];
    const inferrers: InferrerSlot[] = [];
    const inflight = new Map<number, InFlight>();
    /** Decoded frames no inference worker has taken yet, oldest first. */
    const waiting: InFlight[] = [];
    const finished: FileState[] = [];
    const streaming = new Set<FileState>();
    let nextFileId = 0;
    let seq = 0;
    let closing = false;

    let coreModule: WebAssembly.Module | undefined;
    const initDecoder = (slot: DecoderSlot) => {
      if (slot.started) return;
      slot.started = true;
      slot.handle.post({
        type: "init",
        module: coreModule,
        gate: { buffer: gate.buffer, maxFrames: gate.maxFrames, maxBytes: gate.maxBytes },
        stop: slot.stop.buffer as SharedArrayBuffer,
      });
    };
    /**
     * Spawns a decode worker. It loads its modules at once, but loads a core only from the
     * first decoder's compiled module (or compiles it, being the first): two cores compiling
     * the same 32 MB of wasm would split the cores the first keyframe waits on.
     */
    const startDecoder = (at: number) => {
      const slot = {
        ready: false,
        started: false,
        lane: decodeLane(at),
        stop: new Int32Array(new SharedArrayBuffer(4)),
      } as DecoderSlot;
      slot.handle = spawnDecoder((e) => inbox.push({ from: "decode", slot, e }));
      decoders[at] = slot;
      if (at === 0 || coreModule) initDecoder(slot);
    };
    /** The decode request for `file`; `help`: join the worker that decodes it from its index. */
    const decodeRequest = (file: FileState, help: boolean): DecodeCommand => {
      const call = file.call;
      return {
        type: "decode",
        id: file.id,
        req: {
          path: file.path,
          spec: spec!,
          jpegDir: call.framesDir,
          jpegPrefix: call.jpegPrefix(file),
          timeoutMs: call.timeoutMs,
          stream: call.stream,
          claim: file.claim,
          help,
          identity: call.identity,
          trapAfter: call.trapDecoderOn && file.path.endsWith(call.trapDecoderOn) ? 2 : undefined,
        },
      };
    };
    /** A file some other worker decodes from its index, with keys no worker has taken yet. */
    const shareable = (): FileState | undefined => {
      for (const d of decoders) {
        const f = d?.file;
        if (!f?.claim || f.keys === undefined || f.error !== undefined || f.call.cancelled) {
          continue;
        }
        if (Atomics.load(new Int32Array(f.claim), 0) < f.keys) return f;
      }
      return undefined;
    };
    /** A decode worker is done with its file (finished, failed or replaced). */
    const leaveFile = (slot: DecoderSlot): FileState | undefined => {
      const file = slot.file;
      slot.file = undefined;
      if (file) file.decoding--;
      return file;
    };
    /** onnxruntime-web's wasm, from the first worker that compiled it (see `ort_wasm.ts`). */
    let wasmModule: WebAssembly.Module | undefined;
    const initInferrer = (slot: InferrerSlot) => {
      if (slot.started) return;
      slot.started = true;
      slot.handle.post({
        type: "init",
        task,
        threads: o.threads,
        backend: o.backend,
        warm: o.warm,
        wasmModule,
        checked: o.checked,
      });
      if (o.loseGpu) slot.handle.post({ type: "lose-gpu" });
    };
    /** Spawns an inference worker; it is given its task now, or once the first is ready. */
    const startInferrer = (at: number, init: boolean) => {
      const slot = {
        started: false,
        ready: false,
        outstanding: new Set(),
        lane: inferLane(at),
      } as InferrerSlot;
      const onEvent = (e: InferEvent | CrashEvent) => inbox.push({ from: "infer", slot, e });
      // A task that runs no model needs no worker to run it in.
      slot.handle = TASKS[task.task].runsModel === false
        ? spawnInline(onEvent)
        : spawnInferrer(onEvent);
      inferrers[at] = slot;
      if (init) initInferrer(slot);
    };
    /** Gives waiting frames, oldest first, to the ready workers with the fewest outstanding. */
    const dispatch = () => {
      while (waiting.length > 0) {
        const f = waiting[0];
        const whole = f.file.decoded !== undefined || f.file.error !== undefined;
        if (o.decodeFirst && !whole) return;
        let target: InferrerSlot | undefined;
        for (const s of inferrers) {
          if (!s?.ready || s.outstanding.size >= FRAMES_PER_INFERRER) continue;
          if (!target || s.outstanding.size < target.outstanding.size) target = s;
        }
        if (!target) return;
        waiting.shift();
        const frame = f.frame!;
        f.frame = undefined;
        f.inferrer = target;
        target.outstanding.add(f.id);
        target.handle.post(
          { type: "frame", seq: f.id, frame, sent: now() },
          [frame.data.buffer],
        );
      }
    };

    const fileFailed = (file: FileState, reason: string) => {
      file.error ??= reason;
      // Other decode workers sharing its keys leave it (see `cancel`).
      for (const d of decoders) {
        if (d?.file === file) {
          Atomics.store(d.stop, 0, file.id + 1);
          gate.wake();
        }
      }
      settle(file);
    };
    /** Every decode worker on `file` is done: what they found, together. */
    const fileDecoded = (file: FileState) => {
      if (file.error !== undefined) return settle(file);
      const corrupt = file.corrupt.sort((a, b) => a.index - b.index);
      if (file.emitted === 0 && corrupt.length > 0) {
        return fileFailed(file, `every keyframe is damaged (${corrupt[0].reason})`);
      }
      file.decoded = file.emitted;
      if (corrupt.length > 0) file.damaged = describeDamage(corrupt, file.emitted);
      settle(file);
    };
    const settle = (file: FileState) => {
      if (settled(file)) finished.push(file);
    };
    /** A frame leaves the in-flight set and gives its room in the gate back. */
    const leave = (f: InFlight) => {
      inflight.delete(f.id);
      gate.release(f.bytes);
      f.file.outstanding--;
    };
    /** A frame's answer came back (or never will): it leaves its worker and the in-flight set. */
    const land = (slot: InferrerSlot, seq: number): InFlight | undefined => {
      const f = inflight.get(seq);
      if (!f || f.inferrer !== slot) return undefined;
      slot.outstanding.delete(seq);
      leave(f);
      return f;
    };
    const dropInferrer = (slot: InferrerSlot, reason: string) => {
      for (const seq of [...slot.outstanding]) {
        const f = land(slot, seq);
        if (f) fileFailed(f.file, reason);
      }
    };
    const report = (call: Call) =>
      call.onProgress?.({ ...call.progress, elapsedMs: now() - call.t0 });
    const send = (call: Call, record: VxRecord) => {
      if (!call.cancelled) call.out.push({ record });
    };
    /** A keyframe record goes to its caller, traced as `output`. */
    const write = (call: Call, r: FrameRecord) => {
      const handed = tracer ? now() : 0;
      send(call, r);
      tracer?.span(SPAN.output, MAIN_LANE, handed, now(), {
        file: r.file,
        index: r.index,
        pts: r.pts,
      });
      tracer?.memory?.(Deno.memoryUsage().rss);
    };
    const endCall = (call: Call) => {
      call.ended = true;
      calls.delete(call);
      call.out.push({ end: true });
    };
    /**
     * The call went away: its queued files go; a file being decoded runs to its end with its
     * frames dropped on arrival (they leave the gate at once), and nothing more is written. The
     * decoder is not terminated: a worker ended between taking a gate slot and posting its frame
     * would leave the slot taken for good.
     */
    const cancel = (call: Call) => {
      if (call.cancelled || call.ended) return;
      call.cancelled = true;
      for (let i = queue.length - 1; i >= 0; i--) {
        if (queue[i].call === call) {
          queue.splice(i, 1);
          call.left--;
        }
      }
      // Its frames waiting for a worker leave the gate now.
      for (let i = waiting.length - 1; i >= 0; i--) {
        const f = waiting[i];
        if (f.file.call !== call) continue;
        waiting.splice(i, 1);
        leave(f);
        fileFailed(f.file, "cancelled");
      }
      // A decoder busy with the call's file is told to leave it (a wait on the gate included):
      // it answers after every frame it sent, so each frame's room is given back as it lands,
      // which a terminated worker's frames, acquired but never delivered, would not be.
      for (const d of decoders) {
        if (d?.file?.call === call) {
          Atomics.store(d.stop, 0, d.file.id + 1);
          gate.wake();
          fileFailed(d.file, "cancelled");
        }
      }
      if (call.left === 0) endCall(call);
    };
    /** Callers of idle(), woken when nothing is decoded, inferred or waiting. */
    const isIdle = () =>
      queue.length === 0 && inflight.size === 0 && decoders.every((d) => !d?.file);

    const timer = setInterval(() => inbox.push({ from: "tick" }), 1000);
    Deno.unrefTimer(timer);
    // Every inference worker boots now; only the first sets up its task before the others. On
    // WebGPU alone there is no wasm to share (its build is another), so all set up at once.
    const stagger = o.backend !== "webgpu";
    for (let i = 0; i < o.inferrers; i++) startInferrer(i, i === 0 || !stagger);
    // The first decoder compiles the core; the others get the compiled module from it.
    for (let i = 0; i < o.decoders; i++) startDecoder(i);
    try {
      for (;;) {
        // Hand out files to idle decoders.
        for (const d of decoders) {
          if (!spec || !d?.ready || d.file) continue;
          if (queue.length === 0) {
            // No file waits: an idle decoder takes keys of a file another decodes by its index.
            const shared = shareable();
            if (!shared) continue;
            d.file = shared;
            shared.decoding++;
            d.handle.post(decodeRequest(shared, true));
            continue;
          }
          const file = queue.shift()!;
          file.start = now();
          d.file = file;
          file.decoding = 1;
          if (o.decoders > 1) file.claim = new SharedArrayBuffer(4);
          if (file.call.streaming) streaming.add(file);
          report(file.call);
          const call = file.call;
          if (call.killDecoderOn && file.path.endsWith(call.killDecoderOn)) {
            d.handle.post({ type: "die", id: file.id });
            continue;
          }
          d.handle.post(decodeRequest(file, false));
        }
        dispatch();
        // Streaming: each record as soon as it and every earlier one of its file are done.
        for (const file of streaming) {
          const disorder = writeReady(file, write);
          if (disorder !== undefined) fileFailed(file, disorder);
        }
        // Write out finished files.
        while (finished.length > 0) {
          const file = finished.shift()!;
          const call = file.call;
          streaming.delete(file);
          const status = finishFile(file, write);
          tracer?.span("file", MAIN_LANE, file.start, now(), {
            file: file.name,
            status: status.status,
          });
          send(call, status);
          report(call);
          if (--call.left === 0) endCall(call);
        }
        if (isIdle()) { for (const wake of this.#idle.splice(0)) wake(); }
        if (closing && calls.size === 0) return;

        const ev = await inbox.next();
        if (ev.from === "submit") {
          calls.add(ev.call);
          for (const path of ev.paths) {
            queue.push(newFile(nextFileId++, path, ev.call));
          }
          continue;
        }
        if (ev.from === "cancel") {
          cancel(ev.call);
          continue;
        }
        if (ev.from === "close") {
          closing = true;
          continue;
        }
        if (ev.from === "poke") continue;
        if (ev.from === "tick") {
          for (let i = 0; i < decoders.length; i++) {
            const d = decoders[i];
            const limit = (d?.file?.call.timeoutMs ?? 0) + WATCHDOG_GRACE_MS;
            if (d?.file && now() - d.file.start > limit) {
              // ffmpeg did not stop by itself: the worker goes, the file fails, a new one comes.
              d.handle.terminate();
              const file = leaveFile(d)!;
              fileFailed(file, `timed out after ${Math.round(file.call.timeoutMs / 1000)} s`);
              startDecoder(i);
            }
          }
          continue;
        }
        if (ev.from === "decode") {
          const { slot, e } = ev;
          if (decoders[decoders.indexOf(slot)] !== slot) {
            // A replaced worker's frame already took its room in the gate.
            if (e.type === "frame") gate.release(e.frame.data.byteLength);
            continue;
          }
          const file = slot.file;
          if (e.type === "crash" || (e.type === "error" && !e.user && e.id === null)) {
            slot.handle.terminate();
            leaveFile(slot);
            if (file) fileFailed(file, `decode worker failed: ${e.message}`);
            else if (!slot.ready) throw new VxError("ffmpeg core", e.message, "internal");
            startDecoder(decoders.indexOf(slot));
            continue;
          }
          switch (e.type) {
            case "ready":
              slot.ready = true;
              stats.coresLoaded++;
              if (tracer) traceCoreLoaded(tracer, slot.lane, e);
              if (!coreModule) {
                coreModule = e.module;
                for (const d of decoders) initDecoder(d);
              }
              break;
            case "frame": {
              const f = e.frame;
              if (!file) break;
              if (file.call.cancelled || file.error !== undefined) {
                // Sent before the decoder saw the stop, or for a file that failed: nobody wants it.
                gate.release(f.data.byteLength);
                break;
              }
              if (tracer) traceFrame(tracer, slot.lane, file.name, e);
              const waiter: InFlight = {
                id: seq++,
                file,
                index: f.index,
                pts: f.pts,
                width: f.srcWidth,
                height: f.srcHeight,
                bytes: f.data.byteLength,
                image: f.image,
                posted: e.posted,
                frame: f,
              };
              inflight.set(waiter.id, waiter);
              waiting.push(waiter);
              file.outstanding++;
              tracer?.counter("in-flight", gate.levels());
              break;
            }
            case "corrupt":
              file?.skip.add(e.note.index);
              break;
            case "indexed":
              if (file) file.keys = e.keys;
              break;
            case "done":
              leaveFile(slot);
              if (file) {
                file.emitted += e.keyframes;
                file.corrupt.push(...e.corrupt);
                if (tracer) traceFileDecoded(tracer, slot.lane, file.name, e);
                if (e.retried) tracer?.fallback?.("retry", `${file.name}: ${e.retried}`);
                if (file.decoding === 0) fileDecoded(file);
              }
              break;
            case "error":
              leaveFile(slot);
              if (file) fileFailed(file, e.message);
              break;
          }
          continue;
        }
        const { slot, e } = ev;
        if (inferrers[inferrers.indexOf(slot)] !== slot) continue;
        if (e.type === "crash") {
          slot.handle.terminate();
          dropInferrer(slot, `inference worker failed: ${e.message}`);
          if (!slot.ready) throw new VxError(task.model ?? task.task, e.message, "model");
          startInferrer(inferrers.indexOf(slot), true);
          continue;
        }
        switch (e.type) {
          case "ready":
            slot.ready = true;
            stats.sessionsCreated += e.sessions.length;
            if (e.ortWasm === "own") stats.wasmCompiles++;
            wasmModule ??= e.wasmModule;
            // Its code is compiled (and hot, when warmed): the others set up on it.
            if (!o.afterFirstRun) { for (const s of inferrers) initInferrer(s); }
            if (!anyReady) noticeFallback(e, o); // once a run, not once a worker
            anyReady = true;
            spec ??= e.frameSpec;
            models = e.models;
            if (tracer) traceTaskReady(tracer, slot.lane, task.task, e, readyCount === 0);
            if (++readyCount === o.inferrers) this.#readyResolve(models);
            break;
          case "fallback":
            // Every worker's move is traced; stderr hears the first of the run.
            noticeFallback(e, { tracer, onNotice: leftGpu ? undefined : o.onNotice });
            leftGpu = true;
            break;
          case "result": {
            // Its first run compiled the kernels: the others set up on them now.
            if (o.afterFirstRun) { for (const s of inferrers) initInferrer(s); }
            const f = land(slot, e.seq);
            if (!f) break;
            if (tracer) {
              tracer.counter("in-flight", gate.levels());
              traceResult(tracer, slot.lane, {
                file: f.file.name,
                index: f.index,
                pts: f.pts,
                posted: f.posted,
              }, e.timing);
            }
            const record: FrameRecord = {
              file: f.file.name,
              index: f.index,
              pts: f.pts,
              width: f.width,
              height: f.height,
              task: task.task,
              results: e.results,
            };
            if (f.image !== undefined) record.image = f.image;
            f.file.records.push(record);
            if (f.file.call.streaming) f.file.ready.set(f.index, record);
            if (f.file.error !== undefined || f.file.decoded !== undefined) settle(f.file);
            break;
          }
          case "error": {
            if (e.seq === null) {
              // The task cannot load: no file can be processed.
              const subject = task.model ?? task.task;
              throw new VxError(subject, e.message.replace(`${subject}: `, ""), "model");
            }
            if (o.afterFirstRun) { for (const s of inferrers) initInferrer(s); }
            const f = land(slot, e.seq);
            if (!f) break;
            fileFailed(f.file, `inference failed on keyframe ${f.index}: ${e.message}`);
            break;
          }
        }
      }
    } catch (e) {
      for (const call of calls) call.out.push({ error: e });
      calls.clear();
      throw e;
    } finally {
      clearInterval(timer);
      for (const d of decoders) d?.handle.terminate();
      for (const s of inferrers) s?.handle.terminate();
      tracer?.span(SPAN.run, MAIN_LANE, t0, now(), { files: nextFileId });
    }
  }
}
