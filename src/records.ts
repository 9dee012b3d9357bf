/**
 * The records vx writes: one per keyframe, and (in bulk) one status per file.
 *
 * @module
 */

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
}

/** How one file of a bulk run ended. */
export type StatusRecord =
  | { file: string; status: "ok"; keyframes: number; ms: number }
  | { file: string; status: "error"; error: string };

/** Any record vx writes. */
export type VxRecord = FrameRecord | StatusRecord;
