/**
 * `bulk`: many files, the most work per core, on the one scheduler (`scheduler.ts`): decode
 * workers take files from a queue, keyframes go to the least-busy inference worker, one
 * in-flight gate bounds memory, and each file's records come out together, followed by its
 * status record; a bad file gets an error status and the others go on.
 *
 * @module
 */

import type { VxRecord } from "../records.ts";
import { pickTaskOptions } from "../tasks/task.ts";
import { baseName, DEFAULT_TIMEOUT_MS, type ExtractOptions } from "./fast.ts";
import { drawRecords } from "../draw/drawer.ts";
import { expandInputs, shard } from "./inputs.ts";
import { type BulkProgress, type CallOptions, Scheduler } from "./scheduler.ts";

export type { BulkProgress } from "./scheduler.ts";

/** Options of {@linkcode extractBulk}. */
export interface BulkOptions extends Omit<ExtractOptions, "sequential" | "decodeFirst"> {
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
  const paths = await bulkPaths(inputs, options);
  if (paths.length === 0) return;
  const pool = defaultPool(undefined, options.inferrers);
  const inferrers = options.inferrers ?? pool.inferrers;
  const scheduler = new Scheduler({
    task: pickTaskOptions(options),
    decoders: options.decoders ?? pool.decoders,
    inferrers,
    threads: options.threads ?? pool.threads,
    backend: options.backend,
    maxInflightFrames: options.maxInflightFrames ?? Math.max(4, 4 * inferrers),
    maxInflightBytes: options.maxInflightBytes ?? DEFAULT_BULK_INFLIGHT_BYTES,
    mode: "bulk",
    tracer: options.tracer,
    onNotice: options.onNotice,
    loseGpu: options.loseGpu,
  });
  try {
    yield* scheduler.run(paths, bulkCall(options));
  } finally {
    await scheduler.close();
  }
}

/** The files a bulk call runs: `inputs` expanded, then its shard, less the files to skip. */
export async function bulkPaths(
  inputs: readonly string[],
  options: Pick<BulkOptions, "shard" | "skip">,
): Promise<string[]> {
  let paths = await expandInputs(inputs);
  if (options.shard) paths = shard(paths, options.shard.index, options.shard.count);
  if (options.skip) paths = paths.filter((p) => !options.skip!.has(p));
  return paths;
}

/** How `bulk` writes a caller's files: a file at a time, with its status record. */
export function bulkCall(options: BulkOptions): CallOptions {
  return {
    streaming: false,
    // The id keeps same-named files from different folders apart.
    jpegPrefix: (file) => `${file.id}_${baseName(file.path)}`,
    framesDir: options.framesDir,
    timeoutMs: options.timeoutMs ?? DEFAULT_TIMEOUT_MS,
    stream: options.stream,
    killDecoderOn: options.killDecoderOn,
    onProgress: options.onProgress,
  };
}
