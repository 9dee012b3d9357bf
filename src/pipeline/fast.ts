/**
 * `fast`: one file, lowest latency. The decode worker and the inference worker load in
 * parallel; each keyframe goes to inference as soon as it is decoded, and each record is
 * yielded as soon as its result is back, while later keyframes are still decoding.
 *
 * @module
 */

import { type Selection, selectionOf } from "../decode/selection.ts";
import { VxError } from "../errors.ts";
import type { BackendChoice } from "../infer/backend.ts";
import type { FrameRecord, StatusRecord, VxRecord } from "../records.ts";

/** A file's status when it was read: `pastEnd` names `at:` times past its last frame. */
export type OkStatus = Extract<StatusRecord, { status: "ok" }>;
import { pickTaskOptions, type TaskOptions } from "../tasks/task.ts";
import { drawRecords } from "../draw/drawer.ts";
import type { Tracer } from "./tracer.ts";
import type { CallOptions } from "./scheduler.ts";
import type { FileIdentity } from "./file_order.ts";
import { createScheduler, type Mode } from "./modes.ts";
import { shownName } from "../input/source.ts";
import type { CheckedFiles } from "../input/checked_file.ts";

export {
  DEFAULT_INFLIGHT_BYTES,
  DEFAULT_INFLIGHT_FRAMES,
  FAST_THREADS,
  fastDecoders,
  fastInferrers,
} from "./modes.ts";
import { FAULTS, type WithFaults } from "./faults.ts";

/** Options of {@linkcode extract}. */
export interface ExtractOptions extends Partial<TaskOptions>, WithFaults {
  /** What its records and errors call the file; default its path (see `CallOptions.name`). */
  name?: string;
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
  /** Inference backend: `wasm` (default), `webgpu`, or `auto` (WebGPU on a hardware GPU). */
  backend?: BackendChoice;
  /** Receives one line when inference falls back to another backend, and why. */
  onNotice?: (line: string) => void;
  /** The video stream to decode, by index (`probe` lists them); default: ffmpeg's choice. */
  stream?: number;
  /**
   * Which frames become records (`--select`): `keyframes` (the default), `every:S`,
   * `at:T1,T2,…`, `scenes[:TH]`, `scenes+keyframes[:TH]`, as text or parsed.
   */
  select?: Selection | string;
  /** Aborting it cancels the file: the iteration ends without an error, its frames are freed. */
  signal?: AbortSignal;
  /** The file `extract` may read, by device and inode (see `CallOptions.identity`). */
  identity?: FileIdentity;
  /**
   * The task's files (model, label file) as the caller checked them, by real path, with their
   * device and inode (`vx serve --models`): a path that leads to another file by then fails.
   */
  checked?: CheckedFiles;
  /**
   * Inference workers; default {@linkcode fastInferrers}. Each keyframe goes to the first free
   * one, and records still leave in pts order. `--sequential` always uses one.
   */
  inferrers?: number;
}

/** The default per-file timeout: ffmpeg stops itself after it. */
export const DEFAULT_TIMEOUT_MS = 300_000;
export { WATCHDOG_GRACE_MS } from "./scheduler.ts";

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

async function* extractRecords(
  input: string,
  options: ExtractOptions,
): AsyncGenerator<FrameRecord> {
  const mode: Mode = options.sequential
    ? "fast --sequential"
    : options.decodeFirst
    ? "fast --decode-first"
    : "fast";
  // The baselines hold every keyframe of the file: they take no in-flight bound.
  const bounded = mode === "fast";
  const scheduler = createScheduler(mode, pickTaskOptions(options), {
    inferrers: options.inferrers,
    threads: options.threads,
    backend: options.backend,
    maxInflightFrames: bounded ? options.maxInflightFrames : undefined,
    maxInflightBytes: bounded ? options.maxInflightBytes : undefined,
    tracer: options.tracer,
    onNotice: options.onNotice,
    faults: options[FAULTS],
    checked: options.checked,
  });
  try {
    yield* fastRecords(scheduler.run([input], fastCall(options)), options.name ?? shownName(input));
  } finally {
    await scheduler.close();
  }
}

/** How `fast` runs a file: records stream out in pts order as soon as they are ready. */
export function fastCall(options: ExtractOptions): CallOptions {
  return {
    streaming: true,
    jpegPrefix: (file) => baseName(shownName(file.path)),
    framesDir: options.framesDir,
    timeoutMs: options.timeoutMs ?? DEFAULT_TIMEOUT_MS,
    stream: options.stream,
    select: selectionOf(options.select),
    faults: options[FAULTS],
    name: options.name,
    signal: options.signal,
    identity: options.identity,
  };
}

/**
 * A file's records as `fast` gives them: its error status becomes a {@linkcode VxError}; its ok
 * status is what the generator returns.
 */
export async function* fastRecords(
  records: AsyncIterable<VxRecord>,
  name: string,
): AsyncGenerator<FrameRecord, OkStatus | undefined> {
  let ok: OkStatus | undefined;
  for await (const r of records) {
    if (!("status" in r)) yield r;
    else if (r.status === "error") {
      throw new VxError(name, r.error.replace(`${name}: `, ""), "input");
    } else ok = r;
  }
  return ok;
}
