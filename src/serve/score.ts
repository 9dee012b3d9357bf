/**
 * `?score=` on `vx serve`: the engine's score threshold is fixed for its life (its model
 * sessions and post-processing are created once), so a request's threshold is applied to the
 * results on the way out. That gives exactly the answer the engine would give at that
 * threshold when it is at or above the engine's: detect, faces and ocr drop results below the
 * threshold one by one after greedy non-maximum suppression, which only lets a box suppress a
 * lower-scored one, and classify keeps its top classes at or above it. A lower threshold cannot
 * bring back what the engine dropped, so it is refused.
 *
 * @module
 */

import { DEFAULT_SCORE as DETECT_SCORE } from "../tasks/detect.ts";
import { DEFAULT_SCORE as FACES_SCORE } from "../tasks/faces.ts";
import { DEFAULT_SCORE as OCR_SCORE } from "../tasks/ocr.ts";
import type { FrameRecord } from "../records.ts";
import type { TaskName } from "../tasks/task.ts";

/** Tasks whose results carry a `score`, with their threshold when `--score` is not given. */
const TASK_SCORES: Partial<Record<TaskName, number>> = {
  detect: DETECT_SCORE,
  faces: FACES_SCORE,
  ocr: OCR_SCORE,
  classify: 0,
};

/**
 * The threshold an engine for `task` applies (`score` when given, else the task's default), or
 * undefined when the task's results have no score.
 *
 * @example
 * ```ts
 * import { engineScore } from "./score.ts";
 * console.log(engineScore("detect"), engineScore("detect", 0.5), engineScore("embed")); // 0.3 0.5 undefined
 * ```
 */
export function engineScore(task: TaskName, score?: number): number | undefined {
  const d = TASK_SCORES[task];
  return d === undefined ? undefined : score ?? d;
}

/**
 * A record with only the results scoring at least `min`; results without a score stay.
 *
 * @example
 * ```ts
 * import { keepScore } from "./score.ts";
 * const r = { file: "a", index: 0, pts: 0, width: 2, height: 2, task: "classify" as const,
 *   results: [{ label: "cat", score: 0.9 }, { label: "dog", score: 0.2 }] };
 * console.log(keepScore(r, 0.5).results); // [{ label: "cat", score: 0.9 }]
 * ```
 */
export function keepScore(record: FrameRecord, min: number): FrameRecord {
  return {
    ...record,
    results: record.results.filter((r) =>
      !("score" in r) || typeof r.score !== "number" || r.score >= min
    ),
  };
}
