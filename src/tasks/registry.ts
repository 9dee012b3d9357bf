/**
 * The task registry: the one place that maps a task name to its factory.
 *
 * @module
 */

import type { TaskDefinition, TaskName } from "./task.ts";
import { DETECT } from "./detect.ts";
import { KEYFRAMES } from "./keyframes.ts";
import { OCR } from "./ocr.ts";

/** Every task vx can run, by name. */
export const TASKS: Readonly<Record<TaskName, TaskDefinition>> = {
  ocr: OCR,
  detect: DETECT,
  keyframes: KEYFRAMES,
};
