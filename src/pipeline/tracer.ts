/**
 * What the pipeline reports to `--debug`. The pipeline calls these through optional chaining,
 * so without a tracer nothing is computed or kept.
 *
 * @module
 */

import type { InferTiming } from "../infer/protocol.ts";
import type { GateLevels } from "./gate.ts";

/** Receives the pipeline's spans (times on the shared clock of `src/clock.ts`). */
export interface Tracer {
  /** A completed span of work on a lane (`main`, `decode`, `infer`, …). */
  span(name: string, lane: string, start: number, end: number, args: Record<string, unknown>): void;
  /** The in-flight gate's levels at this moment. */
  counter(name: string, levels: GateLevels): void;
  /** Facts for the summary: backend, threads, models. */
  meta(facts: Record<string, unknown>): void;
  /** One keyframe's inference, split into its stages. */
  inferred(file: string, index: number, pts: number, timing: InferTiming): void;
}
