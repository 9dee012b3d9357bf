/**
 * The scheduler's state and one method per event: the queue of files, the decoded frames waiting
 * for an inference worker, the frames in flight, the calls and their files' settling, the
 * in-flight gate's releases, the watchdog and cancellation. The scheduler's loop
 * (`scheduler.ts`) feeds it one event at a time and calls {@linkcode Dispatcher.step} between
 * events; the workers it hands work to are the pool's (`pool.ts`).
 *
 * @module
 */

import { now } from "../clock.ts";
import { describeDamage } from "../decode/keyframes.ts";
import { KeyClaims } from "../decode/key_claims.ts";
import { pastEndLine } from "../decode/selection.ts";
import type { DecodeCommand, DecodeEvent } from "../decode/decode_messages.ts";
import { VxError } from "../errors.ts";
import type { FrameRecord, VxRecord } from "../records.ts";
import type { InferEvent } from "../tasks/infer_messages.ts";
import type { Frame, FrameSpec, ModelInfo, TaskOptions } from "../tasks/task.ts";
import { noticeFallback } from "./backend_notice.ts";
import {
  type Call,
  type FileState,
  finishFile,
  newFile,
  settled,
  writeReady,
} from "./file_order.ts";
import type { InflightGate } from "./gate.ts";
import type { DecoderSlot, InferrerSlot, PoolEvent, WorkerPool } from "./pool.ts";
import { MAIN_LANE, SPAN, type Tracer } from "./tracer.ts";
import {
  traceCoreLoaded,
  traceFileDecoded,
  traceFrame,
  traceResult,
  traceTaskReady,
} from "./trace_events.ts";
import type { CrashEvent } from "./workers.ts";

/**
 * Frames an inference worker holds at once: the one it runs and the next, so that it never
 * waits for the main thread between frames; the rest wait in the scheduler's queue for whichever
 * worker is free first, so the last keyframes of a file are not stuck behind a busy worker.
 */
export const FRAMES_PER_INFERRER = 2;

/** Grace given to the decoder's own timeout before the decode worker is terminated. */
export const WATCHDOG_GRACE_MS = 5_000;

/** What the scheduler's loop is told: a worker's event, a caller's, or its own. */
export type SchedulerEvent =
  | PoolEvent
  | { from: "tick" }
  | { from: "submit"; call: Call; paths: readonly string[] }
  | { from: "cancel"; call: Call }
  | { from: "close" }
  /** Wakes the loop, so it checks idleness. */
  | { from: "wake" };

/** A decoded frame from the moment it arrives until its answer lands. */
interface InFlight {
  id: number;
  file: FileState;
  index: number;
  pts: number;
  width: number;
  height: number;
  bytes: number;
  image?: string;
  /** Why it was selected, with `--select` other than keyframes. */
  selected?: Pick<FrameRecord, "key" | "why" | "at" | "score">;
  posted: number;
  /** Until it is given to an inference worker: the frame, waiting in the queue. */
  frame?: Frame;
  inferrer?: InferrerSlot;
}

/** What the dispatcher needs from the scheduler; fixed for its life. */
export interface DispatcherOptions {
  task: TaskOptions;
  inferrers: number;
  decoders: number;
  tracer?: Tracer;
  onNotice?: (line: string) => void;
  /** See `SchedulerOptions`. */
  afterFirstRun?: boolean;
  decodeFirst?: boolean;
  /** The frames decoders make, when the task told them without a session. */
  spec: FrameSpec | undefined;
  /** Every inference worker is set up. */
  onReady(models: ModelInfo[]): void;
  /** Nothing is decoded, inferred or waiting. */
  onIdle(): void;
  /** Counts for the scheduler's `stats`. */
  stats: { sessionsCreated: number; coresLoaded: number; wasmCompiles: number };
}

/** The scheduler's state between events; see the module's documentation. */
export class Dispatcher {
  readonly #o: DispatcherOptions;
  readonly #pool: WorkerPool;
  readonly #gate: InflightGate;
  readonly #queue: FileState[] = [];
  readonly #calls = new Set<Call>();
  readonly #inflight = new Map<number, InFlight>();
  /** Decoded frames no inference worker has taken yet, oldest first. */
  readonly #waiting: InFlight[] = [];
  readonly #finished: FileState[] = [];
  readonly #streaming = new Set<FileState>();
  #spec: FrameSpec | undefined;
  #nextFileId = 0;
  #seq = 0;
  #closing = false;
  /** Whether stderr was told that inference left WebGPU. */
  #leftGpu = false;
  #anyReady = false;
  #readyCount = 0;

  constructor(options: DispatcherOptions, pool: WorkerPool, gate: InflightGate) {
    this.#o = options;
    this.#pool = pool;
    this.#gate = gate;
    this.#spec = options.spec;
  }

  /** Files taken so far. */
  get files(): number {
    return this.#nextFileId;
  }

  /**
   * Does what the last event made possible: files to idle decoders, frames to inference
   * workers, records out. True once closing and no call is left: the loop ends.
   */
  step(): boolean {
    this.#handOutFiles();
    this.#dispatch();
    // Streaming: each record as soon as it and every earlier one of its file are done.
    for (const file of this.#streaming) {
      const disorder = writeReady(file, this.#write);
      if (disorder !== undefined) this.#fileFailed(file, disorder);
    }
    while (this.#finished.length > 0) this.#writeFinished(this.#finished.shift()!);
    if (this.#isIdle()) this.#o.onIdle();
    return this.#closing && this.#calls.size === 0;
  }

  /** Takes one event. */
  handle(ev: SchedulerEvent): void {
    switch (ev.from) {
      case "submit":
        this.#calls.add(ev.call);
        for (const path of ev.paths) {
          this.#queue.push(newFile(this.#nextFileId++, path, ev.call));
        }
        return;
      case "cancel":
        return this.#cancel(ev.call);
      case "close":
        this.#closing = true;
        return;
      case "wake":
        return;
      case "tick":
        return this.#watchdog();
      case "decode":
        return this.#onDecode(ev.slot, ev.e);
      case "infer":
        return this.#onInfer(ev.slot, ev.e);
    }
  }

  /** The loop failed: every call still open hears it. */
  failAll(e: unknown): void {
    for (const call of this.#calls) call.out.push({ error: e });
    this.#calls.clear();
  }

  // ---- Files to decoders ----

  /** Hands out files to idle decoders; with none waiting, a share of a file another decodes. */
  #handOutFiles(): void {
    for (const d of this.#pool.decoders) {
      if (!this.#spec || !d?.ready || d.file) continue;
      if (this.#queue.length === 0) {
        const shared = this.#shareable();
        if (!shared) continue;
        d.file = shared;
        shared.decoding++;
        d.handle.post(this.#decodeRequest(shared, true));
        continue;
      }
      const file = this.#queue.shift()!;
      file.start = now();
      d.file = file;
      file.decoding = 1;
      if (this.#o.decoders > 1) file.claim = new SharedArrayBuffer(KeyClaims.BYTES);
      if (file.call.streaming) this.#streaming.add(file);
      this.#report(file.call);
      const call = file.call;
      const kill = call.faults?.killDecoderOn;
      if (kill && file.path.endsWith(kill)) {
        d.handle.post({ type: "die", id: file.id });
        continue;
      }
      d.handle.post(this.#decodeRequest(file, false));
    }
  }

  /** The decode request for `file`; `joining`: join the worker that decodes it from its index. */
  #decodeRequest(file: FileState, joining: boolean): DecodeCommand {
    const call = file.call;
    const trap = call.faults?.trapDecoderOn;
    return {
      type: "decode",
      id: file.id,
      req: {
        path: file.path,
        spec: this.#spec!,
        jpegDir: call.framesDir,
        jpegPrefix: call.jpegPrefix(file),
        timeoutMs: call.timeoutMs,
        stream: call.stream,
        select: call.select,
        claim: file.claim,
        joining,
        identity: call.identity,
        trapAfter: trap && file.path.endsWith(trap) ? 2 : undefined,
      },
    };
  }

  /** A file some other worker decodes from its index, with keys no worker has taken yet. */
  #shareable(): FileState | undefined {
    for (const d of this.#pool.decoders) {
      const f = d?.file;
      if (!f?.claim || f.keys === undefined || f.error !== undefined || f.call.cancelled) {
        continue;
      }
      if (Atomics.load(new Int32Array(f.claim), 0) < f.keys) return f;
    }
    return undefined;
  }

  /** A decode worker is done with its file (finished, failed or replaced). */
  #leaveFile(slot: DecoderSlot): FileState | undefined {
    const file = slot.file;
    slot.file = undefined;
    if (file) file.decoding--;
    return file;
  }

  /** A file whose decoder ran past its timeout: the worker goes, the file fails, a new one comes. */
  #watchdog(): void {
    for (const d of [...this.#pool.decoders]) {
      const limit = (d?.file?.call.timeoutMs ?? 0) + WATCHDOG_GRACE_MS;
      if (d?.file && now() - d.file.start > limit) {
        const file = this.#leaveFile(d)!;
        this.#pool.replaceDecoder(d);
        this.#fileFailed(file, `timed out after ${Math.round(file.call.timeoutMs / 1000)} s`);
      }
    }
  }

  // ---- Decode workers' events ----

  #onDecode(slot: DecoderSlot, e: DecodeEvent | CrashEvent): void {
    if (!this.#pool.holds(slot)) {
      // A replaced worker's frame already took its room in the gate.
      if (e.type === "frame") this.#gate.release(e.frame.data.byteLength);
      return;
    }
    const file = slot.file;
    if (e.type === "crash" || (e.type === "error" && !e.user && e.id === null)) {
      this.#leaveFile(slot);
      if (file) this.#fileFailed(file, `decode worker failed: ${e.message}`);
      else if (!slot.ready) throw new VxError("decoder core", e.message, "internal");
      this.#pool.replaceDecoder(slot);
      return;
    }
    switch (e.type) {
      case "ready":
        this.#o.stats.coresLoaded++;
        if (this.#o.tracer) traceCoreLoaded(this.#o.tracer, slot.lane, e);
        this.#pool.decoderReady(slot, e.module);
        return;
      case "frame":
        if (file) this.#frameDecoded(slot, file, e);
        return;
      case "corrupt":
        file?.skip.add(e.note.index);
        return;
      case "indexed":
        if (file) file.keys = e.keys;
        return;
      case "done":
        this.#leaveFile(slot);
        if (!file) return;
        file.emitted += e.keyframes;
        file.corrupt.push(...e.corrupt);
        if (this.#o.tracer) traceFileDecoded(this.#o.tracer, slot.lane, file.name, e);
        if (e.select?.pastEnd.length) {
          file.pastEnd = e.select.pastEnd;
          this.#o.onNotice?.(pastEndLine(file.name, e.select.pastEnd));
        }
        if (e.retried) this.#o.tracer?.fallback?.("retry", `${file.name}: ${e.retried}`);
        if (file.decoding === 0) this.#fileDecoded(file);
        return;
      case "error":
        this.#leaveFile(slot);
        if (file) this.#fileFailed(file, e.message);
        return;
    }
  }

  /** A decoded frame joins the queue for inference, or leaves at once if nobody wants it. */
  #frameDecoded(
    slot: DecoderSlot,
    file: FileState,
    e: Extract<DecodeEvent, { type: "frame" }>,
  ): void {
    const f = e.frame;
    if (file.call.cancelled || file.error !== undefined) {
      // Sent before the decoder saw the stop, or for a file that failed: nobody wants it.
      this.#gate.release(f.data.byteLength);
      return;
    }
    const tracer = this.#o.tracer;
    if (tracer) traceFrame(tracer, slot.lane, file.name, e);
    const waiter: InFlight = {
      id: this.#seq++,
      file,
      index: f.index,
      pts: f.pts,
      width: f.srcWidth,
      height: f.srcHeight,
      bytes: f.data.byteLength,
      image: f.image,
      selected: f.why === undefined
        ? undefined
        : { key: f.key, why: f.why, at: f.at, score: f.score },
      posted: e.posted,
      frame: f,
    };
    this.#inflight.set(waiter.id, waiter);
    this.#waiting.push(waiter);
    file.outstanding++;
    tracer?.counter("in-flight", this.#gate.levels());
  }

  /** Every decode worker on `file` is done: what they found, together. */
  #fileDecoded(file: FileState): void {
    if (file.error !== undefined) return this.#finishIfSettled(file);
    const corrupt = file.corrupt.sort((a, b) => a.index - b.index);
    if (file.emitted === 0 && corrupt.length > 0) {
      return this.#fileFailed(file, `every keyframe is damaged (${corrupt[0].reason})`);
    }
    file.decoded = file.emitted;
    if (corrupt.length > 0) file.damaged = describeDamage(corrupt, file.emitted);
    this.#finishIfSettled(file);
  }

  // ---- Frames to inference workers ----

  /** Gives waiting frames, oldest first, to the ready workers with the fewest outstanding. */
  #dispatch(): void {
    const waiting = this.#waiting;
    while (waiting.length > 0) {
      const f = waiting[0];
      const whole = f.file.decoded !== undefined || f.file.error !== undefined;
      if (this.#o.decodeFirst && !whole) return;
      let target: InferrerSlot | undefined;
      for (const s of this.#pool.inferrers) {
        if (!s?.ready || s.outstanding.size >= FRAMES_PER_INFERRER) continue;
        if (!target || s.outstanding.size < target.outstanding.size) target = s;
      }
      if (!target) return;
      waiting.shift();
      const frame = f.frame!;
      f.frame = undefined;
      f.inferrer = target;
      target.outstanding.add(f.id);
      target.handle.post({ type: "frame", seq: f.id, frame, sent: now() }, [frame.data.buffer]);
    }
  }

  /** A frame leaves the in-flight set and gives its room in the gate back. */
  #release(f: InFlight): void {
    this.#inflight.delete(f.id);
    this.#gate.release(f.bytes);
    f.file.outstanding--;
  }

  /** A frame's answer came back (or never will): it leaves its worker and the in-flight set. */
  #answered(slot: InferrerSlot, seq: number): InFlight | undefined {
    const f = this.#inflight.get(seq);
    if (!f || f.inferrer !== slot) return undefined;
    slot.outstanding.delete(seq);
    this.#release(f);
    return f;
  }

  // ---- Inference workers' events ----

  #onInfer(slot: InferrerSlot, e: InferEvent | CrashEvent): void {
    if (!this.#pool.holds(slot)) return;
    const task = this.#o.task;
    if (e.type === "crash") {
      for (const seq of [...slot.outstanding]) {
        const f = this.#answered(slot, seq);
        if (f) this.#fileFailed(f.file, `inference worker failed: ${e.message}`);
      }
      if (!slot.ready) {
        slot.handle.terminate();
        throw new VxError(task.model ?? task.task, e.message, "model");
      }
      this.#pool.replaceInferrer(slot);
      return;
    }
    switch (e.type) {
      case "ready":
        return this.#inferrerReady(slot, e);
      case "fallback":
        // Every worker's move is traced; stderr hears the first of the run.
        noticeFallback(e, {
          tracer: this.#o.tracer,
          onNotice: this.#leftGpu ? undefined : this.#o.onNotice,
        });
        this.#leftGpu = true;
        return;
      case "result":
        return this.#result(slot, e);
      case "error": {
        if (e.seq === null) {
          // The task cannot load: no file can be processed.
          const subject = task.model ?? task.task;
          throw new VxError(subject, e.message.replace(`${subject}: `, ""), "model");
        }
        if (this.#o.afterFirstRun) this.#pool.initInferrers();
        const f = this.#answered(slot, e.seq);
        if (f) this.#fileFailed(f.file, `inference failed on keyframe ${f.index}: ${e.message}`);
        return;
      }
    }
  }

  #inferrerReady(slot: InferrerSlot, e: Extract<InferEvent, { type: "ready" }>): void {
    const o = this.#o;
    o.stats.sessionsCreated += e.sessions.length;
    if (e.ortWasm === "own") o.stats.wasmCompiles++;
    this.#pool.inferrerReady(slot, e.wasmModule);
    // Its code is compiled (and hot, when warmed): the others set up on it.
    if (!o.afterFirstRun) this.#pool.initInferrers();
    if (!this.#anyReady) noticeFallback(e, o); // once a run, not once a worker
    this.#anyReady = true;
    this.#spec ??= e.frameSpec;
    if (o.tracer) traceTaskReady(o.tracer, slot.lane, o.task.task, e, this.#readyCount === 0);
    if (++this.#readyCount === o.inferrers) o.onReady(e.models);
  }

  #result(slot: InferrerSlot, e: Extract<InferEvent, { type: "result" }>): void {
    // Its first run compiled the kernels: the others set up on them now.
    if (this.#o.afterFirstRun) this.#pool.initInferrers();
    const f = this.#answered(slot, e.seq);
    if (!f) return;
    const tracer = this.#o.tracer;
    if (tracer) {
      tracer.counter("in-flight", this.#gate.levels());
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
      task: this.#o.task.task,
      results: e.results,
    };
    if (f.image !== undefined) record.image = f.image;
    const s = f.selected;
    if (s) {
      record.key = s.key;
      record.why = s.why;
      if (s.at !== undefined) record.at = s.at;
      if (s.score !== undefined) record.score = s.score;
    }
    f.file.records.push(record);
    if (f.file.call.streaming) f.file.ready.set(f.index, record);
    if (f.file.error !== undefined || f.file.decoded !== undefined) this.#finishIfSettled(f.file);
  }

  // ---- Files settled, records out ----

  #fileFailed(file: FileState, reason: string): void {
    file.error ??= reason;
    // Every decode worker on it (the one that decodes it, those sharing its keys) leaves it.
    for (const d of this.#pool.decoders) {
      if (d?.file === file) {
        Atomics.store(d.stop, 0, file.id + 1);
        this.#gate.wake();
      }
    }
    this.#finishIfSettled(file);
  }

  /** `file` joins the finished ones once nothing more will come of it (`settled`). */
  #finishIfSettled(file: FileState): void {
    if (settled(file)) this.#finished.push(file);
  }

  /** A settled file's records (unless they streamed) and status go to its caller. */
  #writeFinished(file: FileState): void {
    const call = file.call;
    this.#streaming.delete(file);
    const status = finishFile(file, this.#write);
    this.#o.tracer?.span("file", MAIN_LANE, file.start, now(), {
      file: file.name,
      status: status.status,
    });
    this.#send(call, status);
    this.#report(call);
    if (--call.left === 0) this.#endCall(call);
  }

  #report(call: Call): void {
    call.onProgress?.({ ...call.progress, elapsedMs: now() - call.t0 });
  }

  #send(call: Call, record: VxRecord): void {
    if (!call.cancelled) call.out.push({ record });
  }

  /** A keyframe record goes to its caller, traced as `output`. */
  readonly #write = (call: Call, r: FrameRecord): void => {
    const tracer = this.#o.tracer;
    const handed = tracer ? now() : 0;
    this.#send(call, r);
    tracer?.span(SPAN.output, MAIN_LANE, handed, now(), {
      file: r.file,
      index: r.index,
      pts: r.pts,
    });
    tracer?.memory?.(Deno.memoryUsage().rss);
  };

  #endCall(call: Call): void {
    call.ended = true;
    this.#calls.delete(call);
    call.out.push({ end: true });
  }

  /**
   * The call went away: its queued files go; a file being decoded runs to its end with its
   * frames dropped on arrival (they leave the gate at once), and nothing more is written. The
   * decoder is not terminated: a worker ended between taking a gate slot and posting its frame
   * would leave the slot taken for good.
   */
  #cancel(call: Call): void {
    if (call.cancelled || call.ended) return;
    call.cancelled = true;
    const queue = this.#queue;
    for (let i = queue.length - 1; i >= 0; i--) {
      if (queue[i].call === call) {
        queue.splice(i, 1);
        call.left--;
      }
    }
    // Its frames waiting for a worker leave the gate now.
    const waiting = this.#waiting;
    for (let i = waiting.length - 1; i >= 0; i--) {
      const f = waiting[i];
      if (f.file.call !== call) continue;
      waiting.splice(i, 1);
      this.#release(f);
      this.#fileFailed(f.file, "cancelled");
    }
    // A decoder busy with the call's file is told to leave it (a wait on the gate included;
    // `#fileFailed` sets its stop cell): it answers after every frame it sent, so each frame's
    // room is given back as it lands, which a terminated worker's frames, acquired but never
    // delivered, would not be.
    for (const d of this.#pool.decoders) {
      if (d?.file?.call === call) this.#fileFailed(d.file, "cancelled");
    }
    if (call.left === 0) this.#endCall(call);
  }

  /** Nothing is decoded, inferred or waiting. */
  #isIdle(): boolean {
    return this.#queue.length === 0 && this.#inflight.size === 0 &&
      this.#pool.decoders.every((d) => !d?.file);
  }
}
