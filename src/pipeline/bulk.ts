/**
 * `bulk`: many files, the most work per core, on the one scheduler (`scheduler.ts`): decode
 * workers take files from a queue, keyframes go to the least-busy inference worker, one
 * in-flight gate bounds memory, and each file's records come out together, followed by its
 * status record; a bad file gets an error status and the others go on.
 *
 * @module
 */

import { selectionOf } from "../decode/selection.ts";
import type { VxRecord } from "../records.ts";
import { pickTaskOptions } from "../tasks/task.ts";
import { baseName, DEFAULT_TIMEOUT_MS, type ExtractOptions } from "./fast.ts";
import { drawRecords } from "../draw/drawer.ts";
import { expandInputs, shard } from "./inputs.ts";
import type { BulkProgress, CallOptions } from "./scheduler.ts";
import { createScheduler } from "./modes.ts";
import { shownName } from "../input/source.ts";
import { FAULTS } from "./faults.ts";

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
  /** Filled with the files directory scans left out (not media), counted by extension. */
  skipped?: Map<string, number>;
  /** Called when a file starts or ends, with the run's counts. */
  onProgress?: (p: BulkProgress) => void;
}

export { DEFAULT_BULK_INFLIGHT_BYTES, defaultPool } from "./modes.ts";

/**
 * Runs a task over many files. `inputs` are files, directories (recursive, by media extension)
 * or `@list.txt` files. Yields, per file, its keyframe records in pts order and then its
 * {@linkcode StatusRecord}. Throws {@linkcode VxError} only when nothing can run (the model
 * cannot be loaded); a bad input file only gets an error status.
 *
 * @example
 * ```ts
 * import { extractBulk } from "../../mod.ts";
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
  return options.draw ? drawRecords(records, { ...options, perFile: true }) : records;
}

async function* extractBulkRecords(
  inputs: readonly string[],
  options: BulkOptions,
): AsyncGenerator<VxRecord> {
  const paths = await bulkPaths(inputs, options);
  if (paths.length === 0) return;
  const scheduler = createScheduler("bulk", pickTaskOptions(options), {
    ...options,
    faults: options[FAULTS],
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
  options: Pick<BulkOptions, "shard" | "skip" | "skipped">,
): Promise<string[]> {
  let paths = await expandInputs(inputs, options.skipped);
  if (options.shard) paths = shard(paths, options.shard.index, options.shard.count);
  // Statuses name a URL without its query (a presigned URL's signature changes from run to run).
  if (options.skip) paths = paths.filter((p) => !options.skip!.has(shownName(p)));
  return paths;
}

/** How `bulk` writes a caller's files: a file at a time, with its status record. */
export function bulkCall(options: BulkOptions): CallOptions {
  return {
    streaming: false,
    // The id keeps same-named files from different folders apart.
    jpegPrefix: (file) => `${file.id}_${baseName(shownName(file.path))}`,
    framesDir: options.framesDir,
    timeoutMs: options.timeoutMs ?? DEFAULT_TIMEOUT_MS,
    stream: options.stream,
    select: selectionOf(options.select),
    faults: options[FAULTS],
    onProgress: options.onProgress,
  };
}
