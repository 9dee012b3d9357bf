/**
 * The `keyframes` task: runs no model and reports no results, for users who want the keyframes
 * themselves (their pts, and with `--frames-dir` their pictures).
 *
 * @module
 */

import type { TaskFactory } from "./task.ts";

/** Creates the `keyframes` task. Its frames are tiny: nothing reads their pixels. */
export const createKeyframesTask: TaskFactory = () =>
  Promise.resolve({
    name: "keyframes",
    frameSpec: { fit: { kind: "stretch", width: 2, height: 2 }, pixFmt: "rgb24" },
    models: [],
    run: () => Promise.resolve([]),
  });
