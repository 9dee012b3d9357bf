/**
 * The task registry: the one place that maps a task name to its factory.
 *
 * @module
 */

import type { TaskFactory, TaskName } from "./task.ts";
import { createDetectTask } from "./detect.ts";
import { createKeyframesTask } from "./keyframes.ts";
import { createOcrTask } from "./ocr.ts";

/** Every task vx can run, by name. */
export const TASKS: Readonly<Record<TaskName, TaskFactory>> = {
  ocr: createOcrTask,
  detect: createDetectTask,
  keyframes: createKeyframesTask,
};
