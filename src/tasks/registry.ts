/**
 * The task registry: the one place that maps a task name to its factory.
 *
 * @module
 */

import type { TaskDefinition, TaskName } from "./task.ts";
import { DETECT } from "./detect.ts";
import { KEYFRAMES } from "./keyframes.ts";
import { OCR } from "./ocr.ts";
import { CLASSIFY } from "./classify.ts";
import { EMBED } from "./embed.ts";
import { FACES } from "./faces.ts";
import { TENSOR } from "./tensor.ts";

/** Every task vx can run, by name. */
export const TASKS: Readonly<Record<TaskName, TaskDefinition>> = {
  ocr: OCR,
  detect: DETECT,
  keyframes: KEYFRAMES,
  classify: CLASSIFY,
  embed: EMBED,
  faces: FACES,
  tensor: TENSOR,
};
