/**
 * `bulk`: many files, the most work per core. A pool of decode workers (each one ffmpeg core,
 * loaded once) takes files from a queue; every decoded keyframe goes to the least-busy worker of
 * a pool of inference workers (each with its model sessions, created once). One in-flight gate
 * bounds the decoded frames waiting for inference across the whole pool, so memory does not
 * grow with the number of files. A file's records come out together, followed by its status
 * record, once all its keyframes are inferred; a bad file gets an error status and the others
 * go on.
 *
 * @module
 */

import { now } from "../clock.ts";
import { describeDamage } from "../decode/keyframes.ts";
import type { DecodeCommand, DecodeEvent } from "../decode/protocol.ts";
import { VxError } from "../errors.ts";
import type { InferCommand, InferEvent } from "../infer/protocol.ts";
import { checkPtsOrder, type FrameRecord, type StatusRecord, type VxRecord } from "../records.ts";
import { type FrameSpec, pickTaskOptions, type TaskOptions } from "../tasks/task.ts";
import { drawRecords } from "../draw/drawer.ts";
import { noticeFallback } from "./backend_notice.ts";
import { Channel } from "./channel.ts";
import { TASKS } from "../tasks/registry.ts";
import { baseName, DEFAULT_TIMEOUT_MS, type ExtractOptions, WATCHDOG_GRACE_MS } from "./fast.ts";
import { InflightGate } from "./gate.ts";
import { expandInputs, shard } from "./inputs.ts";
import { type CrashEvent, spawnDecoder, spawnInferrer, type WorkerHandle } from "./workers.ts";
import { decodeLane, inferLane, MAIN_LANE, SPAN } from "./tracer.ts";
import {
  traceCoreLoaded,
  traceFileDecoded,
  traceFrame,
  traceResult,
  traceTaskReady,
} from "./trace_events.ts";

/** Options of {@linkcode extractBulk}. */
export interface BulkOptions extends Omit<ExtractOptions, "sequential"> {
  /** Decode workers; see {@linkcode defaultPool}. */
  decoders?: number;
  /** Inference workers; see {@linkcode defaultPool}. */
  inferrers?: number;
  /** Only this shard of the expanded inputs. */
  shard?: { index: number; count: number };
  /** Files to leave out (already done, for `--resume`). */
  skip?: ReadonlySet<string>;
  /**
   * Tests only: the decode worker given a file whose path ends with this dies instead (an
   * uncaught error, as on a wasm out-of-memory), so recovery can be tested for real.
   */
  killDecoderOn?: string;
  /** Called when a file starts or ends, with the run's counts. */
  onProgress?: (p: BulkProgress) => void;
}

/** Where a bulk run stands. */
export interface BulkProgress {
  total: number;
  done: number;
  failed: number;
  keyframes: number;
  elapsedMs: number;
}

/** The default bound on decoded frames waiting for inference across the pool. */
export const DEFAULT_BULK_INFLIGHT_BYTES = 128 << 20;

/**
 * The pool sized to the machine. Measured on 2 cores (`bench/bulk.ts`, BENCHMARKS.md): inference
 * dominates, and two single-threaded inference sessions give more frames per second than one
 * session with two threads, while one decode worker keeps them fed. `jobs` sets the number of
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

interface FileState {
  id: number;
  path: string;
  start: number;
  decoded?: number;
  records: FrameRecord[];
  outstanding: number;
  error?: string;
  /** Damaged keyframes: the others' records still come out, the file's status is an error. */
  damaged?: string;
  settled?: boolean;
}

interface DecoderSlot {
  handle: WorkerHandle<DecodeCommand, DecodeEvent>;
  ready: boolean;
  file?: FileState;
  lane: string;
}

interface InferrerSlot {
  handle: WorkerHandle<InferCommand, InferEvent>;
  ready: boolean;
  outstanding: Set<number>;
  lane: string;
}

interface InFlight {
  file: FileState;
  index: number;
  pts: number;
  width: number;
  height: number;
  bytes: number;
  image?: string;
  posted: number;
  inferrer: InferrerSlot;
}

type Event =
  | { from: "decode"; slot: DecoderSlot; e: DecodeEvent | CrashEvent }
  | { from: "infer"; slot: InferrerSlot; e: InferEvent | CrashEvent }
  | { from: "tick" };

/**
 * Runs a task over many files. `inputs` are files, directories (recursive, by media extension)
 * or `@list.txt` files. Yields, per file, its keyframe records in pts order and then its
 * {@linkcode StatusRecord}. Throws {@linkcode VxError} only when nothing can run (the model
 * cannot be loaded); a bad input file only gets an error status.
 *
 * @example
 * ```ts ignore
 * import { extractBulk } from "./mod.ts";
 * for await (const r of extractBulk(["videos/"], { task: "keyframes" })) {
 *   if ("status" in r) console.log(r.file, r.status);
 * }
 * ```
 */
export function extractBulk(
  inputs: readonly string[],
  options: BulkOptions = {},
): AsyncGenerator<VxRecord> {
  const records = extractBulkRecords(inputs, options);
  return options.draw ? drawRecords(records, options) : records;
}

async function* extractBulkRecords(
  inputs: readonly string[],
  options: BulkOptions,
): AsyncGenerator<VxRecord> {
  let paths = await expandInputs(inputs);
  if (options.shard) paths = shard(paths, options.shard.index, options.shard.count);
  if (options.skip) paths = paths.filter((p) => !options.skip!.has(p));
  const task: TaskOptions = pickTaskOptions(options);
  const pool = defaultPool(undefined, options.inferrers);
  const nDecoders = options.decoders ?? pool.decoders;
  const nInferrers = options.inferrers ?? pool.inferrers;
  const threads = options.threads ?? pool.threads;
  const timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  const tracer = options.tracer;
  const gate = InflightGate.create(
    options.maxInflightFrames ?? Math.max(4, 4 * nInferrers),
    options.maxInflightBytes ?? DEFAULT_BULK_INFLIGHT_BYTES,
  );
  const t0 = now();
  tracer?.meta({
    mode: "bulk",
    maxInflightFrames: gate.maxFrames,
    maxInflightBytes: gate.maxBytes,
  });
  const inbox = new Channel<Event>();
  const queue = paths.map((path, id) => ({ id, path }));
  const progress: BulkProgress = {
    total: paths.length,
    done: 0,
    failed: 0,
    keyframes: 0,
    elapsedMs: 0,
  };
  const report = () => options.onProgress?.({ ...progress, elapsedMs: now() - t0 });
  if (paths.length === 0) return;
  if (options.framesDir !== undefined) await Deno.mkdir(options.framesDir, { recursive: true });

  let module: WebAssembly.Module | undefined;
  /** Whether stderr was told that inference left WebGPU during the run. */
  let leftGpu = false;
  // Where the task can tell its frames without a session, decoding starts at once.
  let anyReady = false;
  let spec: FrameSpec | undefined = await TASKS[task.task].frameSpec?.(task);
  const decoders: DecoderSlot[] = [];
  const inferrers: InferrerSlot[] = [];
  const inflight = new Map<number, InFlight>();
  const finished: FileState[] = [];
  let seq = 0;
  let active = 0;

  const startDecoder = (at: number) => {
    const slot = { ready: false, lane: decodeLane(at) } as DecoderSlot;
    slot.handle = spawnDecoder((e) => inbox.push({ from: "decode", slot, e }));
    slot.handle.post({
      type: "init",
      module,
      gate: { buffer: gate.buffer, maxFrames: gate.maxFrames, maxBytes: gate.maxBytes },
    });
    decoders[at] = slot;
  };
  const startInferrer = (at: number) => {
    const slot = { ready: false, outstanding: new Set(), lane: inferLane(at) } as InferrerSlot;
    slot.handle = spawnInferrer((e) => inbox.push({ from: "infer", slot, e }));
    slot.handle.post({ type: "init", task, threads, backend: options.backend });
    if (options.loseGpu) slot.handle.post({ type: "lose-gpu" });
    inferrers[at] = slot;
  };

  const fileFailed = (file: FileState, reason: string) => {
    file.error ??= reason;
    settle(file);
  };
  const settle = (file: FileState) => {
    if (file.settled) return;
    const complete = file.error !== undefined
      ? file.outstanding === 0
      : file.decoded !== undefined && file.records.length === file.decoded;
    if (complete) {
      file.settled = true;
      finished.push(file);
    }
  };
  /** A frame's answer came back (or never will): it leaves the in-flight set and the gate. */
  const land = (slot: InferrerSlot, seq: number): InFlight | undefined => {
    const f = inflight.get(seq);
    if (!f) return undefined;
    inflight.delete(seq);
    slot.outstanding.delete(seq);
    gate.release(f.bytes);
    f.file.outstanding--;
    return f;
  };
  const dropInferrer = (slot: InferrerSlot, reason: string) => {
    for (const seq of [...slot.outstanding]) {
      const f = land(slot, seq);
      if (f) fileFailed(f.file, reason);
    }
  };

  const timer = setInterval(() => inbox.push({ from: "tick" }), 1000);
  for (let i = 0; i < nInferrers; i++) startInferrer(i);
  // The first decoder compiles the core; the others get the compiled module from it.
  startDecoder(0);
  try {
    for (;;) {
      // Hand out files to idle decoders.
      for (const d of decoders) {
        if (!spec || !d?.ready || d.file || queue.length === 0) continue;
        const next = queue.shift()!;
        const file: FileState = {
          ...next,
          start: now(),
          records: [],
          outstanding: 0,
        };
        d.file = file;
        active++;
        report();
        if (options.killDecoderOn && file.path.endsWith(options.killDecoderOn)) {
          d.handle.post({ type: "die", id: file.id });
          continue;
        }
        d.handle.post({
          type: "decode",
          id: file.id,
          req: {
            path: file.path,
            spec,
            jpegDir: options.framesDir,
            // The id keeps same-named files from different folders apart.
            jpegPrefix: `${file.id}_${baseName(file.path)}`,
            timeoutMs,
            stream: options.stream,
          },
        });
      }
      // Write out finished files.
      while (finished.length > 0) {
        const file = finished.shift()!;
        active--;
        const ms = Math.round(now() - file.start);
        let status: StatusRecord;
        if (file.error !== undefined) {
          progress.failed++;
          status = { file: file.path, status: "error", error: file.error };
        } else {
          if (file.damaged !== undefined) progress.failed++;
          file.records.sort((a, b) => a.index - b.index);
          let written: FrameRecord | undefined;
          for (const r of file.records) {
            checkPtsOrder(written, r);
            written = r;
            const handed = tracer ? now() : 0;
            yield r;
            tracer?.span(SPAN.output, MAIN_LANE, handed, now(), {
              file: r.file,
              index: r.index,
              pts: r.pts,
            });
          }
          tracer?.memory?.(Deno.memoryUsage().rss);
          progress.keyframes += file.records.length;
          status = file.damaged !== undefined
            ? { file: file.path, status: "error", error: file.damaged }
            : { file: file.path, status: "ok", keyframes: file.records.length, ms };
        }
        progress.done++;
        tracer?.span("file", MAIN_LANE, file.start, now(), {
          file: file.path,
          status: status.status,
        });
        yield status;
        report();
      }
      if (queue.length === 0 && active === 0) return;

      const ev = await inbox.next();
      if (ev.from === "tick") {
        for (let i = 0; i < decoders.length; i++) {
          const d = decoders[i];
          if (d?.file && now() - d.file.start > timeoutMs + WATCHDOG_GRACE_MS) {
            // ffmpeg did not stop by itself: the worker goes, the file fails, a new one comes.
            d.handle.terminate();
            fileFailed(d.file, `timed out after ${Math.round(timeoutMs / 1000)} s`);
            startDecoder(i);
          }
        }
        continue;
      }
      if (ev.from === "decode") {
        const { slot, e } = ev;
        if (decoders[decoders.indexOf(slot)] !== slot) continue; // a replaced worker
        const file = slot.file;
        if (e.type === "crash" || (e.type === "error" && !e.user && e.id === null)) {
          slot.handle.terminate();
          slot.file = undefined;
          if (file) fileFailed(file, `decode worker failed: ${e.message}`);
          else if (!slot.ready) throw new VxError("ffmpeg core", e.message, "internal");
          startDecoder(decoders.indexOf(slot));
          continue;
        }
        switch (e.type) {
          case "ready":
            slot.ready = true;
            if (tracer) traceCoreLoaded(tracer, slot.lane, e);
            if (!module) {
              module = e.module;
              for (let i = 1; i < nDecoders; i++) startDecoder(i);
            }
            break;
          case "frame": {
            const f = e.frame;
            if (!file) break;
            if (tracer) traceFrame(tracer, slot.lane, file.path, e);
            const bytes = f.data.byteLength;
            // A worker still starting queues the frame behind its init.
            const target = inferrers.reduce((a, b) =>
              b.outstanding.size < a.outstanding.size ? b : a
            );
            const id = seq++;
            inflight.set(id, {
              file,
              index: f.index,
              pts: f.pts,
              width: f.srcWidth,
              height: f.srcHeight,
              bytes,
              image: f.image,
              posted: e.posted,
              inferrer: target,
            });
            file.outstanding++;
            target.outstanding.add(id);
            target.handle.post({ type: "frame", seq: id, frame: f, sent: now() }, [f.data.buffer]);
            tracer?.counter("in-flight", gate.levels());
            break;
          }
          case "corrupt":
            break;
          case "done":
            slot.file = undefined;
            if (file) {
              file.decoded = e.keyframes;
              if (e.corrupt.length > 0) file.damaged = describeDamage(e.corrupt, e.keyframes);
              if (tracer) traceFileDecoded(tracer, slot.lane, file.path, e);
              if (e.retried) tracer?.fallback?.("retry", `${file.path}: ${e.retried}`);
              if (e.exact) tracer?.fallback?.("exact", `${file.path}: ${e.exact}`);
              settle(file);
            }
            break;
          case "error":
            slot.file = undefined;
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
        startInferrer(inferrers.indexOf(slot));
        continue;
      }
      switch (e.type) {
        case "ready":
          slot.ready = true;
          if (!anyReady) noticeFallback(e, options); // once a run, not once a worker
          anyReady = true;
          spec ??= e.frameSpec;
          if (tracer) traceTaskReady(tracer, slot.lane, task.task, e);
          break;
        case "fallback":
          // Every worker's move is traced; stderr hears the first of the run.
          noticeFallback(e, { tracer, onNotice: leftGpu ? undefined : options.onNotice });
          leftGpu = true;
          break;
        case "result": {
          const f = land(slot, e.seq);
          if (!f) break;
          if (tracer) {
            tracer.counter("in-flight", gate.levels());
            traceResult(tracer, slot.lane, {
              file: f.file.path,
              index: f.index,
              pts: f.pts,
              posted: f.posted,
            }, e.timing);
          }
          const record: FrameRecord = {
            file: f.file.path,
            index: f.index,
            pts: f.pts,
            width: f.width,
            height: f.height,
            task: task.task,
            results: e.results,
          };
          if (f.image !== undefined) record.image = f.image;
          f.file.records.push(record);
          if (f.file.error !== undefined || f.file.decoded !== undefined) settle(f.file);
          break;
        }
        case "error": {
          if (e.seq === null) {
            // The task cannot load: no file can be processed.
            const subject = task.model ?? task.task;
            throw new VxError(subject, e.message.replace(`${subject}: `, ""), "model");
          }
          const f = land(slot, e.seq);
          if (!f) break;
          fileFailed(f.file, `inference failed on keyframe ${f.index}: ${e.message}`);
          break;
        }
      }
    }
  } finally {
    clearInterval(timer);
    for (const d of decoders) d?.handle.terminate();
    for (const s of inferrers) s?.handle.terminate();
    tracer?.span(SPAN.run, MAIN_LANE, t0, now(), { files: paths.length });
  }
}
