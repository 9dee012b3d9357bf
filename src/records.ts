/**
 * The records vx writes: one per keyframe, and (in bulk) one status per file.
 *
 * @module
 */

import type { SelectedWhy } from "./decode/selection.ts";
import type { TaskName, TaskResult } from "./tasks/task.ts";

/** The results of one keyframe. `pts` in seconds; `width`/`height` of the decoded frame. */
export interface FrameRecord {
  file: string;
  index: number;
  pts: number;
  width: number;
  height: number;
  task: TaskName;
  results: TaskResult[];
  /** Path of the keyframe's JPEG, with `--frames-dir`. */
  image?: string;
  /**
   * With `--select` other than keyframes: whether the frame is a keyframe, and why it was
   * selected (`time`: shown at `at` seconds from the first frame; `scene`: a cut, of score
   * `score`; `first`: the first frame, with `scenes`; `keyframe`, with `scenes+keyframes`).
   */
  key?: boolean;
  why?: SelectedWhy;
  at?: number;
  score?: number;
}

/** How one file of a bulk run ended. */
export type StatusRecord =
  /** `pastEnd`: `at:` times past the file's last frame, which gave no record. */
  | { file: string; status: "ok"; keyframes: number; ms: number; pastEnd?: number[] }
  | { file: string; status: "error"; error: string };

/** Any record vx writes. */
export type VxRecord = FrameRecord | StatusRecord;

/**
 * Checks, where records are written, that a file's keyframe records leave in pts order: `record`
 * must come after `previous` (the file's record before it, if any). Returns why not, as a reason
 * for that file's error status (a bug in vx, or a decoder that misread a damaged file), so
 * disorder shows as one failed file, never as silent disorder or a stopped run.
 *
 * @example
 * ```ts
 * import { ptsOrderProblem } from "./records.ts";
 * const a = { file: "a.mp4", index: 0, pts: 0, width: 2, height: 2, task: "keyframes" as const, results: [] };
 * console.assert(ptsOrderProblem(undefined, a) === undefined);
 * console.assert(ptsOrderProblem(a, { ...a, index: 1, pts: 2 }) === undefined);
 * console.assert(ptsOrderProblem(a, { ...a, index: 1, pts: 0 }) !== undefined);
 * ```
 */
export function ptsOrderProblem(
  previous: FrameRecord | undefined,
  record: FrameRecord,
): string | undefined {
  if (previous === undefined || previous.file !== record.file) return undefined;
  if (record.pts > previous.pts && record.index > previous.index) return undefined;
  return `keyframe ${record.index} at ${record.pts} s would be written after keyframe ` +
    `${previous.index} at ${previous.pts} s: records out of pts order (a damaged file whose ` +
    `key packets read differently twice, or a bug in vx)`;
}
