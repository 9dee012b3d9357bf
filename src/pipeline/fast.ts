/**
 * `fast`: one file, lowest latency. The decode worker and the inference worker load in
 * parallel; each keyframe goes to inference as soon as it is decoded, and each record is
 * yielded as soon as its result is back, while later keyframes are still decoding.
 *
 * @module
 */

import { now } from "../clock.ts";
import { type CorruptKeyframe, describeDamage } from "../decode/keyframes.ts";
import type { DecodeEvent } from "../decode/protocol.ts";
import { VxError } from "../errors.ts";
import type { BackendChoice } from "../infer/backend.ts";
import type { InferEvent } from "../infer/protocol.ts";
import { checkPtsOrder, type FrameRecord, type VxRecord } from "../records.ts";
import { type Frame, type FrameSpec, pickTaskOptions, type TaskOptions } from "../tasks/task.ts";
import { drawRecords } from "../draw/drawer.ts";
import { noticeFallback } from "./backend_notice.ts";
import { Channel } from "./channel.ts";
import { TASKS } from "../tasks/registry.ts";
import { sameSpec } from "../decode/geometry.ts";
import { InflightGate } from "./gate.ts";
import { decodeLane, inferLane, MAIN_LANE, SPAN, type Tracer } from "./tracer.ts";
import {
  traceCoreLoaded,
  traceFileDecoded,
  traceFrame,
  traceResult,
  traceTaskReady,
} from "./trace_events.ts";
import { type CrashEvent, spawnDecoder, spawnInferrer } from "./workers.ts";
import { type CallOptions, Scheduler } from "./scheduler.ts";

/** Options of {@linkcode extract}. */
export interface ExtractOptions extends Partial<TaskOptions> {
  /** inference threads (onnxruntime-web wasm threads). */
  threads?: number;
  /** Also write each keyframe as a JPEG into this directory. */
  framesDir?: string;
  /** Draw each keyframe's results on its JPEG (needs `framesDir`); see `src/draw/drawer.ts`. */
  draw?: boolean;
  /** Decode every keyframe first, then infer: the non-streaming baseline. */
  sequential?: boolean;
  /**
   * Decode every keyframe first, then infer them on the whole pool (`--jobs`): what overlapping
   * decoding with inference buys, measured against `fast` by the bench.
   */
  decodeFirst?: boolean;
  /** At most this many decoded frames wait for inference; decoding pauses beyond. */
  maxInflightFrames?: number;
  /** At most this many bytes of decoded frames wait for inference. */
  maxInflightBytes?: number;
  /** Abort a file whose decoding takes longer than this. */
  timeoutMs?: number;
  /** Receives spans and counters for `--debug`. */
  tracer?: Tracer;
  /**
   * Tests only: the decode worker dies instead of decoding (an uncaught error, as on a wasm
   * out-of-memory), so the report of a dead worker can be tested for real.
   */
  killDecoder?: boolean;
  /**
   * Tests only: the inference worker destroys its WebGPU device once set up, as a GPU reset
   * would, so the move to wasm mid-run can be tested for real.
   */
  loseGpu?: boolean;
  /** Inference backend: `wasm` (default), `webgpu`, or `auto` (WebGPU on a hardware GPU). */
  backend?: BackendChoice;
  /** Receives one line when inference falls back to another backend, and why. */
  onNotice?: (line: string) => void;
  /** The video stream to decode, by index (`probe` lists them); default: ffmpeg's choice. */
  stream?: number;
  /** Aborting it cancels the file: the iteration ends without an error, its frames are freed. */
  signal?: AbortSignal;
  /**
   * Inference workers; default {@linkcode fastInferrers}. Each keyframe goes to the first free
   * one, and records still leave in pts order. `--sequential` always uses one.
   */
  inferrers?: number;
}

/**
 * `fast`'s inference workers by default: one per core, each session on one wasm thread. Inference
 * is about five times the decode cost of a keyframe (YOLOX-Nano 78 ms against ~15 ms), so once
 * sessions exist the latency path spreads it over every core. Measured cold on 2 cores, since
 * the second worker sets up on the first one's compiled wasm (bench/run.ts, BENCHMARKS.md,
 * 2026-11-27): 3308 against 3394 ms for `--jobs 1` on 20 keyframes (medians of 5), and in one
 * `bench/scale.ts` run 1.12× faster on 20 keyframes and 1.19× on 100. Before that change two
 * sessions created side by side made this default slower than `--jobs 1` (4214 against 3947 ms).
 * In a warm engine the sessions already exist.
 */
export function fastInferrers(cores = navigator.hardwareConcurrency ?? 1): number {
  return Math.max(1, cores);
}

type Event =
  | { from: "decode"; e: DecodeEvent | CrashEvent }
  | { from: "infer"; e: InferEvent | CrashEvent }
  | { from: "watchdog" };

/** The default per-file timeout: ffmpeg stops itself after it. */
export const DEFAULT_TIMEOUT_MS = 300_000;
export { WATCHDOG_GRACE_MS } from "./scheduler.ts";
import { WATCHDOG_GRACE_MS } from "./scheduler.ts";

/**
 * Inference threads for `fast` unless told. One: a session with two wasm threads takes ~0.5 s
 * longer to create and its first run is slower, so on the 20-keyframe benchmark one thread gave
 * both the earlier first record and the shorter wall time, leaving the other core to the
 * decoder (bench/run.ts; BENCHMARKS.md). Long inputs amortise that: pass `threads: 2` there.
 */
export const FAST_THREADS = 1;

/** Default bound on frames waiting for inference: enough to hide decode jitter. */
export const DEFAULT_INFLIGHT_FRAMES = 8;
/** Default bound on bytes waiting for inference. */
export const DEFAULT_INFLIGHT_BYTES = 64 << 20;

/** `fast` has one worker of each kind. */
const DECODE_LANE = decodeLane(0);
const INFER_LANE = inferLane(0);
/** A gate wait shorter than this is the atomics themselves, not backpressure. */

/** A file's name without its extension, safe to use in the names of its keyframes' JPEGs. */
export function baseName(path: string): string {
  const name = path.slice(path.lastIndexOf("/") + 1);
  const dot = name.lastIndexOf(".");
  return (dot > 0 ? name.slice(0, dot) : name).replace(/[^\w.-]/g, "_");
}

/**
 * Extracts the keyframes of `input` and runs a task on each, yielding one record per keyframe
 * in pts order as soon as it is ready. Throws {@linkcode VxError} naming the file and the reason
 * when the input or the model cannot be processed.
 */
export function extract(
  input: string,
  options: ExtractOptions = {},
): AsyncGenerator<FrameRecord> {
  const records = extractRecords(input, options);
  return options.draw ? drawRecords(records, options) : records;
}

/** The in-flight bound of the non-streaming baselines: every keyframe of the file waits. */
const UNBOUNDED_FRAMES = 1 << 30;
const UNBOUNDED_BYTES = 2 ** 31 - 1;

async function* extractRecords(
  input: string,
  options: ExtractOptions,
): AsyncGenerator<FrameRecord> {
  if (options.sequential) return yield* extractSequential(input, options);
  const inferrers = options.inferrers ?? fastInferrers();
  const scheduler = new Scheduler({
    task: pickTaskOptions(options),
    decoders: 1,
    inferrers,
    threads: options.threads ?? FAST_THREADS,
    backend: options.backend,
    // Decoding first holds every keyframe, as --sequential does.
    maxInflightFrames: options.decodeFirst
      ? UNBOUNDED_FRAMES
      : options.maxInflightFrames ?? Math.max(DEFAULT_INFLIGHT_FRAMES, 4 * inferrers),
    maxInflightBytes: options.decodeFirst
      ? UNBOUNDED_BYTES
      : options.maxInflightBytes ?? DEFAULT_INFLIGHT_BYTES,
    decodeFirst: options.decodeFirst,
    mode: options.decodeFirst ? "fast --decode-first" : "fast",
    tracer: options.tracer,
    onNotice: options.onNotice,
    loseGpu: options.loseGpu,
  });
  try {
    yield* fastRecords(scheduler.run([input], fastCall(input, options)), input);
  } finally {
    await scheduler.close();
  }
}

/** How `fast` runs a file: records stream out in pts order as soon as they are ready. */
export function fastCall(input: string, options: ExtractOptions): CallOptions {
  return {
    streaming: true,
    jpegPrefix: (file) => baseName(file.path),
    framesDir: options.framesDir,
    timeoutMs: options.timeoutMs ?? DEFAULT_TIMEOUT_MS,
    stream: options.stream,
    killDecoderOn: options.killDecoder ? input : undefined,
    signal: options.signal,
  };
}

/** A file's records as `fast` gives them: its error status becomes a {@linkcode VxError}. */
export async function* fastRecords(
  records: AsyncIterable<VxRecord>,
  input: string,
): AsyncGenerator<FrameRecord> {
  for await (const r of records) {
    if (!("status" in r)) yield r;
    else if (r.status === "error") {
      throw new VxError(input, r.error.replace(`${input}: `, ""), "input");
    }
  }
}

/**
 * The seed's non-streaming baseline, as it was: one decoder and one inference worker; the model
 * is loaded, then every keyframe decoded, then every keyframe inferred.
 */
async function* extractSequential(
  input: string,
  options: ExtractOptions,
): AsyncGenerator<FrameRecord> {
  const task: TaskOptions = pickTaskOptions(options);
  const tracer = options.tracer;
  const t0 = now();
  const inbox = new Channel<Event>();
  const sequential = options.sequential ?? false;
  const timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  let watchdog: ReturnType<typeof setTimeout> | undefined;
  const gate = sequential
    ? InflightGate.create(UNBOUNDED_FRAMES, UNBOUNDED_BYTES)
    : InflightGate.create(
      options.maxInflightFrames ?? DEFAULT_INFLIGHT_FRAMES,
      options.maxInflightBytes ?? DEFAULT_INFLIGHT_BYTES,
    );
  const decoder = spawnDecoder((e) => inbox.push({ from: "decode", e }));
  const inferrer = spawnInferrer((e) => inbox.push({ from: "infer", e }));
  try {
    decoder.post({
      type: "init",
      gate: { buffer: gate.buffer, maxFrames: gate.maxFrames, maxBytes: gate.maxBytes },
    });
    inferrer.post({
      type: "init",
      task,
      threads: options.threads ?? FAST_THREADS,
      backend: options.backend,
    });
    if (options.loseGpu) inferrer.post({ type: "lose-gpu" });
    tracer?.meta({
      mode: sequential ? "fast --sequential" : "fast",
      maxInflightFrames: gate.maxFrames,
      maxInflightBytes: gate.maxBytes,
    });
    if (options.framesDir !== undefined) await Deno.mkdir(options.framesDir, { recursive: true });

    // Where the task can tell its frames without a session, decoding starts at once. The
    // sequential baseline keeps the old order: model loaded, then decode all, then infer all.
    let spec: FrameSpec | undefined = sequential
      ? undefined
      : await TASKS[task.task].frameSpec?.(task);
    let decoderReady = false;
    let decodeStarted = false;
    let decoded: number | undefined;
    const held: { seq: number; frame: Frame; bytes: number }[] = [];
    const pending = new Map<
      number,
      { bytes: number; image?: string; pts: number; width: number; height: number; posted: number }
    >();
    const results = new Map<number, FrameRecord>();
    let nextOut = 0;
    let written: FrameRecord | undefined;
    // Damaged keyframes keep their index but yield no record; the run reports them at the end.
    const corrupt = new Map<number, CorruptKeyframe>();

    const send = (seq: number, frame: Frame) => {
      inferrer.post({ type: "frame", seq, frame, sent: now() }, [frame.data.buffer]);
    };

    for (;;) {
      if (spec && decoderReady && !decodeStarted) {
        decodeStarted = true;
        if (options.killDecoder) decoder.post({ type: "die", id: 0 });
        else {decoder.post({
            type: "decode",
            id: 0,
            req: {
              path: input,
              spec,
              jpegDir: options.framesDir,
              jpegPrefix: baseName(input),
              timeoutMs,
              stream: options.stream,
            },
          });}
        // ffmpeg checks its timeout between packets; a decoder stuck inside one is stopped here.
        watchdog = setTimeout(
          () => inbox.push({ from: "watchdog" }),
          timeoutMs + WATCHDOG_GRACE_MS,
        );
      }
      while (results.has(nextOut) || corrupt.has(nextOut)) {
        if (corrupt.has(nextOut)) {
          nextOut++;
          continue;
        }
        const record = results.get(nextOut)!;
        results.delete(nextOut);
        nextOut++;
        checkPtsOrder(written, record);
        written = record;
        const handed = tracer ? now() : 0;
        yield record;
        tracer?.span(SPAN.output, MAIN_LANE, handed, now(), {
          file: input,
          index: record.index,
          pts: record.pts,
        });
        tracer?.memory?.(Deno.memoryUsage().rss);
      }
      if (decoded !== undefined && nextOut === decoded + corrupt.size) {
        if (corrupt.size === 0) return;
        throw new VxError(input, describeDamage([...corrupt.values()], decoded));
      }

      const event = await inbox.next();
      if (event.from === "watchdog") {
        throw new VxError(input, `timed out after ${timeoutMs / 1000} s`);
      }
      const { from, e } = event;
      if (e.type === "crash") {
        throw new VxError(input, `${from} worker failed: ${e.message}`, "internal");
      }
      if (e.type === "error") {
        const kind = e.user ? (from === "infer" ? "model" : "input") : "internal";
        const subject = from === "infer" && e.user ? task.model ?? task.task : input;
        throw new VxError(subject, e.message.replace(`${subject}: `, ""), kind);
      }
      if (from === "decode") {
        const ev = e as DecodeEvent;
        if (ev.type === "ready") {
          decoderReady = true;
          if (tracer) traceCoreLoaded(tracer, DECODE_LANE, ev);
        } else if (ev.type === "frame") {
          const f = ev.frame;
          const seq = f.index;
          pending.set(seq, {
            bytes: f.data.byteLength,
            image: f.image,
            pts: f.pts,
            width: f.srcWidth,
            height: f.srcHeight,
            posted: ev.posted,
          });
          if (tracer) traceFrame(tracer, DECODE_LANE, input, ev);
          const frame = {
            index: f.index,
            pts: f.pts,
            srcWidth: f.srcWidth,
            srcHeight: f.srcHeight,
            width: f.width,
            height: f.height,
            data: f.data,
          };
          if (sequential) held.push({ seq, frame, bytes: f.data.byteLength });
          else send(seq, frame);
          tracer?.counter("in-flight", gate.levels());
        } else if (ev.type === "corrupt") {
          corrupt.set(ev.note.index, ev.note);
        } else if (ev.type === "done") {
          decoded = ev.keyframes;
          if (tracer) traceFileDecoded(tracer, DECODE_LANE, input, ev);
          if (ev.retried) tracer?.fallback?.("retry", `${input}: ${ev.retried}`);
          if (ev.exact) tracer?.fallback?.("exact", `${input}: ${ev.exact}`);
          if (sequential) { for (const h of held.splice(0)) send(h.seq, h.frame); }
        }
      } else {
        const ev = e as InferEvent;
        if (ev.type === "ready") {
          if (spec && !sameSpec(spec, ev.frameSpec)) {
            throw new VxError(input, "the task's frames changed once its model loaded", "internal");
          }
          spec = ev.frameSpec;
          if (tracer) traceTaskReady(tracer, INFER_LANE, task.task, ev);
          noticeFallback(ev, options);
        } else if (ev.type === "fallback") {
          noticeFallback(ev, options);
        } else if (ev.type === "result") {
          const p = pending.get(ev.seq)!;
          pending.delete(ev.seq);
          gate.release(p.bytes);
          tracer?.counter("in-flight", gate.levels());
          if (tracer) {
            traceResult(tracer, INFER_LANE, {
              file: input,
              index: ev.seq,
              pts: p.pts,
              posted: p.posted,
            }, ev.timing);
          }
          const record: FrameRecord = {
            file: input,
            index: ev.seq,
            pts: p.pts,
            width: p.width,
            height: p.height,
            task: task.task,
            results: ev.results,
          };
          if (p.image !== undefined) record.image = p.image;
          results.set(ev.seq, record);
        }
      }
    }
  } finally {
    clearTimeout(watchdog);
    decoder.terminate();
    inferrer.terminate();
    tracer?.span(SPAN.run, MAIN_LANE, t0, now(), { file: input });
  }
}
