/**
 * The spans a worker event stands for, in one place for `fast` and `bulk`: both pipelines hand
 * their decode and inference events here when a tracer is attached.
 *
 * @module
 */

import type { DecodeEvent } from "../decode/decode_messages.ts";
import type { InferEvent, InferTiming } from "../tasks/infer_messages.ts";
import { SPAN, type Tracer, TRANSFER_LANE } from "./tracer.ts";

/** Waits shorter than this are not worth a span. */
const MIN_WAIT_MS = 0.1;

type Of<U, T> = Extract<U, { type: T }>;

/** A decode worker's core finished loading. */
export function traceCoreLoaded(tracer: Tracer, lane: string, ev: Of<DecodeEvent, "ready">) {
  tracer.span(SPAN.loadCore, lane, ev.loadStart, ev.loadEnd, { decoder: ev.decoder.name });
  tracer.meta({ decoder: ev.decoder });
}

/** A keyframe left a decoder: its decode, filter and backpressure spans. */
export function traceFrame(
  tracer: Tracer,
  lane: string,
  file: string,
  ev: Of<DecodeEvent, "frame">,
) {
  const f = ev.frame;
  const at = { file, index: f.index, pts: f.pts };
  tracer.span(SPAN.decode, lane, f.decodeStart, f.filterStart, {
    ...at,
    readBytes: f.readBytes,
    readMs: f.readMs,
  });
  tracer.span(SPAN.scale, lane, f.filterStart, f.decodeEnd, at);
  if (ev.waitedMs >= MIN_WAIT_MS) {
    tracer.span(SPAN.wait, lane, ev.posted - ev.waitedMs, ev.posted, at);
  }
}

/** A decoder finished a file. */
export function traceFileDecoded(
  tracer: Tracer,
  lane: string,
  file: string,
  ev: Of<DecodeEvent, "done">,
) {
  tracer.span(SPAN.probe, lane, ev.probeStart, ev.probeEnd, { file });
  tracer.span(SPAN.decodeFile, lane, ev.start, ev.end, {
    file,
    keyframes: ev.keyframes,
    path: ev.path,
    ...(ev.index === undefined ? {} : { index: ev.index }),
    ...(ev.pathReason === undefined ? {} : { pathReason: ev.pathReason }),
    bytesRead: ev.bytesRead,
    ...(ev.network === undefined ? {} : {
      requests: ev.network.requests,
      bytesFetched: ev.network.bytes,
      networkWaitMs: Math.round(ev.network.waitMs),
    }),
    ...(ev.select === undefined ? {} : {
      framesDecoded: ev.select.decoded,
      framesSelected: ev.select.selected,
      packetsRead: ev.select.packets,
      packetsDecoded: ev.select.sent,
      seeks: ev.select.seeks,
      selectDecodeMs: Math.round(ev.select.decodeMs),
    }),
  });
}

/**
 * An inference worker set up its task. The `first` of a run also traces the models that were
 * meant to run from an `.ort` but did not, and why: every worker loads the same files.
 */
export function traceTaskReady(
  tracer: Tracer,
  lane: string,
  task: string,
  ev: Of<InferEvent, "ready">,
  first: boolean,
) {
  tracer.span(SPAN.setUpTask, lane, ev.loadStart, ev.loadEnd, { task });
  for (const s of ev.sessions) {
    tracer.span(SPAN.createSession, lane, s.start, s.end, { model: s.path });
  }
  tracer.meta({
    backend: ev.backend,
    threads: ev.threads,
    workerThreads: { [lane]: ev.threads },
    models: ev.models,
  });
  if (ev.adapter) tracer.meta({ adapter: ev.adapter });
  for (const m of first ? ev.models : []) {
    if (m.optimised && "fallback" in m.optimised) {
      tracer.fallback?.("optimised model", m.optimised.fallback);
    }
  }
}

/** A keyframe's result came back: its transfer and inference stages. */
export function traceResult(
  tracer: Tracer,
  lane: string,
  at: { file: string; index: number; pts: number; posted: number },
  timing: InferTiming,
) {
  tracer.span(SPAN.transfer, TRANSFER_LANE, at.posted, timing.received, {
    file: at.file,
    index: at.index,
    pts: at.pts,
    toMainMs: timing.sent - at.posted,
    toWorkerMs: timing.received - timing.sent,
  });
  tracer.inferred(at.file, at.index, at.pts, timing, lane);
}
