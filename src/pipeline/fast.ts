/**
 * `fast`: one file, lowest latency. The decode worker and the inference worker load in
 * parallel; each keyframe goes to inference as soon as it is decoded, and each record is
 * yielded as soon as its result is back, while later keyframes are still decoding.
 *
 * @module
 */

import { now } from "../clock.ts";
import type { DecodeEvent } from "../decode/protocol.ts";
import { VxError } from "../errors.ts";
import type { InferEvent } from "../infer/protocol.ts";
import type { FrameRecord } from "../records.ts";
import type { Frame, FrameSpec, TaskOptions } from "../tasks/task.ts";
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
import { type CrashEvent, spawnDecoder, spawnInferrer } from "./workers.ts";

/** Options of {@linkcode extract}. */
export interface ExtractOptions extends Partial<TaskOptions> {
  /** inference threads (onnxruntime-web wasm threads). */
  threads?: number;
  /** Also write each keyframe as a JPEG into this directory. */
  framesDir?: string;
  /** Decode every keyframe first, then infer: the non-streaming baseline. */
  sequential?: boolean;
  /** At most this many decoded frames wait for inference; decoding pauses beyond. */
  maxInflightFrames?: number;
  /** At most this many bytes of decoded frames wait for inference. */
  maxInflightBytes?: number;
  /** Abort a file whose decoding takes longer than this. */
  timeoutMs?: number;
  /** Receives spans and counters for `--debug`. */
  tracer?: Tracer;
}

type Event =
  | { from: "decode"; e: DecodeEvent | CrashEvent }
  | { from: "infer"; e: InferEvent | CrashEvent };

/** Default bound on frames waiting for inference: enough to hide decode jitter. */
export const DEFAULT_INFLIGHT_FRAMES = 8;
/** Default bound on bytes waiting for inference. */
export const DEFAULT_INFLIGHT_BYTES = 64 << 20;

/** `fast` has one worker of each kind. */
const DECODE_LANE = decodeLane(0);
const INFER_LANE = inferLane(0);
/** A gate wait shorter than this is the atomics themselves, not backpressure. */

function baseName(path: string): string {
  const name = path.slice(path.lastIndexOf("/") + 1);
  const dot = name.lastIndexOf(".");
  return (dot > 0 ? name.slice(0, dot) : name).replace(/[^\w.-]/g, "_");
}

/**
 * Extracts the keyframes of `input` and runs a task on each, yielding one record per keyframe
 * in pts order as soon as it is ready. Throws {@linkcode VxError} naming the file and the reason
 * when the input or the model cannot be processed.
 */
export async function* extract(
  input: string,
  options: ExtractOptions = {},
): AsyncGenerator<FrameRecord> {
  const task: TaskOptions = {
    task: options.task ?? "ocr",
    model: options.model,
    labels: options.labels,
    score: options.score,
  };
  const tracer = options.tracer;
  const t0 = now();
  const inbox = new Channel<Event>();
  const sequential = options.sequential ?? false;
  const gate = sequential ? InflightGate.create(1 << 30, 2 ** 31 - 1) : InflightGate.create(
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
    inferrer.post({ type: "init", task, threads: options.threads });
    tracer?.meta({
      mode: sequential ? "fast --sequential" : "fast",
      maxInflightFrames: gate.maxFrames,
      maxInflightBytes: gate.maxBytes,
    });
    if (options.framesDir !== undefined) await Deno.mkdir(options.framesDir, { recursive: true });

    let spec: FrameSpec | undefined;
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

    const send = (seq: number, frame: Frame) => {
      inferrer.post({ type: "frame", seq, frame, sent: now() }, [frame.data.buffer]);
    };

    for (;;) {
      if (spec && decoderReady && !decodeStarted) {
        decodeStarted = true;
        decoder.post({
          type: "decode",
          id: 0,
          req: {
            path: input,
            spec,
            jpegDir: options.framesDir,
            jpegPrefix: baseName(input),
            timeoutMs: options.timeoutMs,
          },
        });
      }
      while (results.has(nextOut)) {
        const record = results.get(nextOut)!;
        results.delete(nextOut);
        nextOut++;
        const handed = tracer ? now() : 0;
        yield record;
        tracer?.span(SPAN.output, MAIN_LANE, handed, now(), {
          file: input,
          index: record.index,
          pts: record.pts,
        });
        tracer?.memory?.(Deno.memoryUsage().rss);
      }
      if (decoded !== undefined && nextOut === decoded) return;

      const { from, e } = await inbox.next();
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
        } else if (ev.type === "done") {
          decoded = ev.keyframes;
          if (tracer) traceFileDecoded(tracer, DECODE_LANE, input, ev);
          if (sequential) { for (const h of held.splice(0)) send(h.seq, h.frame); }
        }
      } else {
        const ev = e as InferEvent;
        if (ev.type === "ready") {
          spec = ev.frameSpec;
          if (tracer) traceTaskReady(tracer, INFER_LANE, task.task, ev);
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
    decoder.terminate();
    inferrer.terminate();
    tracer?.span(SPAN.run, MAIN_LANE, t0, now(), { file: input });
  }
}
