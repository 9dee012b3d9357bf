/**
 * The `keyframes` task: runs no model and reports no results, for users who want the keyframes
 * themselves (their pts, and with `--frames-dir` their pictures).
 *
 * @module
 */

import type { FrameSpec, TaskDefinition, TaskFactory } from "./task.ts";

/** Its frames are tiny and unfiltered: nothing reads their pixels. */
const SPEC: FrameSpec = {
  fit: { kind: "stretch", width: 2, height: 2, nearest: true },
  pixFmt: "rgb24",
};

/** Creates the `keyframes` task. */
export const createKeyframesTask: TaskFactory = () =>
  Promise.resolve({
    name: "keyframes",
    frameSpec: SPEC,
    models: [],
    run: () => Promise.resolve([]),
  });

/** The `keyframes` task for the registry. */
export const KEYFRAMES: TaskDefinition = {
  create: createKeyframesTask,
  runsModel: false,
  flags: [],
  frameSpec: () => Promise.resolve(SPEC),
};
