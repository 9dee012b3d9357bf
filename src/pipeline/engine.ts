/**
 * The resident engine: the scheduler of `fast` and `bulk` (`scheduler.ts`) kept alive between
 * calls, so its workers, decoder cores and model sessions are created once and serve every call.
 *
 * @module
 */

import type { FrameRecord, VxRecord } from "../records.ts";
import { pickTaskOptions } from "../tasks/task.ts";
import { bulkCall, type BulkOptions, bulkPaths } from "./bulk.ts";
import { type ExtractOptions, fastCall, fastRecords, type OkStatus } from "./fast.ts";
import type { ModelInfo } from "../tasks/task.ts";
import type { SchedulerStats } from "./scheduler.ts";
import { createScheduler } from "./modes.ts";
import { drawRecords } from "../draw/drawer.ts";
import { FAULTS } from "./faults.ts";
import { shownName } from "../input/source.ts";

/** What an engine runs and on what pool: fixed for its life. */
export type EngineOptions =
  & Omit<
    BulkOptions,
    "shard" | "skip" | "onProgress" | "framesDir" | "timeoutMs" | "stream" | "select" | "draw"
  >
  & {
    /**
     * Run the sequential way, as `fast --sequential`: one decoder and one inference worker, and
     * every keyframe of a file decoded before any is inferred. The baseline a warm engine's
     * streaming is measured against (`bench/run.ts`).
     */
    sequential?: boolean;
  };

/** Options of one {@linkcode Engine.extract} call. */
export type EngineExtractOptions = Pick<
  ExtractOptions,
  | "framesDir"
  | "timeoutMs"
  | "stream"
  | "select"
  | "draw"
  | "signal"
  | "identity"
  | "name"
  | typeof FAULTS
>;

/** Options of one {@linkcode Engine.extractBulk} call. */
export type EngineBulkOptions = Pick<
  BulkOptions,
  | "framesDir"
  | "timeoutMs"
  | "stream"
  | "select"
  | "shard"
  | "skip"
  | "onProgress"
  | "draw"
  | typeof FAULTS
>;

/** A resident engine; see {@linkcode createEngine}. */
export interface Engine {
  /**
   * `fast` on the engine: one file's records in pts order, each as soon as it is ready; then it
   * returns the file's status (`pastEnd`: `at:` times past the last frame). With `draw`, it
   * returns nothing.
   */
  extract(
    input: string,
    options?: EngineExtractOptions,
  ): AsyncGenerator<FrameRecord, OkStatus | void>;
  /** `bulk` on the engine: per file its records, then its status record. */
  extractBulk(inputs: readonly string[], options?: EngineBulkOptions): AsyncGenerator<VxRecord>;
  /**
   * Resolves with the task's models once every model session is created and warm; rejects with
   * a `VxError` when the model cannot be loaded.
   */
  readonly ready: Promise<ModelInfo[]>;
  /** Sessions created, cores loaded, frames and bytes in flight now. */
  readonly stats: SchedulerStats;
  /**
   * Resolves once nothing is being decoded or inferred: after a call was left early, its frames
   * have left the in-flight bound.
   */
  idle(): Promise<void>;
  /** Waits for the calls under way, then ends every worker; the engine is not used after. */
  close(): Promise<void>;
}

/**
 * Starts a resident engine: decode and inference workers, decoder cores and model sessions are
 * created now, once, and each session is warmed by one run on a blank frame, so a call's first
 * keyframe pays no start-up. Calls may overlap: they share the pool and one bound on decoded
 * frames in flight, and each gets exactly its own records. A call whose iteration ends early
 * cancels its files. `close()` leaves no worker or timer behind.
 *
 * @example
 * ```ts
 * import { createEngine } from "../../mod.ts";
 * const engine = createEngine({ task: "detect", model: "yolox_nano.onnx" });
 * await engine.ready;
 * for (const file of ["a.mp4", "b.mp4"]) {
 *   for await (const r of engine.extract(file)) console.log(file, r.pts, r.results);
 * }
 * await engine.close();
 * ```
 */
export function createEngine(options: EngineOptions = {}): Engine {
  const mode = options.sequential ? "engine --sequential" : "engine";
  const scheduler = createScheduler(mode, pickTaskOptions(options), {
    ...options,
    faults: options[FAULTS],
  });
  scheduler.start();
  return {
    extract(input, o = {}) {
      const records = fastRecords(scheduler.run([input], fastCall(o)), o.name ?? shownName(input));
      return o.draw ? drawRecords(records, o) : records;
    },
    extractBulk(inputs, o = {}) {
      const records = (async function* () {
        yield* scheduler.run(await bulkPaths(inputs, o), bulkCall(o));
      })();
      return o.draw ? drawRecords(records, { ...o, perFile: true }) : records;
    },
    ready: scheduler.ready,
    get stats() {
      return scheduler.stats;
    },
    idle: () => scheduler.idle(),
    close: () => scheduler.close(),
  };
}
